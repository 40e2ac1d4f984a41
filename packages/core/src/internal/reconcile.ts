// Recovery after a restart: every unfinished row of this provider and model is taken through what
// `TaskState.recoveryOf` says it needs: a queued submit is sent (its first and only send), a submit
// caught sending by a dead process becomes ambiguous, a running task is tracked to its end, a
// succeeded one has its outputs stored. Rows another live process holds are reported and left.
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { recoveryOf, submitStates, unfinishedStates } from "../TaskState.js"
import type { TaskRecord } from "../TaskLedger.js"
import type { PollPlan } from "../TaskProvider.js"
import type { LedgerError } from "../TaskError.js"
import type { ClientContext } from "./clientContext.js"
import type { WaitError } from "./outcomes.js"
import type { StartError, Submitter } from "./submit.js"
import type { Results } from "./results.js"
import type * as Tracking from "./tracking.js"

/** What `reconcile` did. */
export interface ReconcileSummary {
  /** Unfinished rows this process took on. */
  readonly claimed: number
  readonly completed: ReadonlyArray<string>
  readonly failed: ReadonlyArray<string>
  /** Tasks whose submit may have created a task that nobody knows: never re-sent, the caller decides. */
  readonly ambiguous: ReadonlyArray<string>
  /**
   * Tasks still running or not finished now: `error` is the typed error's tag (`DeadlineExceeded`
   * when still running and resumable; `SubmitInProgress` when a live process, this one or another,
   * is submitting it; `HeldElsewhere` when another live process tracks it), `reason` its message.
   */
  readonly unfinished: ReadonlyArray<{ readonly taskKey: string; readonly error: string; readonly reason: string }>
}

type Verdict =
  | { readonly _tag: "completed" | "failed" | "ambiguous"; readonly taskKey: string }
  | { readonly _tag: "unfinished"; readonly taskKey: string; readonly error: string; readonly reason: string }

/** A running row to track: registered with the tracker, awaited after every row is registered. */
type ToTrack = { readonly _tag: "track"; readonly record: TaskRecord }

export interface Reconciler {
  readonly reconcile: (
    plan: (record: TaskRecord) => PollPlan,
    deadlineAt: number
  ) => Effect.Effect<ReconcileSummary, LedgerError>
}

