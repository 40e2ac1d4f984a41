// Tracking running tasks: a task the provider has is polled by the scheduler while anyone waits
// for it, each status is applied to the row as `TaskState.applyStatus` says, with fenced writes,
// and waiters await one Deferred per task. The tracking process holds the row's lease (renewed at
// half-life); a process that finds another live holder follows the ledger instead of polling.
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
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
import { type ClientContext, noLease, publish, write } from "./clientContext.js"
import { finalOutcome, type WaitError } from "./outcomes.js"
import * as PollScheduler from "./pollScheduler.js"
import type { Results } from "./results.js"

/** Another live process holds the task: follow the ledger instead of polling. Internal only. */
class HeldElsewhere extends Data.TaggedError("HeldElsewhere")<{ readonly record: TaskRecord }> {}

/** A task this process tracks: the row as it last wrote or read it, and the one outcome every waiter awaits. */
interface Tracked {
  record: TaskRecord
  readonly done: Deferred.Deferred<TaskRecord, WaitError | HeldElsewhere>
  readonly plan: PollPlan
  waiters: number
  /** The fiber taking the task's concurrency slot (a no-op when the task holds one already). */
  readonly slot: Fiber.RuntimeFiber<void>
}

export interface Tracking {
  /** Waits until the task ends (deadline aside), tracking it while anyone waits. */
  readonly await: (record: TaskRecord, plan: PollPlan, deadlineAt: number) => Effect.Effect<TaskRecord, WaitError>
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

    /** Ends tracking of a task: no more polls, the slot freed when the task is over. */
    const stop = (task: Tracked, finished: boolean) =>
      Effect.gen(function* () {
        if (tracked.get(task.record.taskKey) === undefined) return
        tracked.delete(task.record.taskKey)
        if (finished) {
          yield* Fiber.interrupt(task.slot)
          yield* limits.releaseTaskSlot(task.record.taskKey)
        }
      })

