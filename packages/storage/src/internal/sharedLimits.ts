// The process side of a shared AccountLimits store, the same for SQLite, PostgreSQL and Redis.
// A backend answers one atomic question at a time ("may this holder take one more now? if not,
// how long until it should ask again?"); this module queues the process's own callers in order
// (one asks the store at a time, per kind), sleeps on the Clock between questions, renews the
// process's slot leases in a scoped fiber, and turns store failures into retries and, at last,
// defects (the AccountLimits signatures have no error channel).
import type { AccountLimits } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"

/** A store operation failed (connection, lock timeout...). */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly operation: string
  readonly message: string
  readonly cause?: unknown
}> {}

/** What the store answered: done, or ask again after this many milliseconds. */
export type Attempt = number

/** The two kinds of waits, each with its own queue of holders on the store. */
export type Kind = "request" | "slot"

/** The settings every backend works with. */
export interface Settings {
  readonly account: string
  readonly requestsPerWindow: number
  /** The window plus the margin: what the store counts over. */
  readonly windowMillis: number
  readonly concurrentTasks: number
  /** How long a slot lease lasts without renewal. */
  readonly leaseMillis: number
  /** How long a waiting holder keeps its turn past the time it said it would ask again. */
  readonly graceMillis: number
  /** How soon a holder whose turn it is not asks again. */
  readonly turnPollMillis: number
  /** How often a holder waiting for a slot asks again (slots free without notice). */
  readonly slotPollMillis: number
}

/**
 * One shared store. Every method is one atomic step on the store. `take*` answer 0 when the
 * holder took its place, otherwise the milliseconds to wait; `more` says whether the holder has
 * further callers queued behind this one (it then keeps its place in the holders' round-robin).
 */
export interface Backend {
  readonly takeRequest: (holder: string, now: number, more: boolean) => Effect.Effect<Attempt, StoreError>
  readonly acquireSlot: (
    holder: string,
    taskKey: string,
    now: number,
    more: boolean
  ) => Effect.Effect<Attempt, StoreError>
  /** The holder stops waiting for this kind (its caller was interrupted). */
  readonly leave: (holder: string, kind: Kind) => Effect.Effect<void, StoreError>
  /** Frees the slot if this holder holds it. */
  readonly releaseSlot: (holder: string, taskKey: string) => Effect.Effect<void, StoreError>
  readonly holdsSlot: (holder: string, taskKey: string, now: number) => Effect.Effect<boolean, StoreError>
  /** Extends every live lease of the holder to `now + leaseMillis`; answers the task keys it still holds. */
  readonly renewSlots: (holder: string, now: number) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Pauses every holder until `until` (never shortens a longer pause). */
  readonly backOff: (until: number) => Effect.Effect<void, StoreError>
  readonly snapshot: (
    now: number
  ) => Effect.Effect<
    { readonly requestsInWindow: number; readonly tasksInFlight: number; readonly pausedUntil: number },
    StoreError
  >
}

/** Options every shared store accepts. */
export interface Options extends AccountLimits.Options {
  /** The budget's name on the store: one per API key (default `"default"`). */
  readonly account?: string | undefined
  /** This process's id on the store (default: the pid and random bytes). */
  readonly holderId?: string | undefined
  /** How long a slot lease lasts without renewal (default 30 s); renewed every third of it. */
  readonly leaseMillis?: number | undefined
  /** How often a holder waiting for a slot asks the store again (default 1 s). */
  readonly slotPollMillis?: number | undefined
  /** How soon a holder waiting for another holder's turn asks again (default 50 ms). */
  readonly turnPollMillis?: number | undefined
  /**
   * Added to the window when counting (default 250 ms): requests that leave in order may arrive
   * out of order, and the server counts arrivals. Set it to the spread of your request latency.
   */
  readonly marginMillis?: number | undefined
}

/** The settings from options, with apixo's limits and the documented defaults. */
export const settingsOf = (options: Options, defaults: AccountLimits.Options): Settings => {
  const turnPollMillis = options.turnPollMillis ?? 50
  const slotPollMillis = options.slotPollMillis ?? 1_000
  return {
    account: options.account ?? "default",
    requestsPerWindow: options.requestsPerWindow ?? defaults.requestsPerWindow ?? 60,
    windowMillis:
      Duration.toMillis(options.window ?? defaults.window ?? Duration.minutes(1)) + (options.marginMillis ?? 250),
    concurrentTasks: options.concurrentTasks ?? defaults.concurrentTasks ?? 10,
    leaseMillis: options.leaseMillis ?? 30_000,
    graceMillis: Math.max(1_000, 4 * Math.max(turnPollMillis, slotPollMillis)),
    turnPollMillis,
    slotPollMillis
  }
}

/** A new holder id: unique per process and store instance. */
export const newHolderId = (): string => `p${process.pid}-${randomBytes(6).toString("hex")}`

/** A holder: the service, its id, and what its callers are doing (for the contract suite). */
export interface Holder {
  readonly limits: AccountLimits.Service
  readonly holderId: string
  /** No caller is busy with the store: each is asleep between attempts, or there are none. */
  readonly idle: Effect.Effect<boolean>
  /** Callers asleep after the store refused them (at most one per kind: the rest queue behind). */
  readonly waiting: Effect.Effect<number>
}