export const make = (
  context: ClientContext,
  submitter: Submitter,
  tracking: Tracking.Tracking,
  results: Results
): Reconciler => {
  const verdictOf = (taskKey: string, outcome: Effect.Effect<TaskRecord, WaitError | StartError>) =>
    Effect.match(outcome, {
      onSuccess: (row): Verdict => ({ _tag: "completed", taskKey: row.taskKey }),
      onFailure: (error): Verdict =>
        error._tag === "TaskFailed"
          ? { _tag: "failed", taskKey }
          : error._tag === "SubmitOutcomeUnknown"
            ? { _tag: "ambiguous", taskKey }
            : { _tag: "unfinished", taskKey, error: error._tag, reason: context.redact(error.message) }
    })

  const recoverOne = (
    record: TaskRecord,
    plan: (record: TaskRecord) => PollPlan,
    deadlineAt: number,
    now: number
  ): Effect.Effect<Verdict | ToTrack | undefined> =>
    Effect.gen(function* () {
      if (yield* submitter.isSubmitting(record.taskKey)) {
        return {
          _tag: "unfinished",
          taskKey: record.taskKey,
          error: "SubmitInProgress",
          reason: `Task ${record.taskKey} is being submitted by this process`
        }
      }
      const recovery = recoveryOf(record, context.owner, now)
      switch (recovery._tag) {
        case "Nothing":
          return undefined
        case "HeldElsewhere":
          return {
            _tag: "unfinished",
            taskKey: record.taskKey,
            error: submitStates.includes(record.state) ? "SubmitInProgress" : "HeldElsewhere",
            reason: `Another live process (${recovery.owner}) holds task ${record.taskKey} until ${new Date(recovery.until).toISOString()}; it is left to that process`
          }
        case "Send":
        case "MarkAmbiguous":
          return yield* verdictOf(
            record.taskKey,
            Effect.flatMap(submitter.recover(record, deadlineAt), (submitted) =>
              tracking.await(submitted, plan(submitted), deadlineAt)
            )
          )
        case "Track":
          // Handled in bulk by `reconcile`: registered now, awaited one after another.
          return { _tag: "track", record }
        case "StoreOutputs":
          return yield* verdictOf(record.taskKey, results.finish(record))
      }
    })

  /**
   * Running rows cost no fiber each: every one is registered with the tracker (one waiter record),
   * then a single fiber awaits them in turn while the scheduler polls them all. Their concurrency
   * slots are re-taken in the background (a slot the task already holds is a no-op); a task that
   * ended before its slot came gives it back at once.
   */
  const trackAll = (rows: ReadonlyArray<TaskRecord>, plan: (record: TaskRecord) => PollPlan, deadlineAt: number) => {
    const joined: Array<{ readonly row: TaskRecord; readonly joined: Tracking.Waiter | TaskRecord }> = []
    return Effect.gen(function* () {
      const slots = yield* Effect.fork(
        Effect.forEach(
          rows,
          (row) =>
            Effect.zipRight(
              context.limits.acquireTaskSlot(row.taskKey),
              Effect.suspend(() =>
                tracking.isTracked(row.taskKey) ? Effect.void : context.limits.releaseTaskSlot(row.taskKey)
              )
            ),
          { discard: true }
        )
      )
      for (const row of rows) {
        const result = yield* Effect.either(tracking.join(row, plan(row), deadlineAt))
        joined.push({ row, joined: result._tag === "Right" ? result.right : row })
      }
      const verdicts: Array<Verdict> = []
      for (const { joined: entry, row } of joined) {
        verdicts.push(
          yield* verdictOf(
            row.taskKey,
            "done" in entry
              ? tracking.awaitWaiter(entry, plan(row), deadlineAt)
              : tracking.await(entry, plan(entry), deadlineAt)
          )
        )
      }
      yield* Fiber.interrupt(slots)
      return verdicts
    }).pipe(
      // Interrupted (Ctrl-C): every waiter registered and not yet awaited leaves too, so polling
      // stops and the leases are given back, leaving every row resumable.
      Effect.onInterrupt(() =>
        Effect.forEach(joined, ({ joined: entry }) => ("done" in entry ? tracking.leave(entry) : Effect.void), {
          discard: true
        })
      )
    )
  }

  const reconcile: Reconciler["reconcile"] = (plan, deadlineAt) =>
    Effect.gen(function* () {
      const rows = yield* context.ledger.list({
        states: unfinishedStates,
        providerId: context.provider.providerId,
        modelId: context.provider.modelId
      })
      const now = yield* Clock.currentTimeMillis
      const classified = yield* Effect.forEach(rows, (row) => recoverOne(row, plan, deadlineAt, now), {
        concurrency: "unbounded"
      })
      const toTrack = classified.flatMap((entry) => (entry?._tag === "track" ? [entry.record] : []))
      const verdicts = [
        ...classified.flatMap((entry) => (entry === undefined || entry._tag === "track" ? [] : [entry])),
        ...(yield* trackAll(toTrack, plan, deadlineAt))
      ]
      const summary = {
        claimed: 0,
        completed: [] as Array<string>,
        failed: [] as Array<string>,
        ambiguous: [] as Array<string>,
        unfinished: [] as Array<{ taskKey: string; error: string; reason: string }>
      }
      for (const verdict of verdicts) {
        if (verdict._tag === "unfinished") {
          summary.unfinished.push({ taskKey: verdict.taskKey, error: verdict.error, reason: verdict.reason })
          if (verdict.error === "SubmitInProgress" || verdict.error === "HeldElsewhere") continue
        } else {
          summary[verdict._tag].push(verdict.taskKey)
        }
        summary.claimed += 1
      }
      return summary
    }).pipe(Effect.withSpan("reelkit.reconcile", { attributes: context.spanAttributes }))

  return { reconcile }
}
