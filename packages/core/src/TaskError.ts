/**
 * The typed errors of the task protocol. Every error says two things core relies on:
 * `retryable` (asking again may succeed) and `provesNotCreated` (the failure proves no remote task
 * was created, so re-sending a paid submit cannot double-bill). A submit is retried only when both
 * hold; a failure after the request was sent that does not prove anything makes the task ambiguous.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/** The caller's input breaks a rule; nothing was sent. `path` names the field, `rule` the rule. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>("@reelkit/core/InvalidInput")("InvalidInput", {
  path: Schema.String,
  rule: Schema.String
}) {
  /** Retrying the same input fails the same way. */
  get retryable(): boolean {
    return false
  }
  /** Input errors are caught before any request, or rejected by the server outright. */
  get provesNotCreated(): boolean {
    return true
  }
  override get message(): string {
    return `Invalid input at ${this.path}: ${this.rule}`
  }
}

/** The API key is missing, invalid or lacks permission (HTTP 401). */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("@reelkit/core/Unauthorized")("Unauthorized", {
  message: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return true
  }
}

/** The server refused the request on policy or permission grounds (HTTP 403). */
export class Forbidden extends Schema.TaggedError<Forbidden>("@reelkit/core/Forbidden")("Forbidden", {
  message: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return true
  }
}

/** The account's balance cannot pay for the task (HTTP 402). */
export class InsufficientCredits extends Schema.TaggedError<InsufficientCredits>("@reelkit/core/InsufficientCredits")(
  "InsufficientCredits",
  { message: Schema.String }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return true
  }
}

/** The server's rate limit was hit (HTTP 429). `retryAfterMillis` is the server's hint, when it gave one. */
export class RateLimited extends Schema.TaggedError<RateLimited>("@reelkit/core/RateLimited")("RateLimited", {
  message: Schema.String,
  retryAfterMillis: Schema.optional(Schema.Number)
}) {
  get retryable(): boolean {
    return true
  }
  /** A 429 is an explicit rejection: the task was not created. */
  get provesNotCreated(): boolean {
    return true
  }
}

/** The server rejected the request for another stated reason (a 4xx not covered above, e.g. unknown model). */
export class RequestRejected extends Schema.TaggedError<RequestRejected>("@reelkit/core/RequestRejected")(
  "RequestRejected",
  { status: Schema.Number, message: Schema.String }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return true
  }
}

/** The provider does not know this remote task id (HTTP 404 on a status request). */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>("@reelkit/core/TaskNotFound")("TaskNotFound", {
  remoteTaskId: Schema.String,
  message: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
}

/** The remote task ended in failure. `code` is the provider's open fail code. */
export class TaskFailed extends Schema.TaggedError<TaskFailed>("@reelkit/core/TaskFailed")("TaskFailed", {
  taskKey: Schema.String,
  code: Schema.String,
  failMessage: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return `Task ${this.taskKey} failed with ${this.code}: ${this.failMessage}`
  }
}

/**
 * The connection failed. `requestSent` tells whether any byte of the request may have reached the
 * server: a connection that never opened proves nothing was created; a reset or timeout after
 * sending proves nothing either way.
 */
export class TransportError extends Schema.TaggedError<TransportError>("@reelkit/core/TransportError")(
  "TransportError",
  { message: Schema.String, requestSent: Schema.Boolean, cause: Schema.optional(Schema.Defect) }
) {
  get retryable(): boolean {
    return true
  }
  get provesNotCreated(): boolean {
    return !this.requestSent
  }
}

/** The server answered with a 5xx. The request reached it, so a submit's outcome is unknown. */
export class ServerError extends Schema.TaggedError<ServerError>("@reelkit/core/ServerError")("ServerError", {
  status: Schema.Number,
  message: Schema.String
}) {
  get retryable(): boolean {
    return true
  }
  get provesNotCreated(): boolean {
    return false
  }
}

/** The server's answer could not be read (malformed JSON, missing fields, a bad `resultJson`). */
export class DecodeError extends Schema.TaggedError<DecodeError>("@reelkit/core/DecodeError")("DecodeError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /** A garbled answer may be a one-off; retries are bounded by the retry schedule. */
  get retryable(): boolean {
    return true
  }
  get provesNotCreated(): boolean {
    return false
  }
}

/** The provider reported a state this library does not know. Never polled forever. */
export class UnknownRemoteState extends Schema.TaggedError<UnknownRemoteState>("@reelkit/core/UnknownRemoteState")(
  "UnknownRemoteState",
  { state: Schema.String }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return `The provider reported an unknown task state "${this.state}"`
  }
}

/** Waiting ended at its deadline. The task is still recorded and can be resumed. */
export class DeadlineExceeded extends Schema.TaggedError<DeadlineExceeded>("@reelkit/core/DeadlineExceeded")(
  "DeadlineExceeded",
  { taskKey: Schema.String, waitedMillis: Schema.Number }
) {
  get retryable(): boolean {
    return true
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return `Stopped waiting for task ${this.taskKey} after ${Math.round(this.waitedMillis / 1000)} s; it can be resumed`
  }
}

/**
 * A submit was sent but its outcome is unknown (timeout, reset or 5xx after sending). The task is
 * recorded as `ambiguous` and is never re-sent automatically: the caller decides.
 */
export class SubmitOutcomeUnknown extends Schema.TaggedError<SubmitOutcomeUnknown>(
  "@reelkit/core/SubmitOutcomeUnknown"
)("SubmitOutcomeUnknown", { taskKey: Schema.String, reason: Schema.String }) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return `The submit of task ${this.taskKey} may or may not have created a paid task (${this.reason}); it is marked ambiguous and was not re-sent`
  }
}

