/**
 * The contract every shared `AccountLimits` store must pass: no sliding window holds more requests
 * than the limit across every holder (process) on the store, a back-off pauses every holder,
 * concurrent-task slots are leases by task key (idempotent, movable to another holder, renewed
 * while the holder lives, freed a bounded time after it dies), and a holder with one waiting
 * request is not starved by a holder with many. Each case builds several holders on one store, as
 * several processes would be, and drives them with the `TestClock`.
 *
 * Register it with `AccountLimitsContract.suite("SqliteAccountLimits", storeLayer, EffectVitest)`.
 *
 * @since 0.1.0
 */
import type * as EffectVitest from "@effect/vitest"
import type { AccountLimits } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { strict as assert } from "node:assert"
import { randomBytes } from "node:crypto"

/** One holder (one process's view) of a shared budget, with what the contract needs to observe it. */
export interface Holder {
  readonly limits: AccountLimits.Service
  /** The id this holder's slots and waits are recorded under. */
  readonly holderId: string
  /**
   * True when none of this holder's calls is busy with the store: each one waiting for budget is
   * asleep on the Clock (so `TestClock.adjust` decides when it retries), or there are none.
   */
  readonly idle: Effect.Effect<boolean>
  /** How many of this holder's calls are asleep after the store refused them. */
  readonly waiting: Effect.Effect<number>
}

/** The limits of a holder built for a case. */
export interface HolderOptions {
  /** The budget's name on the store; cases use a fresh one each. */
  readonly account: string
  readonly requestsPerWindow: number
  readonly window: Duration.Duration
  readonly concurrentTasks: number
  /** How long a slot lease lasts without renewal. */
  readonly leaseMillis: number
  /** How often a holder waiting for a slot asks again. */
  readonly slotPollMillis: number
  /** How soon a holder whose turn it is not asks again. */
  readonly turnPollMillis: number
}

/** Builds holders on one store; closing a holder's scope is its death (nothing released). */
export class Store extends Context.Tag("@reelkit/testing/AccountLimitsContract/Store")<
  Store,
  { readonly makeHolder: (options: HolderOptions) => Effect.Effect<Holder, never, Scope.Scope> }
>() {}

/** One contract case; `account` is unique per case and run. */
export interface Case {
  readonly name: string
  readonly run: (account: string) => Effect.Effect<void, unknown, Store | Scope.Scope>
}

/** The part of `@effect/vitest` the suite registers tests with. */
export interface Vitest {
  readonly layer: typeof EffectVitest.layer
}

const defaults = (account: string, overrides: Partial<HolderOptions> = {}): HolderOptions => ({
  account,
  requestsPerWindow: 3,
  window: Duration.seconds(10),
  concurrentTasks: 2,
  leaseMillis: 3_000,
  slotPollMillis: 500,
  turnPollMillis: 100,
  ...overrides
})

const holders = (count: number, options: HolderOptions) =>
  Effect.flatMap(Store, (store) => Effect.all(Array.from({ length: count }, () => store.makeHolder(options))))

// One turn of Node's event loop, so that store I/O (sockets, files) can complete. Not a timer.
const nextTurn = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

// Calls a case has forked and not yet seen finish, per holder: a call that got its place but has
// not yet done what follows it (reading the Clock) must finish before time moves.
const pendingCalls = new WeakMap<Holder, number>()

/** Runs `effect` (a call on `holder`) so that `settle` waits for it unless it is asleep on the store. */
export const tracked = <A, E, R>(holder: Holder, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    pendingCalls.set(holder, (pendingCalls.get(holder) ?? 0) + 1)
    return Effect.ensuring(
      effect,
      Effect.sync(() => pendingCalls.set(holder, (pendingCalls.get(holder) ?? 1) - 1))
    )
  })

const holderSettled = (holder: Holder) =>
  Effect.map(
    Effect.all([holder.idle, holder.waiting]),
    ([idle, waiting]) => idle && ((pendingCalls.get(holder) ?? 0) === 0 || waiting > 0)
  )

