// Tracking running tasks: a task the provider has is polled by the scheduler while anyone waits
// for it, each status is applied to the row as `TaskState.applyStatus` says, with fenced writes,
// and each waiter awaits a Deferred of its own (no fiber per waiter: deadlines are a due-time
// queue served by one fiber). The tracking process holds the row's lease (renewed at half-life);
// a process that finds another live holder follows the ledger instead of polling.
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Exit from "effect/Exit"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import {
  DeadlineExceeded,
  type LedgerError,
  type ProviderError,
  TaskCancelled,
  TaskFailed,
  UnknownTask
} from "../TaskError.js"
import { TaskEvent } from "../TaskEvent.js"
import type { TaskPatch, TaskRecord } from "../TaskLedger.js"
import type { PollPlan } from "../TaskProvider.js"
import { applyStatus, heldByOther, isInFlight } from "../TaskState.js"
import { Failed, type TaskStatus } from "../TaskStatus.js"
import { type ClientContext, noLease, publish, redactError, write } from "./clientContext.js"
import { finalOutcome, type WaitError } from "./outcomes.js"
import { DueQueue, type Scheduled } from "./dueQueue.js"
import * as PollScheduler from "./pollScheduler.js"
import type { Results } from "./results.js"

/** Another live process holds the task: follow the ledger instead of polling. Internal only. */
class HeldElsewhere extends Data.TaggedError("HeldElsewhere")<{ readonly record: TaskRecord }> {}

/** A task this process tracks: the row as it last wrote or read it, and who waits for it. */
interface Tracked {
  record: TaskRecord
  readonly plan: PollPlan
  readonly waiters: Set<Waiter>
}

/** One waiter: its outcome, and its deadline in the deadline queue. */
export interface Waiter extends Scheduled {
  readonly done: Deferred.Deferred<TaskRecord, WaitError | HeldElsewhere>
  readonly task: Tracked
  readonly startedAt: number
}

export interface Tracking {
  /** Waits until the task ends (deadline aside), tracking it while anyone waits. */
  readonly await: (record: TaskRecord, plan: PollPlan, deadlineAt: number) => Effect.Effect<TaskRecord, WaitError>
  /**
   * Registers a waiter without waiting (no fiber): `reconcile` registers every row, then awaits
   * them one after another. `Left` is a row that needs no tracking (or another process tracks it).
   */
  readonly join: (
    record: TaskRecord,
    plan: PollPlan,
    deadlineAt: number
  ) => Effect.Effect<Waiter | TaskRecord, LedgerError | UnknownTask>
  /** Awaits a registered waiter's outcome. */
  readonly awaitWaiter: (waiter: Waiter, plan: PollPlan, deadlineAt: number) => Effect.Effect<TaskRecord, WaitError>
  /** A registered waiter gives up without awaiting (its caller was interrupted); the last one stops the polling. */
  readonly leave: (waiter: Waiter) => Effect.Effect<void>
  /** Whether this process tracks the task. */
  readonly isTracked: (taskKey: string) => boolean
  /** Asks for the task's status now and applies it; returns the row after it. */
  readonly refresh: (record: TaskRecord) => Effect.Effect<TaskRecord, WaitError>
  /** Records a cancel the provider accepted: the row becomes `cancelled` and its waiters end with `TaskCancelled`. */
  readonly confirmCancel: (record: TaskRecord) => Effect.Effect<TaskRecord, LedgerError | UnknownTask>
  /** How many tasks are tracked. */
  readonly size: Effect.Effect<number>
}

