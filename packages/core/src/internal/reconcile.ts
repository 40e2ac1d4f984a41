// Recovery after a restart: every unfinished row of this provider and model is taken through what
// `TaskState.recoveryOf` says it needs: a queued submit is sent (its first and only send), a submit
// caught sending by a dead process becomes ambiguous, a running task is tracked to its end, a
// succeeded one has its outputs stored. Rows another live process holds are reported and left.
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { recoveryOf, submitStates, unfinishedStates } from "../TaskState.js"
import type { TaskRecord } from "../TaskLedger.js"
import type { PollPlan } from "../TaskProvider.js"
import type { LedgerError } from "../TaskError.js"
import type { ClientContext } from "./clientContext.js"
import type { WaitError } from "./outcomes.js"
import type { StartError, Submitter } from "./submit.js"
import type { Results } from "./results.js"
import type { Tracking } from "./tracking.js"

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

export interface Reconciler {
  readonly reconcile: (plan: (record: TaskRecord) => PollPlan, deadlineAt: number) => Effect.Effect<ReconcileSummary, LedgerError>
}

export const make = (
  context: ClientContext,
  submitter: Submitter,
  tracking: Tracking,
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
  ): Effect.Effect<Verdict | undefined> =>
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
          return yield* verdictOf(record.taskKey, tracking.await(record, plan(record), deadlineAt))
        case "StoreOutputs":
          return yield* verdictOf(record.taskKey, results.finish(record))
      }
    })

  const reconcile: Reconciler["reconcile"] = (plan, deadlineAt) =>
    Effect.gen(function* () {
      const rows = yield* context.ledger.list({
        states: unfinishedStates,
        providerId: context.provider.providerId,
        modelId: context.provider.modelId
      })
      const now = yield* Clock.currentTimeMillis
      const verdicts = yield* Effect.forEach(rows, (row) => recoverOne(row, plan, deadlineAt, now), {
        concurrency: "unbounded"
      })
      const summary = {
        claimed: 0,
        completed: [] as Array<string>,
        failed: [] as Array<string>,
        ambiguous: [] as Array<string>,
        unfinished: [] as Array<{ taskKey: string; error: string; reason: string }>
      }
      for (const verdict of verdicts) {
        if (verdict === undefined) continue
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
