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
    // window ever holds more than `requestsPerWindow` requests. A ring of timestamps with a head
    // index: taking and expiring are O(1), whatever the budget.
    const sent: Array<number> = []
    let head = 0
    const expire = (now: number) => {
      while (head < sent.length && sent[head]! <= now - windowMillis) head++
      // Compact now and then so the array does not grow without bound.
      if (head > 1024 && head * 2 > sent.length) {
        sent.splice(0, head)
        head = 0
      }
      return sent.length - head
    }
    let pausedUntil = 0
    // One taker at a time: requests are served in arrival order and never race for the last place.
    const takerLock = yield* Effect.makeSemaphore(1)
    const slots = yield* Effect.makeSemaphore(concurrentTasks)
    const holders = new Set<string>()

    // Takes a place when there is one; otherwise says how long to wait. Synchronous, hence atomic.
    const tryTake: Effect.Effect<number> = Effect.map(Clock.currentTimeMillis, (now) => {
      if (pausedUntil > now) return pausedUntil - now
      if (expire(now) < requestsPerWindow) {
        sent.push(now)
        return 0
      }
      return sent[head]! + windowMillis - now
    })

    let waiting = 0
    const slowTake = takerLock
      .withPermits(1)(
        Effect.iterate(1, {
          while: (waitMillis) => waitMillis > 0,
          body: () =>
            Effect.flatMap(tryTake, (waitMillis) =>
              waitMillis > 0 ? Effect.as(Effect.sleep(waitMillis), waitMillis) : Effect.succeed(0)
            )
        })
      )
      .pipe(Effect.asVoid, Effect.ensuring(Effect.sync(() => waiting--)))
    // Fast path: nobody is queued and the budget has room, so take a place without the lock.
    // Otherwise queue behind the others, in order.
    const takeRequest = Effect.clockWith((clock) => {
      if (waiting === 0) {
        const now = clock.unsafeCurrentTimeMillis()
        if (pausedUntil <= now && expire(now) < requestsPerWindow) {
          sent.push(now)
          return Effect.void
        }
      }
      waiting++
      return slowTake
    })

    const acquireTaskSlot = (taskKey: string) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          if (holders.has(taskKey)) return
          yield* restore(slots.take(1))
          // Another fiber took a slot for the same task meanwhile: keep one, give this one back.
          if (holders.has(taskKey)) yield* slots.release(1)
          else holders.add(taskKey)
        })
      )

    const releaseTaskSlot = (taskKey: string) =>
      Effect.suspend(() => (holders.delete(taskKey) ? slots.release(1) : Effect.void)).pipe(
        Effect.uninterruptible,
        Effect.asVoid
      )

    return AccountLimits.of({
      takeRequest,
      acquireTaskSlot,
      releaseTaskSlot,
      holdsTaskSlot: (taskKey) => Effect.sync(() => holders.has(taskKey)),
      backOff: (duration) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          pausedUntil = Math.max(pausedUntil, now + Duration.toMillis(duration))
        }),
      snapshot: Effect.map(Clock.currentTimeMillis, (now) => ({
        requestsInWindow: expire(now),
        requestsPerWindow,
        tasksInFlight: holders.size,
        concurrentTasks,
        pausedUntil: pausedUntil > now ? pausedUntil : 0
      }))
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