export const make = (context: ClientContext, results: Results): Effect.Effect<Tracking, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { ledger, limits, settings } = context
    const scope = yield* Effect.scope
    const tracked = new Map<string, Tracked>()
    const statusContext = (now: number) => ({
      now,
      resultRetention: context.provider.hints.resultRetention,
      maxOutputs: context.results.maxOutputs
    })

    // A failure's texts come from the provider and may echo its secrets: cut them out before
    // anything is stored or published.
    const redacted = (status: TaskStatus): TaskStatus =>
      status._tag === "Failed"
        ? new Failed({
            code: context.redact(status.code),
            message: context.redact(status.message),
            remoteCreatedAt: status.remoteCreatedAt,
            remoteCompletedAt: status.remoteCompletedAt
          })
        : status

    const reread = (taskKey: string): Effect.Effect<TaskRecord, LedgerError | UnknownTask> =>
      Effect.flatMap(ledger.get(taskKey), (row) =>
        Option.isSome(row) ? Effect.succeed(row.value) : Effect.fail(new UnknownTask({ reference: taskKey }))
      )

    // Waiters' deadlines, served by one fiber.
    const deadlines = new DueQueue<Waiter>()
    const deadlineWakeups = yield* Queue.sliding<void>(1)

    /** Ends tracking of a task: no more polls, the slot freed when the task is over. */
    const stop = (task: Tracked, finished: boolean) =>
      Effect.suspend(() => {
        if (tracked.get(task.record.taskKey) === task) tracked.delete(task.record.taskKey)
        return finished ? limits.releaseTaskSlot(task.record.taskKey) : Effect.void
      })

    /** Gives every waiter of the task this outcome (run once, shared by all). */
    const settleWaiters = (task: Tracked, exit: Exit.Exit<TaskRecord, WaitError | HeldElsewhere>) =>
      Effect.forEach(
        task.waiters,
        (waiter) => {
          deadlines.unschedule(waiter)
          return Deferred.done(waiter.done, exit)
        },
        { discard: true }
      ).pipe(Effect.ensuring(Effect.sync(() => task.waiters.clear())))

    const conclude = (task: Tracked, outcome: Effect.Effect<TaskRecord, WaitError | HeldElsewhere>) =>
      Effect.zipRight(
        stop(task, true),
        Effect.flatMap(Effect.exit(outcome), (exit) => settleWaiters(task, exit))
      )

    /** A fenced write of a status's patch; on a lost race, re-reads and applies the status to the fresh row. */
    const record = (
      task: Tracked,
      patch: TaskPatch,
      status: TaskStatus,
      attempts: number
    ): Effect.Effect<TaskRecord | undefined, LedgerError | UnknownTask | HeldElsewhere> =>
      write(context, task.record, patch).pipe(
        Effect.map((updated) => {
          task.record = updated
          return updated
        }),
        Effect.catchTags({
          StaleTransition: () =>
            Effect.flatMap(
              reread(task.record.taskKey),
              (fresh): Effect.Effect<TaskRecord | undefined, LedgerError | UnknownTask | HeldElsewhere> => {
                task.record = fresh
                return Effect.flatMap(Clock.currentTimeMillis, (now) =>
                  heldByOther(fresh, context.owner, now)
                    ? Effect.fail(new HeldElsewhere({ record: fresh }))
                    : attempts >= 3
                      ? Effect.succeed(undefined)
                      : Effect.flatMap(patchFor(task, status, now), (next) =>
                          next === undefined ? Effect.succeed(undefined) : record(task, next, status, attempts + 1)
                        )
                )
              }
            ),
          DuplicateRemoteId: (error) => Effect.die(error)
        })
      )

    // The patch a status asks for on the row as tracked (with the lease renewed when due), or
    // `undefined` when nothing needs writing.
    const patchFor = (task: Tracked, status: TaskStatus, now: number): Effect.Effect<TaskPatch | undefined> =>
      Effect.sync(() => patchNow(task, status, now))
    const patchNow = (task: Tracked, status: TaskStatus, now: number): TaskPatch | undefined => {
      const effect = applyStatus(task.record, redacted(status), statusContext(now))
      const renewal = leaseRenewal(task.record, now)
      switch (effect._tag) {
        case "Unchanged":
          return renewal
        case "Ignore":
          return undefined
        case "Advance":
          return { ...effect.patch, ...renewal }
        case "Finish":
          // A task over here (failed, cancelled) gives its lease back; a succeeded one keeps it
          // while its outputs are stored.
          return effect.patch.state !== "succeeded" ? { ...effect.patch, ...noLease } : { ...effect.patch, ...renewal }
      }
    }
    const leaseRenewal = (row: TaskRecord, now: number): TaskPatch | undefined =>
      row.leaseOwner === context.owner && (row.leaseExpiresAt ?? 0) - now > settings.leaseMillis / 2
        ? undefined
        : { leaseOwner: context.owner, leaseExpiresAt: now + settings.leaseMillis }

    /** What a status means for a tracked task; true when the task is finished. */
    const onStatus = (task: Tracked, status: TaskStatus, nextPollAt: number): Effect.Effect<boolean> =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        const patch = patchNow(task, status, now)
        // The common case, a task still running as it was: nothing to write, no Effect.gen on the poll path.
        if (patch === undefined && isInFlight(task.record.state)) {
          return Effect.as(publishProgress(task.record.taskKey, status, now, nextPollAt), false)
        }
        return writeThenTell(task, status, patch, now, nextPollAt)
      })
    const publishProgress = (taskKey: string, status: TaskStatus, now: number, nextPollAt: number) =>
      publish(context, () =>
        status._tag === "Processing"
          ? TaskEvent.Processing({ taskKey, at: now, progress: status.progress, nextPollAt })
          : TaskEvent.Pending({ taskKey, at: now, nextPollAt })
      )
    const writeThenTell = (
      task: Tracked,
      status: TaskStatus,
      patch: TaskPatch | undefined,
      now: number,
      nextPollAt: number
    ): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        if (patch !== undefined) {
          const written = yield* Effect.either(record(task, patch, status, 0))
          if (written._tag === "Left") {
            yield* conclude(task, Effect.fail(written.left))
            return true
          }
        }
        return yield* afterStatus(task, status, now, nextPollAt)
      })

    // Tells waiters what the row now says: progress while it runs, the outcome when it ends.
    const afterStatus = (task: Tracked, status: TaskStatus, now: number, nextPollAt: number) =>
      Effect.gen(function* () {
        const row = task.record
        const taskKey = row.taskKey
        if (isInFlight(row.state)) {
          yield* publishProgress(taskKey, status, now, nextPollAt)
          return false
        }
        if (row.submittedAt !== undefined)
          yield* Metric.update(context.metrics.completion, (now - row.submittedAt) / 1000)
        if (row.state === "failed") {
          yield* Metric.increment(context.metrics.failures)
          yield* publish(context, () =>
            TaskEvent.Failed({
              taskKey,
              at: now,
              code: row.failCode ?? "UNKNOWN",
              message: row.failMessage ?? "",
              record: row
            })
          )
          yield* conclude(
            task,
            Effect.fail(
              new TaskFailed({ taskKey, code: row.failCode ?? "UNKNOWN", failMessage: row.failMessage ?? "" })
            )
          )
          return true
        }
        if (row.state === "succeeded") {
          // The slot is free as soon as the provider is done; storing the outputs needs none.
          yield* stop(task, true)
          yield* Effect.forkIn(
            Effect.flatMap(Effect.exit(results.finish(row)), (exit) => settleWaiters(task, exit)),
            scope
          )
          return true
        }
        yield* conclude(task, finalOutcome(row) ?? Effect.succeed(row))
        return true
      })

    const onRetry = (task: Tracked, error: ProviderError, nextPollAt: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        publish(context, () =>
          TaskEvent.Retrying({
            taskKey: task.record.taskKey,
            at: now,
            reason: context.redact(error.message),
            nextPollAt
          })
        )
      )

    const scheduler = yield* PollScheduler.make({
      provider: context.provider,
      limits,
      retry: settings.retry,
      pollConcurrency: settings.pollConcurrency,
      metrics: context.metrics,
      spanAttributes: context.spanAttributes,
      handler: {
        onStatus: (entry, status, nextPollAt) => {
          const task = tracked.get(entry.taskKey)
          return task === undefined ? Effect.succeed(true) : onStatus(task, status, nextPollAt)
        },
        onRetry: (entry, error, nextPollAt) => {
          const task = tracked.get(entry.taskKey)
          return task === undefined ? Effect.void : onRetry(task, error, nextPollAt)
        },
        onGiveUp: (entry, error) => {
          const task = tracked.get(entry.taskKey)
          return task === undefined
            ? Effect.void
            : Effect.zipRight(stop(task, false), settleWaiters(task, Exit.fail(redactError(context.redact, error))))
        }
      }
    })

    /** Takes the row's lease for this process; fails with HeldElsewhere when another live process has it. */
    const claim = (
      row: TaskRecord,
      attempts = 0
    ): Effect.Effect<TaskRecord, LedgerError | UnknownTask | HeldElsewhere> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        heldByOther(row, context.owner, now)
          ? Effect.fail(new HeldElsewhere({ record: row }))
          : write(context, row, { leaseOwner: context.owner, leaseExpiresAt: now + settings.leaseMillis }).pipe(
              Effect.catchTags({
                StaleTransition: () =>
                  Effect.flatMap(reread(row.taskKey), (fresh) =>
                    isInFlight(fresh.state) && attempts < 3 ? claim(fresh, attempts + 1) : Effect.succeed(fresh)
                  ),
                DuplicateRemoteId: (error) => Effect.die(error)
              })
            )
      )

    /** Starts tracking a running row (or joins its tracking); `Left` is a row that is no longer running. */
    const begin = (row: TaskRecord, plan: PollPlan) =>
      Effect.gen(function* () {
        const existing = tracked.get(row.taskKey)
        if (existing !== undefined) return existing
        const claimed = yield* claim(row)
        const again = tracked.get(row.taskKey)
        if (again !== undefined) return again
        if (!isInFlight(claimed.state)) return claimed
        const now = yield* Clock.currentTimeMillis
        const task: Tracked = { record: claimed, plan, waiters: new Set() }
        tracked.set(claimed.taskKey, task)
        // A task this process did not submit (resumed after a restart, or submitted elsewhere) is
        // in flight on the account too: it takes its slot, in the background so the polls need not
        // wait; a slot that comes after the task ended is given back at once.
        if (!(yield* limits.holdsTaskSlot(claimed.taskKey))) {
          yield* Effect.forkIn(
            Effect.zipRight(
              limits.acquireTaskSlot(claimed.taskKey),
              Effect.suspend(() =>
                tracked.has(claimed.taskKey) ? Effect.void : limits.releaseTaskSlot(claimed.taskKey)
              )
            ),
            scope
          )
        }
        const firstPollAt = Math.max(now, (claimed.submittedAt ?? now) + Duration.toMillis(plan.firstPollAfter))
        yield* scheduler.track(claimed.taskKey, claimed.remoteTaskId!, firstPollAt, Duration.toMillis(plan.interval))
        return task
      })

    /** A waiter leaves (deadline or interrupt); the last one stops the polling and gives the lease back. */
    const leave = (waiter: Waiter) =>
      Effect.suspend(() => {
        const task = waiter.task
        deadlines.unschedule(waiter)
        if (!task.waiters.delete(waiter) || task.waiters.size > 0 || tracked.get(task.record.taskKey) !== task) {
          return Effect.void
        }
        tracked.delete(task.record.taskKey)
        // So any process can take the task at once; the task stays in flight and resumable.
        return scheduler
          .untrack(task.record.taskKey)
          .pipe(Effect.zipRight(write(context, task.record, noLease)), Effect.ignore)
      })

    // The one deadline fiber: fails each waiter whose deadline passed.
    const deadlineLoop = Effect.gen(function* () {
      for (;;) {
        const next = deadlines.peek()
        if (next === undefined) {
          yield* Queue.take(deadlineWakeups)
          continue
        }
        const now = yield* Clock.currentTimeMillis
        if (next.dueAt > now) {
          yield* Effect.race(Effect.sleep(Duration.millis(next.dueAt - now)), Queue.take(deadlineWakeups))
          continue
        }
        deadlines.pop()
        const waiter = next.item
        yield* Deferred.fail(
          waiter.done,
          new DeadlineExceeded({ taskKey: waiter.task.record.taskKey, waitedMillis: now - waiter.startedAt })
        )
        yield* leave(waiter)
      }
    })
    yield* Effect.forkScoped(deadlineLoop)

    const join: Tracking["join"] = (row, plan, deadlineAt) =>
      Effect.uninterruptible(
        Effect.gen(function* () {
          const task = yield* begin(row, plan).pipe(
            Effect.catchTag("HeldElsewhere", (held) => Effect.succeed(held.record))
          )
          if (!("waiters" in task)) return task
          const waiter: Waiter = {
            done: Deferred.unsafeMake(FiberId.none),
            task,
            startedAt: yield* Clock.currentTimeMillis,
            generation: 0
          }
          task.waiters.add(waiter)
          deadlines.schedule(waiter, deadlineAt)
          deadlineWakeups.unsafeOffer(undefined)
          return waiter
        })
      )

    const awaitWaiter: Tracking["awaitWaiter"] = (waiter, plan, deadlineAt) =>
      Deferred.await(waiter.done).pipe(
        Effect.onInterrupt(() => leave(waiter)),
        Effect.catchTag("HeldElsewhere", (held) => follow(held.record, plan, deadlineAt))
      )

    const awaitTask: Tracking["await"] = (row, plan, deadlineAt) =>
      Effect.flatMap(join(row, plan, deadlineAt), (joined) =>
        "done" in joined ? awaitWaiter(joined, plan, deadlineAt) : next(joined, plan, deadlineAt)
      )

    // A row that is no longer running when tracking would begin: what it became decides.
    const next = (row: TaskRecord, plan: PollPlan, deadlineAt: number): Effect.Effect<TaskRecord, WaitError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        row.state === "succeeded"
          ? results.finish(row)
          : isInFlight(row.state)
            ? heldByOther(row, context.owner, now)
              ? follow(row, plan, deadlineAt)
              : awaitTask(row, plan, deadlineAt)
            : (finalOutcome(row) ?? Effect.succeed(row))
      )

    const deadlineError = (taskKey: string, startedAt: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.fail(new DeadlineExceeded({ taskKey, waitedMillis: now - startedAt }))
      )

    /**
     * Another live process tracks the task: read the ledger at the poll interval (no provider
     * requests, no budget) until the row ends, or its holder goes and this process takes over.
     */
    const follow = (row: TaskRecord, plan: PollPlan, deadlineAt: number): Effect.Effect<TaskRecord, WaitError> =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        let current = row
        for (;;) {
          const now = yield* Clock.currentTimeMillis
          if (now >= deadlineAt) return yield* deadlineError(row.taskKey, startedAt)
          const done = finalOutcome(current)
          if (done !== undefined) return yield* done
          if (!heldByOther(current, context.owner, now)) {
            const taken: Effect.Effect<TaskRecord, WaitError> = next(current, plan, deadlineAt)
            return yield* taken
          }
          const wakeAt = Math.min(deadlineAt, now + Duration.toMillis(plan.interval), current.leaseExpiresAt ?? now)
          yield* Effect.sleep(Duration.millis(Math.max(1, wakeAt - now)))
          current = yield* reread(row.taskKey)
        }
      })

    const refresh: Tracking["refresh"] = (row) =>
      Effect.gen(function* () {
        if (!isInFlight(row.state) || row.remoteTaskId === undefined) return row
        const polled = yield* scheduler.pollNow(row.taskKey)
        if (Option.isSome(polled)) {
          yield* Deferred.await(polled.value)
          return yield* reread(row.taskKey)
        }
        // Not tracked here: one status request, applied like a poll's, then the task is left.
        yield* limits.takeRequest
        yield* Metric.increment(context.metrics.polls)
        const status = yield* context.provider.status(row.remoteTaskId).pipe(
          Effect.mapError((error) => redactError(context.redact, error)),
          Effect.withSpan("reelkit.status", {
            captureStackTrace: false,
            attributes: { ...context.spanAttributes, "reelkit.task_key": row.taskKey }
          })
        )
        const now = yield* Clock.currentTimeMillis
        const effect = applyStatus(row, redacted(status), statusContext(now))
        if (effect._tag !== "Advance" && effect._tag !== "Finish") return row
        const patch = isInFlight(effect.patch.state ?? row.state) ? effect.patch : { ...effect.patch, ...noLease }
        const updated = yield* write(context, row, patch).pipe(
          Effect.catchTags({
            StaleTransition: () => reread(row.taskKey),
            DuplicateRemoteId: (error) => Effect.die(error)
          })
        )
        if (!isInFlight(updated.state)) yield* limits.releaseTaskSlot(updated.taskKey)
        if (updated.state === "succeeded") return yield* results.finish(updated)
        return updated
      })

    const confirmCancel: Tracking["confirmCancel"] = (row) =>
      Effect.gen(function* () {
        let current = row
        for (let attempt = 0; ; attempt++) {
          const written = yield* Effect.either(write(context, current, { state: "cancelled", ...noLease }))
          if (written._tag === "Right") {
            current = written.right
            break
          }
          const error = written.left
          if (error._tag === "DuplicateRemoteId") return yield* Effect.die(error)
          if (error._tag === "StaleTransition" && attempt >= 3) return current
          if (error._tag !== "StaleTransition") return yield* Effect.fail(error)
          current = yield* reread(row.taskKey)
          // Finished (or cancelled) before the cancel landed: the row says what happened.
          if (!isInFlight(current.state)) return current
        }
        const task = tracked.get(row.taskKey)
        if (task !== undefined) {
          task.record = current
          yield* scheduler.untrack(row.taskKey)
          yield* conclude(task, Effect.fail(new TaskCancelled({ taskKey: row.taskKey })))
        } else {
          yield* limits.releaseTaskSlot(row.taskKey)
        }
        const now = yield* Clock.currentTimeMillis
        yield* publish(context, () => TaskEvent.Cancelled({ taskKey: row.taskKey, at: now, record: current }))
        return current
      })

    return {
      await: awaitTask,
      join,
      awaitWaiter,
      leave,
      isTracked: (taskKey) => tracked.has(taskKey),
      refresh,
      confirmCancel,
      size: Effect.sync(() => tracked.size)
    }
  })