// Store failures are retried (a busy database, a reconnecting socket), then become defects.
const retryStore = Schedule.exponential("20 millis").pipe(
  Schedule.union(Schedule.spaced("1 second")),
  Schedule.intersect(Schedule.recurs(8))
)
const orRetry = <A>(effect: Effect.Effect<A, StoreError>): Effect.Effect<A> =>
  effect.pipe(
    Effect.retry(retryStore),
    Effect.orDieWith((error) => new Error(`AccountLimits store ${error.operation} failed: ${error.message}`))
  )

// One kind's local queue: callers go to the store one at a time, in arrival order.
const makeQueue = (backend: Backend, holder: string, kind: Kind) => {
  const lock = Effect.unsafeMakeSemaphore(1)
  let queued = 0
  let sleeping = 0
  const run = (attempt: (now: number, more: boolean) => Effect.Effect<Attempt, StoreError>): Effect.Effect<void> => {
    const loop: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.flatMap(orRetry(attempt(now, queued > 1)), (waitMillis) =>
        waitMillis <= 0
          ? Effect.void
          : Effect.zipRight(
              Effect.ensuring(
                Effect.zipRight(
                  Effect.sync(() => sleeping++),
                  Effect.sleep(Duration.millis(waitMillis))
                ),
                Effect.sync(() => sleeping--)
              ),
              loop
            )
      )
    )
    // An interrupted caller gives up its holder's turn unless others of this process still wait.
    const leaveIfLast = Effect.suspend(() => (queued <= 1 ? Effect.ignore(backend.leave(holder, kind)) : Effect.void))
    return Effect.suspend(() => {
      queued++
      return lock.withPermits(1)(Effect.onInterrupt(loop, () => leaveIfLast))
    }).pipe(Effect.ensuring(Effect.sync(() => queued--)))
  }
  return { run, idle: Effect.sync(() => queued === 0 || sleeping > 0), sleeping: Effect.sync(() => sleeping) }
}

/** Builds a holder on a backend, renewing its leases in a fiber of the current scope. */
export const make = (
  backend: Backend,
  settings: Settings,
  holderId: string = newHolderId()
): Effect.Effect<Holder, never, Scope.Scope> =>
  Effect.gen(function* () {
    const requests = makeQueue(backend, holderId, "request")
    const slots = makeQueue(backend, holderId, "slot")
    // The slots this process believes it holds: a cache the renewal corrects, so that taking a
    // slot the task already holds costs nothing.
    const held = new Set<string>()

    // Renewing counts as being busy with the store, so the contract never moves a TestClock
    // while a renewal is on the wire.
    let renewing = false
    const renewOnce = Effect.gen(function* () {
      const before = new Set(held)
      const now = yield* Clock.currentTimeMillis
      const still = new Set(yield* backend.renewSlots(holderId, now))
      // A slot lost meanwhile (expired, or moved to another holder by reconcile) is forgotten.
      for (const taskKey of before) if (!still.has(taskKey)) held.delete(taskKey)
    }).pipe(Effect.catchAll((error) => Effect.logWarning(`AccountLimits lease renewal failed: ${error.message}`)))
    const renew = Effect.sync(() => {
      renewing = true
    }).pipe(
      Effect.zipRight(renewOnce),
      Effect.ensuring(
        Effect.sync(() => {
          renewing = false
        })
      ),
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1, Math.floor(settings.leaseMillis / 3)))))
    )
    yield* Effect.forkScoped(renew)

    // The store's grant and its note in `held` are one uninterruptible step: a slot granted to a
    // caller that is gone would otherwise be renewed forever.
    const acquireTaskSlot = (taskKey: string): Effect.Effect<void> =>
      Effect.suspend(() =>
        held.has(taskKey)
          ? Effect.void
          : slots.run((now, more) =>
              backend.acquireSlot(holderId, taskKey, now, more).pipe(
                Effect.tap((waitMillis) => (waitMillis <= 0 ? Effect.sync(() => held.add(taskKey)) : Effect.void)),
                Effect.uninterruptible
              )
            )
      )

    const limits: AccountLimits.Service = {
      takeRequest: requests.run((now, more) => backend.takeRequest(holderId, now, more)),
      acquireTaskSlot,
      releaseTaskSlot: (taskKey) =>
        Effect.zipRight(
          Effect.sync(() => held.delete(taskKey)),
          orRetry(backend.releaseSlot(holderId, taskKey))
        ).pipe(Effect.uninterruptible),
      holdsTaskSlot: (taskKey) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => orRetry(backend.holdsSlot(holderId, taskKey, now))),
      backOff: (duration) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => orRetry(backend.backOff(now + Duration.toMillis(duration)))),
      snapshot: Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(orRetry(backend.snapshot(now)), (counts) => ({
          requestsInWindow: counts.requestsInWindow,
          requestsPerWindow: settings.requestsPerWindow,
          tasksInFlight: counts.tasksInFlight,
          concurrentTasks: settings.concurrentTasks,
          pausedUntil: counts.pausedUntil > now ? counts.pausedUntil : 0
        }))
      )
    }
    return {
      limits,
      holderId,
      idle: Effect.map(Effect.all([requests.idle, slots.idle]), ([a, b]) => a && b && !renewing),
      waiting: Effect.map(Effect.all([requests.sleeping, slots.sleeping]), ([a, b]) => a + b)
    }
  })

/**
 * The turn value of a holder that starts waiting when the account has served `seq` places: just
 * behind everyone served before the last serve, just ahead of the holder served last (which gets
 * `2 * seq` when served). This is what makes the holders' queue a round-robin.
 */
export const arrivalTurn = (seq: number): number => 2 * seq - 1

/** The turn value of a holder just served as the account's `seq`-th place, with more to ask for. */
export const servedTurn = (seq: number): number => 2 * seq