/** The ledger has no task with this key, remote id or idempotency key. */
export class UnknownTask extends Schema.TaggedError<UnknownTask>("@reelkit/core/UnknownTask")("UnknownTask", {
  reference: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return `No task is recorded for "${this.reference}"`
  }
}

/** The durable ledger failed to read or write. */
export class LedgerError extends Schema.TaggedError<LedgerError>("@reelkit/core/LedgerError")("LedgerError", {
  operation: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  get retryable(): boolean {
    return true
  }
  get provesNotCreated(): boolean {
    return false
  }
}

/**
 * A fenced ledger write found the row changed since it was read (another fiber or process wrote
 * it first), or held by another live lease holder. The write was not applied. An internal race
 * signal: `TaskClient` re-reads and decides again; it never reaches a caller of the client.
 */
export class StaleTransition extends Schema.TaggedError<StaleTransition>("@reelkit/core/StaleTransition")(
  "StaleTransition",
  {
    taskKey: Schema.String,
    expectedVersion: Schema.Number,
    actualVersion: Schema.Number,
    actual: Schema.String,
    /** The live lease holder that refused the write, when that was the reason. */
    heldBy: Schema.optional(Schema.String)
  }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return this.heldBy !== undefined
      ? `Task ${this.taskKey} is held by ${this.heldBy}; the update was not applied`
      : `Task ${this.taskKey} changed (version ${this.expectedVersion} -> ${this.actualVersion}, now ${this.actual}); the update was not applied`
  }
}

/** A write would give a second row the remote task id another row already has. Nothing was written. */
export class DuplicateRemoteId extends Schema.TaggedError<DuplicateRemoteId>("@reelkit/core/DuplicateRemoteId")(
  "DuplicateRemoteId",
  { remoteTaskId: Schema.String, taskKey: Schema.String, heldBy: Schema.String }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return `Remote task ${this.remoteTaskId} already belongs to task ${this.heldBy}; task ${this.taskKey} was not changed`
  }
}

/**
 * The submit could not be sent before the caller's deadline (a `Retry-After` or the budget says
 * to wait longer). Nothing was sent; the task stays queued and resumable.
 */
export class RetryLater extends Schema.TaggedError<RetryLater>("@reelkit/core/RetryLater")("RetryLater", {
  taskKey: Schema.String,
  /** Epoch milliseconds from which a retry may succeed. */
  retryAt: Schema.Number,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return true
  }
  get provesNotCreated(): boolean {
    return true
  }
  override get message(): string {
    return `Task ${this.taskKey} was not sent: ${this.reason}; retry after ${new Date(this.retryAt).toISOString()}`
  }
}

/** The task was cancelled (the provider confirmed it). */
export class TaskCancelled extends Schema.TaggedError<TaskCancelled>("@reelkit/core/TaskCancelled")("TaskCancelled", {
  taskKey: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return `Task ${this.taskKey} was cancelled`
  }
}

/** The provider documents no way to cancel a task. Nothing was sent. */
export class CancelNotSupported extends Schema.TaggedError<CancelNotSupported>("@reelkit/core/CancelNotSupported")(
  "CancelNotSupported",
  { providerId: Schema.String, modelId: Schema.String }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
  override get message(): string {
    return `${this.providerId} offers no way to cancel a ${this.modelId} task`
  }
}

/**
 * A callback delivery failed the provider's signature check: `reason` is `unsigned`, `signature`
 * (wrong or malformed), `stale` (its `Date` is outside the replay window) or `replayed` (its nonce
 * was seen already). Nothing changed.
 */
export class CallbackRejected extends Schema.TaggedError<CallbackRejected>("@reelkit/core/CallbackRejected")(
  "CallbackRejected",
  { reason: Schema.Literal("unsigned", "signature", "stale", "replayed"), message: Schema.String }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return false
  }
}

/** An idempotency key was reused with a different input. Nothing was sent. */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>("@reelkit/core/IdempotencyConflict")(
  "IdempotencyConflict",
  { idempotencyKey: Schema.String, taskKey: Schema.String }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return true
  }
  override get message(): string {
    return `Idempotency key "${this.idempotencyKey}" already belongs to task ${this.taskKey} with a different input`
  }
}

/** Errors a provider's submit, status and cancel calls may fail with. */
export type ProviderError =
  | InvalidInput
  | Unauthorized
  | Forbidden
  | InsufficientCredits
  | RateLimited
  | RequestRejected
  | TaskNotFound
  | TransportError
  | ServerError
  | DecodeError
  | UnknownRemoteState

/** Every error of the task protocol. */
export type TaskError =
  | ProviderError
  | TaskFailed
  | DeadlineExceeded
  | SubmitOutcomeUnknown
  | UnknownTask
  | LedgerError
  | StaleTransition
  | DuplicateRemoteId
  | IdempotencyConflict
  | RetryLater
  | TaskCancelled
  | CancelNotSupported

/** Whether a failed submit may be sent again without risking a second paid task. */
export const isSafeToResubmit = (error: ProviderError): boolean => error.retryable && error.provesNotCreated

const providerErrorTags: ReadonlySet<string> = new Set([
  "InvalidInput",
  "Unauthorized",
  "Forbidden",
  "InsufficientCredits",
  "RateLimited",
  "RequestRejected",
  "TaskNotFound",
  "TransportError",
  "ServerError",
  "DecodeError",
  "UnknownRemoteState"
])

/** Whether a value is one of the provider errors. */
export const isProviderError = (value: unknown): value is ProviderError =>
  typeof value === "object" && value !== null && providerErrorTags.has((value as { _tag?: string })._tag ?? "")
