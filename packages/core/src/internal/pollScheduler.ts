// One poll scheduler per client: in-flight tasks are small records in a due-time queue, and one
// fiber spends the account's request budget on the most-due of them. Nobody sleeps per task:
// waiters are plain listener callbacks on the record (a Deferred per `wait`, a Queue per `watch`,
// a counter for `reconcile`), so ten thousand tracked tasks cost records, not fibers.
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { AccountLimits } from "../AccountLimits.js"
import * as Schedules from "../Schedules.js"
import { DeadlineExceeded, type ProviderError, type TaskError } from "../TaskError.js"
import { TaskEvent } from "../TaskEvent.js"
import type { TaskRecord } from "../TaskLedger.js"
import type { PollPlan, Service as Provider } from "../TaskProvider.js"
import type { TaskStatus } from "../TaskStatus.js"
import { DueQueue, type Scheduled } from "./dueQueue.js"
import * as Telemetry from "./telemetry.js"

/** Someone interested in a tracked task. Callbacks run synchronously and must not block. */
export interface Listener {
  readonly onEvent: (event: TaskEvent) => void
  /** The task stopped being tracked without reaching a terminal status (deadline, lasting error). */
  readonly onError: (error: TaskError) => void
}

/** A tracked task: a few numbers and references, nothing else. */
interface Entry extends Scheduled {
  readonly taskKey: string
  readonly remoteTaskId: string
  readonly intervalMillis: number
  readonly trackedAt: number
  readonly deadlineAt: number
  readonly listeners: Set<Listener>
  retry: Schedules.Stepper<ProviderError> | undefined
  polls: number
  polling: boolean
  lastTag: TaskStatus["_tag"] | undefined
}

/** What the client does with a status; the scheduler only decides when to ask. */
export interface StatusHandler {
  /**
   * Applies a non-terminal or terminal status to the ledger and to the listeners. Returns true when
   * the task is finished (the scheduler then forgets it).
   */
  readonly apply: (
    taskKey: string,
    status: TaskStatus,
    nextPollAt: number | undefined,
    listeners: ReadonlySet<Listener>,
    previous?: TaskStatus["_tag"] | undefined
  ) => Effect.Effect<boolean>
}

export interface PollScheduler {
  /** Starts tracking (or adds a listener to an already tracked task). Returns a function that removes the listener. */
  readonly track: (record: TaskRecord, plan: PollPlan, listener: Listener) => Effect.Effect<() => Effect.Effect<void>>
  /** Polls a tracked or untracked task right now (a callback arrived). */
  readonly pollNow: (taskKey: string) => Effect.Effect<boolean>
  readonly size: Effect.Effect<number>
}

export interface SchedulerOptions {
  readonly provider: Provider
  readonly limits: AccountLimits["Type"]
  readonly retry: Schedules.RetrySchedule
  readonly pollConcurrency: number
  readonly handler: StatusHandler
}

