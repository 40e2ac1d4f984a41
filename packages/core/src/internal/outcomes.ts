// What a finished row means to a caller, as an Effect: the one translation from `TaskState.outcomeOf`
// to the client's typed errors, used by wait, watch, reconcile and the tracking module.
import * as Effect from "effect/Effect"
import {
  type DeadlineExceeded,
  type LedgerError,
  type ProviderError,
  RequestRejected,
  type RetryLater,
  SubmitOutcomeUnknown,
  TaskCancelled,
  TaskFailed,
  type UnknownTask
} from "../TaskError.js"
import type { TaskRecord } from "../TaskLedger.js"
import type { ResultStorageError } from "../ResultStorage.js"
import { outcomeOf } from "../TaskState.js"

/** Errors of waiting for a task. */
export type WaitError =
  | TaskFailed
  | TaskCancelled
  | DeadlineExceeded
  | SubmitOutcomeUnknown
  | RetryLater
  | ProviderError
  | LedgerError
  | UnknownTask
  | ResultStorageError

/**
 * The row's end as the caller sees it, when it has one: `undefined` while the task still runs,
 * is being submitted, or has outputs to store.
 */
export const finalOutcome = (record: TaskRecord): Effect.Effect<TaskRecord, WaitError> | undefined => {
  const outcome = outcomeOf(record)
  switch (outcome._tag) {
    case "Completed":
      return Effect.succeed(record)
    case "Failed":
      return Effect.fail(new TaskFailed({ taskKey: record.taskKey, code: outcome.code, failMessage: outcome.message }))
    case "Rejected":
      return Effect.fail(new RequestRejected({ status: 0, message: outcome.message }))
    case "Ambiguous":
      return Effect.fail(new SubmitOutcomeUnknown({ taskKey: record.taskKey, reason: outcome.reason }))
    case "Cancelled":
      return Effect.fail(new TaskCancelled({ taskKey: record.taskKey }))
    default:
      return undefined
  }
}
