// One poll scheduler per client: tracked tasks are small records in a due-time queue, and one loop
// spends the account's request budget on the most-due of them, handing each to a fixed pool of
// poll workers. Nobody sleeps per task. The scheduler only decides *when* to ask; what a status
// means is the handler's business (tracking.ts), and waiting is done on Deferreds there.
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { AccountLimits } from "../AccountLimits.js"
import * as Schedules from "../Schedules.js"
import type { ProviderError } from "../TaskError.js"
import type { Service as Provider } from "../TaskProvider.js"
import type { TaskStatus } from "../TaskStatus.js"
import { DueQueue, type Scheduled } from "./dueQueue.js"
import type * as Telemetry from "./telemetry.js"

/** A tracked task's poll bookkeeping: a few numbers, nothing else. */
export interface Entry extends Scheduled {
  readonly taskKey: string
  readonly remoteTaskId: string
  intervalMillis: number
  retry: Schedules.Stepper<ProviderError> | undefined
  polls: number
  polling: boolean
  /** Completed when the poll in flight (or the next one) has been applied: what `refresh` awaits. */
  polled: Deferred.Deferred<void> | undefined
}

/** What the client does with the outcome of a poll. */
export interface Handler {
  /** Applies a status; returns true when the task is finished (the scheduler then forgets it). */
  readonly onStatus: (entry: Entry, status: TaskStatus, nextPollAt: number) => Effect.Effect<boolean>
  /** A status request failed transiently; it is retried at `nextPollAt`. */
  readonly onRetry: (entry: Entry, error: ProviderError, nextPollAt: number) => Effect.Effect<void>
  /** Status requests failed for good (a lasting error, or the retry schedule ran out). */
  readonly onGiveUp: (entry: Entry, error: ProviderError) => Effect.Effect<void>
}

export interface PollScheduler {
  /** Starts polling a task (first at `firstPollAt`), or returns its entry when it is polled already. */
  readonly track: (
    taskKey: string,
    remoteTaskId: string,
    firstPollAt: number,
    intervalMillis: number
  ) => Effect.Effect<Entry>
  /** Stops polling a task. */
  readonly untrack: (taskKey: string) => Effect.Effect<void>
  /** Polls a tracked task now; the returned Deferred completes once that poll is applied. `None` when untracked. */
  readonly pollNow: (taskKey: string) => Effect.Effect<Option.Option<Deferred.Deferred<void>>>
  readonly size: Effect.Effect<number>
}

export interface SchedulerOptions {
  readonly provider: Provider
  readonly limits: AccountLimits["Type"]
  readonly retry: Schedules.RetrySchedule
  readonly pollConcurrency: number
  readonly metrics: ReturnType<typeof Telemetry.metricsFor>
  readonly spanAttributes: Readonly<Record<string, string>>
  readonly handler: Handler
}

/** The tracer Effect runs with when none is provided (its spans are never exported). */
const builtInTracer = Effect.runSync(Effect.tracer)