/** Waits (without time passing) until every holder is idle. */
export const settle = (all: ReadonlyArray<Holder>): Effect.Effect<void> =>
  Effect.gen(function* () {
    // Idle twice, one event-loop turn apart: a caller that just got its place has then also
    // finished what it does right after (e.g. reading the Clock).
    let stable = 0
    for (let turn = 0; turn < 100_000; turn++) {
      const idle = yield* Effect.forEach(all, holderSettled)
      stable = idle.every(Boolean) ? stable + 1 : 0
      if (stable >= 2) return
      yield* nextTurn
    }
    return yield* Effect.dieMessage("holders never became idle")
  })

/**
 * Waits (without time passing) until `holder` has `count` calls asleep after a refusal: their
 * place in the holders' queue is then recorded on the store.
 */
export const awaitWaiting = (holder: Holder, count = 1): Effect.Effect<void> =>
  Effect.gen(function* () {
    for (let turn = 0; turn < 100_000; turn++) {
      if ((yield* holder.waiting) >= count) return
      yield* nextTurn
    }
    return yield* Effect.dieMessage("the holder never started waiting")
  })

// Moves the TestClock forward by at most `stepMillis`, stopping at the first pending wake-up:
// a woken caller then talks to the store at exactly its wake-up time, and the clock does not
// move on while it does (as it would if one adjust ran past several wake-ups).
const advance = (stepMillis: number) =>
  Effect.gen(function* () {
    const now = yield* TestClock.currentTimeMillis
    let target = now + stepMillis
    for (const wake of yield* TestClock.sleeps()) if (wake > now && wake < target) target = wake
    yield* TestClock.adjust(target - now)
  })

/**
 * Moves the `TestClock` forward in steps of at most `step`, letting the holders settle before each
 * step, until `done` holds; fails after `limit` of TestClock time.
 */
export const driveUntil = (
  all: ReadonlyArray<Holder>,
  done: Effect.Effect<boolean>,
  step: Duration.DurationInput,
  limit: Duration.DurationInput = Duration.hours(1)
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const stepMillis = Duration.toMillis(step)
    const end = (yield* TestClock.currentTimeMillis) + Duration.toMillis(limit)
    while ((yield* TestClock.currentTimeMillis) <= end) {
      yield* settle(all)
      if (yield* done) return
      yield* advance(stepMillis)
    }
    return yield* Effect.dieMessage(`not done after ${Duration.format(limit)} of TestClock time`)
  })

/** Moves the `TestClock` forward by `total` in steps of at most `step`, letting the holders settle. */
export const driveFor = (
  all: ReadonlyArray<Holder>,
  total: Duration.DurationInput,
  step: Duration.DurationInput
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const end = (yield* TestClock.currentTimeMillis) + Duration.toMillis(total)
    while ((yield* TestClock.currentTimeMillis) < end) {
      yield* settle(all)
      yield* advance(Math.min(Duration.toMillis(step), end - (yield* TestClock.currentTimeMillis)))
    }
    yield* settle(all)
  })

const allDone = (fibers: ReadonlyArray<Fiber.Fiber<unknown, unknown>>) =>
  Effect.map(Effect.forEach(fibers, Fiber.poll), (polls) => polls.every((poll) => poll._tag === "Some"))

const isDone = (fiber: Fiber.Fiber<unknown, unknown>) => allDone([fiber])

/** The largest number of `times` inside any half-open window [t, t + window). */
export const maxInWindow = (times: ReadonlyArray<number>, windowMillis: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let best = 0
  let start = 0
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMillis) start++
    best = Math.max(best, end - start + 1)
  }
  return best
}

const takeAndRecord = (holder: Holder, times: Array<number>, label?: Array<string>) =>
  tracked(
    holder,
    Effect.zipRight(
      holder.limits.takeRequest,
      Effect.map(Clock.currentTimeMillis, (now) => {
        times.push(now)
        label?.push(holder.holderId)
      })
    )
  )