    const conclude = (task: Tracked, outcome: Effect.Effect<TaskRecord, WaitError | HeldElsewhere>) =>
      Effect.zipRight(stop(task, true), Deferred.complete(task.done, outcome))

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
            Effect.flatMap(reread(task.record.taskKey), (fresh): Effect.Effect<TaskRecord | undefined, LedgerError | UnknownTask | HeldElsewhere> => {
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
            }),
          DuplicateRemoteId: (error) => Effect.die(error)
        })
      )

    // The patch a status asks for on the row as tracked (with the lease renewed when due), or
    // `undefined` when nothing needs writing.
    const patchFor = (task: Tracked, status: TaskStatus, now: number): Effect.Effect<TaskPatch | undefined> =>
      Effect.sync(() => {
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
            // A failed task is over here; a succeeded one keeps the lease while its outputs are stored.
            return effect.patch.state === "failed" ? { ...effect.patch, ...noLease } : { ...effect.patch, ...renewal }
        }
      })
    const leaseRenewal = (row: TaskRecord, now: number): TaskPatch | undefined =>
      row.leaseOwner === context.owner && (row.leaseExpiresAt ?? 0) - now > settings.leaseMillis / 2
        ? undefined
        : { leaseOwner: context.owner, leaseExpiresAt: now + settings.leaseMillis }

    /** What a status means for a tracked task; true when the task is finished. */
    const onStatus = (task: Tracked, status: TaskStatus, nextPollAt: number): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const patch = yield* patchFor(task, status, now)
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
          yield* publish(
            context,
            status._tag === "Processing"
              ? TaskEvent.Processing({ taskKey, at: now, progress: status.progress, nextPollAt })
              : TaskEvent.Pending({ taskKey, at: now, nextPollAt })
          )
          return false
        }
        if (row.submittedAt !== undefined) yield* Metric.update(context.metrics.completion, (now - row.submittedAt) / 1000)
        if (row.state === "failed") {
          yield* Metric.increment(context.metrics.failures)
          yield* publish(
            context,
            TaskEvent.Failed({ taskKey, at: now, code: row.failCode ?? "UNKNOWN", message: row.failMessage ?? "", record: row })
          )
          yield* conclude(task, Effect.fail(new TaskFailed({ taskKey, code: row.failCode ?? "UNKNOWN", failMessage: row.failMessage ?? "" })))
          return true
        }
        if (row.state === "succeeded") {
          // The slot is free as soon as the provider is done; storing the outputs needs none.
          yield* stop(task, true)
          yield* Effect.forkIn(Deferred.complete(task.done, results.finish(row)), scope)
          return true
        }
        yield* conclude(task, finalOutcome(row) ?? Effect.succeed(row))
        return true
      })

    const onRetry = (task: Tracked, error: ProviderError, nextPollAt: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        publish(
          context,
          TaskEvent.Retrying({ taskKey: task.record.taskKey, at: now, reason: context.redact(error.message), nextPollAt })
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
          return task === undefined ? Effect.void : Effect.zipRight(stop(task, false), Deferred.fail(task.done, error))
        }
      }
    })

    /** Takes the row's lease for this process; fails with HeldElsewhere when another live process has it. */
    const claim = (row: TaskRecord, attempts = 0): Effect.Effect<TaskRecord, LedgerError | UnknownTask | HeldElsewhere> =>
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
        const task: Tracked = {
          record: claimed,
          done: Deferred.unsafeMake(FiberId.none),
          plan,
          waiters: 0,
          slot: yield* Effect.forkIn(limits.acquireTaskSlot(claimed.taskKey), scope)
        }
        tracked.set(claimed.taskKey, task)
        const firstPollAt = Math.max(now, (claimed.submittedAt ?? now) + Duration.toMillis(plan.firstPollAfter))
        yield* scheduler.track(claimed.taskKey, claimed.remoteTaskId!, firstPollAt, Duration.toMillis(plan.interval))
        return task
      })

    /** The last waiter left: stop polling and give the lease back so any process can take the task at once. */
    const leave = (task: Tracked) =>
      Effect.suspend(() => {
        task.waiters -= 1
        if (task.waiters > 0 || tracked.get(task.record.taskKey) !== task) return Effect.void
        tracked.delete(task.record.taskKey)
        return scheduler.untrack(task.record.taskKey).pipe(
          Effect.zipRight(write(context, task.record, noLease)),
          Effect.ignore
        )
      })

    const deadlineError = (taskKey: string, startedAt: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.fail(new DeadlineExceeded({ taskKey, waitedMillis: now - startedAt }))
      )

    const awaitTask: Tracking["await"] = (row, plan, deadlineAt) =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        const outcome = yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function* () {
            const task = yield* begin(row, plan)
            if (!("done" in task)) return yield* (finalOutcome(task) ?? next(task, plan, deadlineAt))
            task.waiters += 1
            return yield* restore(
              Deferred.await(task.done).pipe(
                Effect.timeoutFail({
                  duration: Duration.millis(Math.max(0, deadlineAt - startedAt)),
                  onTimeout: () => new DeadlineExceeded({ taskKey: row.taskKey, waitedMillis: 0 })
                })
              )
            ).pipe(Effect.ensuring(leave(task)))
          })
        ).pipe(
          Effect.catchTag("DeadlineExceeded", (error) => deadlineError(error.taskKey, startedAt)),
          Effect.catchTag("HeldElsewhere", (held) => follow(held.record, plan, deadlineAt))
        )
        return outcome
      })

    // A row that is no longer running when tracking would begin: what it became decides.
    const next = (row: TaskRecord, plan: PollPlan, deadlineAt: number): Effect.Effect<TaskRecord, WaitError> =>
      row.state === "succeeded"
        ? results.finish(row)
        : isInFlight(row.state)
          ? awaitTask(row, plan, deadlineAt)
          : (finalOutcome(row) ?? Effect.succeed(row))

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
          if (!heldByOther(current, context.owner, now)) return yield* next(current, plan, deadlineAt)
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
          Effect.withSpan("reelkit.status", {
            captureStackTrace: false,
            attributes: { ...context.spanAttributes, "reelkit.task_key": row.taskKey }
          })
        )
        const now = yield* Clock.currentTimeMillis
        const effect = applyStatus(row, redacted(status), statusContext(now))
        if (effect._tag !== "Advance" && effect._tag !== "Finish") return row
        const patch = effect.patch.state === "succeeded" || effect.patch.state === "failed" ? { ...effect.patch, ...noLease } : effect.patch
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
        yield* publish(context, TaskEvent.Cancelled({ taskKey: row.taskKey, at: now, record: current }))
        return current
      })

    return { await: awaitTask, refresh, confirmCancel, size: Effect.sync(() => tracked.size) }
  })