export const make = (options: SchedulerOptions): Effect.Effect<PollScheduler, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { provider, limits, handler, metrics } = options
    const entries = new Map<string, Entry>()
    const queue = new DueQueue<Entry>()
    const wakeups = yield* Queue.sliding<void>(1)
    // A fixed pool of poll workers takes due tasks from this hand-off queue: no fiber is forked
    // per poll, and at most `pollConcurrency` status requests are in flight.
    const ready = yield* Queue.bounded<Entry>(1)

    const isCurrent = (entry: Entry) => entries.get(entry.taskKey) === entry
    const forget = (entry: Entry) => {
      queue.unschedule(entry)
      if (isCurrent(entry)) entries.delete(entry.taskKey)
    }
    const reschedule = (entry: Entry, dueAt: number) => {
      queue.schedule(entry, dueAt)
      wakeups.unsafeOffer(undefined)
    }
    const settlePolled = (entry: Entry) => {
      const polled = entry.polled
      if (polled === undefined) return Effect.void
      entry.polled = undefined
      return Deferred.succeed(polled, undefined)
    }

    const statusOf = (entry: Entry) =>
      Effect.either(
        Effect.tracerWith((tracer) =>
          // Effect's built-in tracer keeps spans where no one can read them; on the hottest path a
          // span costs a quarter of the client's own work, so it is made only for a tracer that exports.
          tracer === builtInTracer
            ? provider.status(entry.remoteTaskId)
            : provider.status(entry.remoteTaskId).pipe(
                Effect.withSpan("reelkit.status", {
                  captureStackTrace: false,
                  attributes: {
                    ...options.spanAttributes,
                    "reelkit.task_key": entry.taskKey,
                    "reelkit.attempt": entry.polls
                  }
                })
              )
        )
      )

    // The poll path is the hottest code of the client: plain combinators, no Effect.gen.
    const pollOnce = (entry: Entry): Effect.Effect<void> => {
      entry.polls += 1
      return Metric.increment(metrics.polls).pipe(
        Effect.zipRight(statusOf(entry)),
        Effect.flatMap((result) =>
          Effect.clockWith((clock) => {
            const now = clock.unsafeCurrentTimeMillis()
            entry.polling = false
            if (result._tag === "Left") return onFailure(entry, result.left, now)
            entry.retry = undefined
            const nextPollAt = now + entry.intervalMillis
            return Effect.map(handler.onStatus(entry, result.right, nextPollAt), (finished) => {
              if (finished) forget(entry)
              else if (isCurrent(entry)) reschedule(entry, nextPollAt)
            })
          })
        ),
        Effect.ensuring(Effect.suspend(() => settlePolled(entry)))
      )
    }

    const onFailure = (entry: Entry, error: ProviderError, now: number): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (error._tag === "RateLimited") yield* limits.backOff(Duration.millis(error.retryAfterMillis ?? 0))
        entry.retry ??= Schedules.stepper(options.retry)
        const delay = yield* entry.retry.next(error, now)
        if (Option.isNone(delay)) {
          forget(entry)
          yield* Metric.increment(metrics.failures)
          return yield* handler.onGiveUp(entry, error)
        }
        yield* Metric.increment(metrics.retries)
        yield* handler.onRetry(entry, error, now + delay.value)
        if (isCurrent(entry)) reschedule(entry, now + delay.value)
      })

    // The one loop: wait for the most-due task, take one request from the shared budget, hand it
    // to a worker (so a slow answer never holds the others up), and go on.
    const loop = Effect.gen(function* () {
      for (;;) {
        const next = queue.peek()
        if (next === undefined) {
          yield* Queue.take(wakeups)
          continue
        }
        const now = yield* Clock.currentTimeMillis
        if (next.dueAt > now) {
          yield* Effect.race(Effect.sleep(Duration.millis(next.dueAt - now)), Queue.take(wakeups))
          continue
        }
        queue.pop()
        const entry = next.item
        entry.polling = true
        yield* limits.takeRequest
        yield* Queue.offer(ready, entry)
      }
    })
    // A defect in one poll (a bug, not a provider error) must not cost a worker: log it and try
    // that task again after its interval, so its waiters are not left hanging.
    const pollSafely = (entry: Entry) =>
      pollOnce(entry).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logError("reelkit: a status poll failed unexpectedly; retrying later", cause).pipe(
            Effect.zipRight(Clock.currentTimeMillis),
            Effect.map((now) => {
              entry.polling = false
              if (isCurrent(entry)) reschedule(entry, now + Math.max(entry.intervalMillis, 1000))
            })
          )
        )
      )
    const worker = Queue.take(ready).pipe(Effect.flatMap(pollSafely), Effect.forever)
    for (let index = 0; index < options.pollConcurrency; index++) yield* Effect.forkScoped(worker)
    yield* Effect.forkScoped(loop)

    const track: PollScheduler["track"] = (taskKey, remoteTaskId, firstPollAt, intervalMillis) =>
      Effect.sync(() => {
        const existing = entries.get(taskKey)
        if (existing !== undefined) return existing
        const entry: Entry = {
          taskKey,
          remoteTaskId,
          intervalMillis,
          retry: undefined,
          polls: 0,
          polling: false,
          polled: undefined,
          generation: 0
        }
        entries.set(taskKey, entry)
        reschedule(entry, firstPollAt)
        return entry
      })

    const untrack: PollScheduler["untrack"] = (taskKey) =>
      Effect.suspend(() => {
        const entry = entries.get(taskKey)
        if (entry === undefined) return Effect.void
        forget(entry)
        return settlePolled(entry)
      })

    const pollNow: PollScheduler["pollNow"] = (taskKey) =>
      Effect.sync(() => {
        const entry = entries.get(taskKey)
        if (entry === undefined) return Option.none()
        entry.polled ??= Deferred.unsafeMake<void>(FiberId.none)
        if (!entry.polling) reschedule(entry, 0)
        return Option.some(entry.polled)
      })

    return { track, untrack, pollNow, size: Effect.sync(() => entries.size) }
  })