export const make = (options: SchedulerOptions): Effect.Effect<PollScheduler, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { provider, limits, handler } = options
    const entries = new Map<string, Entry>()
    const queue = new DueQueue<Entry>()
    const wakeups = yield* Queue.sliding<void>(1)
    // A fixed pool of poll workers takes due tasks from this hand-off queue: no fiber is forked
    // per poll, and at most `pollConcurrency` status requests are in flight.
    const ready = yield* Queue.bounded<Entry>(1)
    const attributes = { "reelkit.provider": provider.providerId, "reelkit.model": provider.modelId }
    const metrics = Telemetry.metricsFor(provider)

    const forget = (entry: Entry) => {
      queue.unschedule(entry)
      entries.delete(entry.taskKey)
    }

    const failListeners = (entry: Entry, error: TaskError) => {
      forget(entry)
      for (const listener of entry.listeners) listener.onError(error)
    }

    const pollOnce = (entry: Entry): Effect.Effect<void> =>
      Effect.gen(function* () {
        entry.polls += 1
        yield* Metric.increment(metrics.polls)
        const result = yield* Effect.either(
          provider.status(entry.remoteTaskId).pipe(
            Effect.withSpan("reelkit.status", {
              captureStackTrace: false,
              attributes: { ...attributes, "reelkit.task_key": entry.taskKey, "reelkit.attempt": entry.polls }
            })
          )
        )
        const now = yield* Clock.currentTimeMillis
        entry.polling = false
        if (result._tag === "Right") {
          entry.retry = undefined
          const nextPollAt = now + entry.intervalMillis
          const previous = entry.lastTag
          entry.lastTag = result.right._tag
          const finished = yield* handler.apply(entry.taskKey, result.right, nextPollAt, entry.listeners, previous)
          if (finished) forget(entry)
          else if (entries.get(entry.taskKey) === entry) reschedule(entry, nextPollAt)
          return
        }
        const error = result.left
        if (error._tag === "RateLimited") {
          yield* limits.backOff(Duration.millis(error.retryAfterMillis ?? 0))
        }
        entry.retry ??= Schedules.stepper(options.retry)
        const delay = yield* entry.retry.next(error, now)
        if (Option.isNone(delay)) {
          yield* Metric.increment(metrics.failures)
          failListeners(entry, error)
          return
        }
        yield* Metric.increment(metrics.retries)
        const nextPollAt = now + delay.value
        for (const listener of entry.listeners) {
          listener.onEvent(TaskEvent.Retrying({ taskKey: entry.taskKey, at: now, reason: error.message, nextPollAt }))
        }
        if (entries.get(entry.taskKey) === entry) reschedule(entry, nextPollAt)
      })

    const reschedule = (entry: Entry, dueAt: number) => {
      queue.schedule(entry, dueAt)
      wakeups.unsafeOffer(undefined)
    }

    // The one loop: wait for the most-due task, take one request from the shared budget, poll it
    // in a fiber of its own (so a slow answer never holds the others up), and go on.
    const loop = Effect.gen(function* () {
      for (;;) {
        const next = queue.peek()
        if (next === undefined) {
          yield* Queue.take(wakeups)
          continue
        }
        const now = yield* Clock.currentTimeMillis
        if (next.item.deadlineAt <= now) {
          queue.pop()
          failListeners(
            next.item,
            new DeadlineExceeded({ taskKey: next.item.taskKey, waitedMillis: now - next.item.trackedAt })
          )
          continue
        }
        const dueAt = Math.min(next.dueAt, next.item.deadlineAt)
        if (dueAt > now) {
          yield* Effect.race(Effect.sleep(Duration.millis(dueAt - now)), Queue.take(wakeups))
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
              if (entries.get(entry.taskKey) === entry) reschedule(entry, now + Math.max(entry.intervalMillis, 1000))
            })
          )
        )
      )
    const worker = Queue.take(ready).pipe(Effect.flatMap(pollSafely), Effect.forever)
    for (let index = 0; index < options.pollConcurrency; index++) yield* Effect.forkScoped(worker)
    yield* Effect.forkScoped(loop)

    const track: PollScheduler["track"] = (record, plan, listener) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        let entry = entries.get(record.taskKey)
        if (entry === undefined) {
          entry = {
            taskKey: record.taskKey,
            remoteTaskId: record.remoteTaskId!,
            intervalMillis: Duration.toMillis(plan.interval),
            trackedAt: now,
            deadlineAt: now + Duration.toMillis(plan.deadline),
            listeners: new Set(),
            retry: undefined,
            polls: 0,
            polling: false,
            lastTag: undefined,
            generation: 0
          }
          entries.set(record.taskKey, entry)
          const firstPollAt = Math.max(now, (record.submittedAt ?? now) + Duration.toMillis(plan.firstPollAfter))
          reschedule(entry, firstPollAt)
        }
        entry.listeners.add(listener)
        const tracked = entry
        return () =>
          Effect.sync(() => {
            tracked.listeners.delete(listener)
            // Nobody waits any more: stop polling at once. The task stays in the ledger, resumable.
            if (tracked.listeners.size === 0 && entries.get(tracked.taskKey) === tracked) forget(tracked)
          })
      })

    const pollNow: PollScheduler["pollNow"] = (taskKey) =>
      Effect.sync(() => {
        const entry = entries.get(taskKey)
        if (entry === undefined || entry.polling) return false
        reschedule(entry, 0)
        return true
      })

    return { track, pollNow, size: Effect.sync(() => entries.size) }
  })
