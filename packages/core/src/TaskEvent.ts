/**
 * What `TaskClient.watch` reports as a task moves, for progress bars and UIs.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type { StoredArtifact, TaskRecord, TaskState } from "./TaskLedger.js"

/** A task event. Every event carries the task key and the time it was observed (epoch ms). */
export type TaskEvent = Data.TaggedEnum<{
  /**
   * The submit is waiting before it is sent (nothing of it is out): for the account's budget, a
   * `Retry-After`, or a retry delay. `retryAt` is when it expects to send, when known.
   */
  Queued: {
    readonly taskKey: string
    readonly at: number
    readonly reason: string
    readonly retryAt: number | undefined
    readonly attempt: number
  }
  /** A submit attempt is being sent: from here until its answer, the task may exist remotely. */
  Sending: { readonly taskKey: string; readonly at: number; readonly attempt: number }
  /** The provider accepted the task (or it was found already submitted). */
  Submitted: { readonly taskKey: string; readonly remoteTaskId: string; readonly at: number }
  /** The provider reports the task queued. */
  Pending: { readonly taskKey: string; readonly at: number; readonly nextPollAt: number | undefined }
  /** The provider reports the task running. */
  Processing: {
    readonly taskKey: string
    readonly at: number
    readonly progress: number | undefined
    readonly nextPollAt: number | undefined
  }
  /** A status request failed transiently and will be retried. */
  Retrying: { readonly taskKey: string; readonly at: number; readonly reason: string; readonly nextPollAt: number }
  /** The provider finished the task; `artifacts` holds what was stored (empty without a store). */
  Succeeded: {
    readonly taskKey: string
    readonly at: number
    readonly resultUrls: ReadonlyArray<string>
    readonly artifacts: ReadonlyArray<StoredArtifact>
    readonly record: TaskRecord
  }
  /** The task ended in failure. */
  Failed: {
    readonly taskKey: string
    readonly at: number
    readonly code: string
    readonly message: string
    readonly record: TaskRecord
  }
  /** The provider confirmed a cancel. */
  Cancelled: { readonly taskKey: string; readonly at: number; readonly record: TaskRecord }
}>

/** Constructors and matchers for task events. */
export const TaskEvent = Data.taggedEnum<TaskEvent>()

/** Whether the event ends the task's stream. */
export const isFinal = (event: TaskEvent): boolean =>
  event._tag === "Succeeded" || event._tag === "Failed" || event._tag === "Cancelled"

/** The ledger state an event corresponds to. */
export const stateOf = (event: TaskEvent): TaskState | undefined => {
  switch (event._tag) {
    case "Queued":
      return "queued"
    case "Sending":
      return "sending"
    case "Cancelled":
      return "cancelled"
    case "Submitted":
      return "submitted"
    case "Pending":
      return "pending"
    case "Processing":
      return "processing"
    case "Succeeded":
      return "completed"
    case "Failed":
      return "failed"
    case "Retrying":
      return undefined
  }
}