/** Every case of the contract. */
export const cases: ReadonlyArray<Case> = [
  {
    name: "no sliding window holds more requests than the limit, across three holders",
    run: (account) =>
      Effect.gen(function* () {
        const options = defaults(account)
        const all = yield* holders(3, options)
        const times: Array<number> = []
        const fibers = yield* Effect.forEach(all, (holder) =>
          Effect.fork(Effect.all(Array.from({ length: 4 }, () => takeAndRecord(holder, times))))
        )
        yield* driveUntil(all, allDone(fibers), "1 second")
        assert.equal(times.length, 12)
        assert.equal(
          maxInWindow(times, Duration.toMillis(options.window)),
          3,
          `taken at ${[...times].sort((a, b) => a - b).join(", ")}`
        )
        // Twelve requests at three per ten seconds: the last one cannot come before 30 s.
        assert.ok(Math.max(...times) - Math.min(...times) >= 30_000)
        const snapshot = yield* all[0]!.limits.snapshot
        assert.equal(snapshot.requestsPerWindow, 3)
        assert.ok(snapshot.requestsInWindow <= 3)
      })
  },
  {
    name: "the budget frees exactly one window after a request, not before",
    run: (account) =>
      Effect.gen(function* () {
        const all = yield* holders(2, defaults(account))
        const [first, second] = all as [Holder, Holder]
        const start = yield* Clock.currentTimeMillis
        yield* first.limits.takeRequest
        yield* first.limits.takeRequest
        yield* first.limits.takeRequest
        assert.equal((yield* second.limits.snapshot).requestsInWindow, 3)
        const times: Array<number> = []
        const fiber = yield* Effect.fork(takeAndRecord(second, times))
        yield* driveUntil(all, isDone(fiber), "500 millis")
        assert.equal(times.length, 1)
        assert.ok(times[0]! >= start + 10_000, `taken at ${times[0]! - start} ms`)
        assert.ok(times[0]! <= start + 10_500, `taken at ${times[0]! - start} ms`)
      })
  },
  {
    name: "a back-off from one holder pauses every holder",
    run: (account) =>
      Effect.gen(function* () {
        const all = yield* holders(2, defaults(account, { requestsPerWindow: 100 }))
        const [first, second] = all as [Holder, Holder]
        const start = yield* Clock.currentTimeMillis
        yield* first.limits.backOff(Duration.seconds(30))
        assert.ok((yield* second.limits.snapshot).pausedUntil >= start + 30_000)
        const times: Array<number> = []
        const fiber = yield* Effect.fork(takeAndRecord(second, times))
        yield* driveUntil(all, isDone(fiber), "1 second")
        assert.ok(times[0]! >= start + 30_000, `taken at ${times[0]! - start} ms`)
        assert.ok(times[0]! <= start + 31_000, `taken at ${times[0]! - start} ms`)
        // A shorter back-off never shortens a longer one.
        yield* first.limits.backOff(Duration.seconds(20))
        yield* second.limits.backOff(Duration.seconds(5))
        const paused = (yield* first.limits.snapshot).pausedUntil
        assert.equal(paused, (yield* Clock.currentTimeMillis) + 20_000)
      })
  },
  {
    name: "slots: at most concurrentTasks across holders, idempotent per task key, freed by release",
    run: (account) =>
      Effect.gen(function* () {
        const all = yield* holders(3, defaults(account))
        const [first, second, third] = all as [Holder, Holder, Holder]
        yield* first.limits.acquireTaskSlot(`${account}-a`)
        yield* first.limits.acquireTaskSlot(`${account}-a`)
        yield* second.limits.acquireTaskSlot(`${account}-b`)
        assert.equal((yield* third.limits.snapshot).tasksInFlight, 2)
        assert.equal((yield* third.limits.snapshot).concurrentTasks, 2)
        const waiting = yield* Effect.fork(tracked(third, third.limits.acquireTaskSlot(`${account}-c`)))
        yield* driveFor(all, "5 seconds", "1 second")
        assert.equal(Option.isNone(yield* Fiber.poll(waiting)), true, "a third slot was granted over the limit")
        assert.equal(yield* third.limits.holdsTaskSlot(`${account}-c`), false)
        yield* first.limits.releaseTaskSlot(`${account}-a`)
        yield* driveUntil(all, isDone(waiting), "1 second")
        assert.equal(yield* third.limits.holdsTaskSlot(`${account}-c`), true)
        assert.equal(yield* first.limits.holdsTaskSlot(`${account}-a`), false)
        // Releasing twice, or a key never held, frees nothing more.
        yield* first.limits.releaseTaskSlot(`${account}-a`)
        yield* first.limits.releaseTaskSlot(`${account}-never`)
        assert.equal((yield* first.limits.snapshot).tasksInFlight, 2)
      })
  },
  {
    name: "acquiring a task's slot held by another holder moves it (reconcile re-takes it) without a new slot",
    run: (account) =>
      Effect.gen(function* () {
        const all = yield* holders(2, defaults(account, { concurrentTasks: 1 }))
        const [first, second] = all as [Holder, Holder]
        const taskKey = `${account}-moved`
        yield* first.limits.acquireTaskSlot(taskKey)
        // With the only slot taken, this returns at once: it is the same task.
        yield* second.limits.acquireTaskSlot(taskKey)
        assert.equal(yield* second.limits.holdsTaskSlot(taskKey), true)
        assert.equal(yield* first.limits.holdsTaskSlot(taskKey), false)
        assert.equal((yield* first.limits.snapshot).tasksInFlight, 1)
        // The former holder's release does not free the new holder's slot.
        yield* first.limits.releaseTaskSlot(taskKey)
        assert.equal(yield* second.limits.holdsTaskSlot(taskKey), true)
        yield* second.limits.releaseTaskSlot(taskKey)
        assert.equal((yield* first.limits.snapshot).tasksInFlight, 0)
      })
  },
  {
    name: "a live holder's slots are renewed past the lease; a dead holder's are freed within it",
    run: (account) =>
      Effect.gen(function* () {
        const options = defaults(account, { concurrentTasks: 1, leaseMillis: 3_000 })
        const store = yield* Store
        const live = yield* store.makeHolder(options)
        yield* live.limits.acquireTaskSlot(`${account}-live`)
        yield* driveFor([live], "10 seconds", "500 millis")
        assert.equal(yield* live.limits.holdsTaskSlot(`${account}-live`), true, "a live holder lost its slot")
        yield* live.limits.releaseTaskSlot(`${account}-live`)

        const deadScope = yield* Scope.make()
        const dead = yield* store.makeHolder(options).pipe(Scope.extend(deadScope))
        yield* dead.limits.acquireTaskSlot(`${account}-dead`)
        // The holder dies: its renewal stops and nothing is released.
        yield* Scope.close(deadScope, Exit.void)
        const diedAt = yield* Clock.currentTimeMillis
        assert.equal((yield* live.limits.snapshot).tasksInFlight, 1)
        let takenAt = 0
        const fiber = yield* Effect.fork(
          tracked(
            live,
            Effect.zipRight(
              live.limits.acquireTaskSlot(`${account}-next`),
              Effect.map(Clock.currentTimeMillis, (now) => {
                takenAt = now
              })
            )
          )
        )
        yield* driveUntil([live], isDone(fiber), "250 millis")
        assert.ok(takenAt > diedAt, "the dead holder's slot was taken before its lease ran out")
        assert.ok(takenAt <= diedAt + options.leaseMillis + 1_000, `freed ${takenAt - diedAt} ms after death`)
      })
  },
  {
    name: "fairness: a holder with one waiting request is not starved by a holder with many",
    run: (account) =>
      Effect.gen(function* () {
        const all = yield* holders(2, defaults(account, { requestsPerWindow: 2 }))
        const [busy, quiet] = all as [Holder, Holder]
        const order: Array<string> = []
        const times: Array<number> = []
        const busyFiber = yield* Effect.fork(
          Effect.all(Array.from({ length: 12 }, () => takeAndRecord(busy, times, order)))
        )
        yield* awaitWaiting(busy)
        const quietFiber = yield* Effect.fork(takeAndRecord(quiet, times, order))
        yield* awaitWaiting(quiet)
        yield* driveUntil(all, isDone(quietFiber), "1 second")
        // Places taken at the same instant may report back in any order: compare times. The
        // busy holder took the first window (2); the quiet one has the next place, no later than
        // the busy holder's third.
        const quietAt = times[order.indexOf(quiet.holderId)]!
        const busyTimes = times.filter((_, index) => order[index] === busy.holderId).sort((a, b) => a - b)
        assert.ok(
          busyTimes.length < 3 || quietAt <= busyTimes[2]!,
          `the quiet holder took its place at ${quietAt}, the busy one at ${busyTimes.join(",")}`
        )
        yield* Fiber.interrupt(busyFiber)
        assert.ok(maxInWindow(times, 10_000) <= 2)
      })
  },
  {
    name: "fairness for slots: a holder waiting for one slot is served before a holder waiting for many",
    run: (account) =>
      Effect.gen(function* () {
        const all = yield* holders(3, defaults(account, { concurrentTasks: 1 }))
        const [owner, busy, quiet] = all as [Holder, Holder, Holder]
        yield* owner.limits.acquireTaskSlot(`${account}-first`)
        const order: Array<string> = []
        // The busy holder's tasks are instant: each gives its slot back as soon as it has it, so
        // its next caller asks at once, ahead of anyone who polls later.
        const busyFiber = yield* Effect.fork(
          Effect.all(
            Array.from({ length: 5 }, (_, index) =>
              tracked(
                busy,
                Effect.zipRight(
                  busy.limits.acquireTaskSlot(`${account}-busy-${index}`),
                  Effect.zipRight(
                    Effect.sync(() => order.push(`busy-${index}`)),
                    busy.limits.releaseTaskSlot(`${account}-busy-${index}`)
                  )
                )
              )
            ),
            { concurrency: "unbounded" }
          )
        )
        yield* awaitWaiting(busy)
        // The quiet holder polls out of phase with the busy one, which asks first once the slot frees.
        yield* TestClock.adjust("250 millis")
        const quietFiber = yield* Effect.fork(
          tracked(
            quiet,
            Effect.zipRight(
              quiet.limits.acquireTaskSlot(`${account}-quiet`),
              Effect.sync(() => order.push("quiet"))
            )
          )
        )
        yield* awaitWaiting(quiet)
        yield* TestClock.adjust("150 millis")
        yield* settle(all)
        yield* owner.limits.releaseTaskSlot(`${account}-first`)
        yield* driveUntil(all, isDone(quietFiber), "50 millis")
        assert.ok(order.indexOf("quiet") <= 1, `served in order ${order.join(",")}`)
        yield* Fiber.interrupt(busyFiber)
      })
  },
  {
    name: "an interrupted wait leaves no trace: other holders are served as if it never waited",
    run: (account) =>
      Effect.gen(function* () {
        const all = yield* holders(3, defaults(account, { requestsPerWindow: 1 }))
        const [first, leaver, stayer] = all as [Holder, Holder, Holder]
        const start = yield* Clock.currentTimeMillis
        yield* first.limits.takeRequest
        const leaving = yield* Effect.fork(tracked(leaver, leaver.limits.takeRequest))
        yield* awaitWaiting(leaver)
        const times: Array<number> = []
        const staying = yield* Effect.fork(takeAndRecord(stayer, times))
        yield* awaitWaiting(stayer)
        yield* Fiber.interrupt(leaving)
        yield* driveUntil(all, isDone(staying), "500 millis")
        assert.ok(times[0]! <= start + 10_500, `served ${times[0]! - start} ms after the window opened`)
        assert.equal((yield* stayer.limits.snapshot).requestsInWindow, 1)
      })
  }
]

/** A fresh account name for one case. */
export const newAccount = (): string => `acct-${randomBytes(6).toString("hex")}`

/**
 * Registers every case as an `@effect/vitest` test sharing one instance of `layer` (and the
 * `TestClock`). Pass the `@effect/vitest` module.
 */
export const suite = <E>(name: string, layer: Layer.Layer<Store, E>, vitest: Vitest): void =>
  vitest.layer(layer, { timeout: "120 seconds" })(`AccountLimits contract: ${name}`, (it) => {
    for (const testCase of cases) {
      it.scoped(testCase.name, () => Effect.suspend(() => testCase.run(newAccount())), 60_000)
    }
  })
