/**
 * One budget shared by every request and task that uses one API key: requests per sliding
 * minute and concurrent tasks. Everything that talks to the provider takes from it first, so
 * reelkit never provokes its own 429s. When the server still answers 429, `backOff` pauses every
 * request of the account, not just the one that was refused.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"

/** What the budget looks like right now. */
export interface Snapshot {
  readonly requestsInWindow: number
  readonly requestsPerWindow: number
  readonly tasksInFlight: number
  readonly concurrentTasks: number
  /** Epoch milliseconds until which every request waits (after a 429), or 0. */
  readonly pausedUntil: number
}

/** The account-limits service. */
export interface Service {
  /** Waits until one more request fits the budget, then counts it. Requests are served in order. */
  readonly takeRequest: Effect.Effect<void>
  /** Waits for a concurrent-task slot for this task. Taking a slot the task already holds is a no-op. */
  readonly acquireTaskSlot: (taskKey: string) => Effect.Effect<void>
  /** Gives the task's slot back. Releasing a slot the task does not hold is a no-op. */
  readonly releaseTaskSlot: (taskKey: string) => Effect.Effect<void>
  /** Whether the task holds a slot. */
  readonly holdsTaskSlot: (taskKey: string) => Effect.Effect<boolean>
  /** Pauses every request of the account for this long (the server's Retry-After). */
  readonly backOff: (duration: Duration.DurationInput) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<Snapshot>
}

/** The account-limits tag. Provide one layer per API key and share it. */
export class AccountLimits extends Context.Tag("@reelkit/core/AccountLimits")<AccountLimits, Service>() {}

/** Limits of one account. */
export interface Options {
  /** Requests allowed in any window (default 60). */
  readonly requestsPerWindow?: number | undefined
  /** The sliding window (default one minute). */
  readonly window?: Duration.DurationInput | undefined
  /** Tasks allowed between submit and terminal status (default 10). */
  readonly concurrentTasks?: number | undefined
}

/** apixo's documented limits: 60 requests per minute, 10 concurrent tasks. */
export const apixoDefaults: {
  readonly requestsPerWindow: number
  readonly window: Duration.Duration
  readonly concurrentTasks: number
} = {
  requestsPerWindow: 60,
  window: Duration.minutes(1),
  concurrentTasks: 10
}

/** Builds an in-memory budget for one process. */
export const makeMemory = (options: Options = {}): Effect.Effect<Service> =>
  Effect.gen(function* () {
    const requestsPerWindow = options.requestsPerWindow ?? apixoDefaults.requestsPerWindow
    const windowMillis = Duration.toMillis(options.window ?? apixoDefaults.window)
    const concurrentTasks = options.concurrentTasks ?? apixoDefaults.concurrentTasks

    // Times of the requests sent within the last window, oldest first: a sliding log, so no
    // 60-second window ever holds more than `requestsPerWindow` requests.
    const sent = yield* Ref.make<ReadonlyArray<number>>([])
    const pausedUntil = yield* Ref.make(0)
    // One taker at a time: requests are served in arrival order and never race for the last place.
    const takerLock = yield* Effect.makeSemaphore(1)
    const slots = yield* Effect.makeSemaphore(concurrentTasks)
    const holders = yield* Ref.make<ReadonlySet<string>>(new Set())
    const slotLock = yield* Effect.makeSemaphore(1)

    const inWindow = (now: number) =>
      Ref.updateAndGet(sent, (times) => times.filter((time) => time > now - windowMillis))

    const tryTake: Effect.Effect<number> = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const paused = yield* Ref.get(pausedUntil)
      if (paused > now) return paused - now
      const times = yield* inWindow(now)
      if (times.length < requestsPerWindow) {
        yield* Ref.set(sent, [...times, now])
        return 0
      }
      return times[0]! + windowMillis - now
    })

    const takeRequest = takerLock
      .withPermits(1)(
        Effect.iterate(1, {
          while: (waitMillis) => waitMillis > 0,
          body: () =>
            Effect.flatMap(tryTake, (waitMillis) =>
              waitMillis > 0 ? Effect.as(Effect.sleep(waitMillis), waitMillis) : Effect.succeed(0)
            )
        })
      )
      .pipe(Effect.asVoid)

    const acquireTaskSlot = (taskKey: string) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          if ((yield* Ref.get(holders)).has(taskKey)) return
          yield* restore(slots.take(1))
          const alreadyHeld = yield* slotLock.withPermits(1)(
            Ref.modify(holders, (set): [boolean, ReadonlySet<string>] =>
              set.has(taskKey) ? [true, set] : [false, new Set(set).add(taskKey)]
            )
          )
          // Another fiber took a slot for the same task meanwhile: keep one, give this one back.
          if (alreadyHeld) yield* slots.release(1)
        })
      )

    const releaseTaskSlot = (taskKey: string) =>
      Effect.uninterruptible(
        Effect.gen(function* () {
          const held = yield* slotLock.withPermits(1)(
            Ref.modify(holders, (set): [boolean, ReadonlySet<string>] => {
              if (!set.has(taskKey)) return [false, set]
              const next = new Set(set)
              next.delete(taskKey)
              return [true, next]
            })
          )
          if (held) yield* slots.release(1)
        })
      )

    return AccountLimits.of({
      takeRequest,
      acquireTaskSlot,
      releaseTaskSlot,
      holdsTaskSlot: (taskKey) => Effect.map(Ref.get(holders), (set) => set.has(taskKey)),
      backOff: (duration) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Ref.update(pausedUntil, (current) => Math.max(current, now + Duration.toMillis(duration)))
        ),
      snapshot: Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const times = yield* inWindow(now)
        const paused = yield* Ref.get(pausedUntil)
        return {
          requestsInWindow: times.length,
          requestsPerWindow,
          tasksInFlight: (yield* Ref.get(holders)).size,
          concurrentTasks,
          pausedUntil: paused > now ? paused : 0
        }
      })
    })
  })

/** An in-memory budget for one process (apixo's limits unless told otherwise). */
export const layerMemory = (options: Options = {}): Layer.Layer<AccountLimits> =>
  Layer.effect(AccountLimits, makeMemory(options))

/** No limits at all: for tests of other things, never for a real account. */
export const layerUnlimited: Layer.Layer<AccountLimits> = layerMemory({
  requestsPerWindow: Number.MAX_SAFE_INTEGER,
  concurrentTasks: Number.MAX_SAFE_INTEGER
})
