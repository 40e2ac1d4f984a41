/**
 * The status of a remote task as a provider reports it: pending, processing, succeeded with
 * outputs, failed with an open fail code, or cancelled. Unknown remote states never reach this type: a
 * provider turns them into `UnknownRemoteState`.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/** One output of a succeeded task: a URL that may expire. */
export class TaskOutput extends Schema.Class<TaskOutput>("@reelkit/core/TaskOutput")({
  url: Schema.String,
  contentType: Schema.optional(Schema.String)
}) {}

/** Times the provider reported, in epoch milliseconds; any of them may be missing. */
const remoteTimes = {
  remoteCreatedAt: Schema.optional(Schema.Number),
  remoteCompletedAt: Schema.optional(Schema.Number)
}

/** Accepted and queued, not started. */
export class Pending extends Schema.TaggedClass<Pending>("@reelkit/core/Pending")("Pending", remoteTimes) {}

/** Being generated. */
export class Processing extends Schema.TaggedClass<Processing>("@reelkit/core/Processing")("Processing", {
  ...remoteTimes,
  progress: Schema.optional(Schema.Number)
}) {}

/** Finished with outputs. */
export class Succeeded extends Schema.TaggedClass<Succeeded>("@reelkit/core/Succeeded")("Succeeded", {
  ...remoteTimes,
  outputs: Schema.Array(TaskOutput)
}) {}

/** Finished in failure; `code` is the provider's fail code (an open vocabulary). */
export class Failed extends Schema.TaggedClass<Failed>("@reelkit/core/Failed")("Failed", {
  ...remoteTimes,
  code: Schema.String,
  message: Schema.String
}) {}

/**
 * Ended because it was cancelled (by our `cancel` or elsewhere, e.g. the provider's console), as
 * the provider's own status reports it. `code` is the provider's code for it, e.g. `UserCancelled`.
 */
export class Cancelled extends Schema.TaggedClass<Cancelled>("@reelkit/core/Cancelled")("Cancelled", {
  ...remoteTimes,
  code: Schema.String
}) {}

/** Any task status, as a Schema so it can be stored and sent. */
export const TaskStatus = Schema.Union(Pending, Processing, Succeeded, Failed, Cancelled)

/** Any task status. */
export type TaskStatus = typeof TaskStatus.Type

/** Whether the status is final: no further poll can change it. */
export const isTerminal = (status: TaskStatus): status is Succeeded | Failed | Cancelled =>
  status._tag === "Succeeded" || status._tag === "Failed" || status._tag === "Cancelled"
