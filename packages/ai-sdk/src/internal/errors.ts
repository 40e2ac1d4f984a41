// Every reelkit error as the AI SDK's `APICallError`, with `isRetryable` telling the SDK's retry
// loop the truth. The SDK retries a failed `doStart` up to twice by default: it may do so only when
// the failure proves no task was created (a 429, a connection that never opened). A submit whose
// outcome is unknown is never retryable, so a 500 after the task was created is billed once.
import { APICallError } from "@ai-sdk/provider"
import type { TaskClient, TaskError } from "@reelkit/core"
import { optionNameOf } from "../ApixoVideoOptions.js"

/** Which call failed: a start sends a paid submit, a status check only asks. */
export type Phase = "start" | "status"

/** Where the failed call went and what it carried. */
export interface CallContext {
  readonly phase: Phase
  readonly url: string
  readonly requestBodyValues: unknown
}

/** The typed errors of reelkit's client (defects are passed on as they are). */
export type ReelkitError = TaskError.TaskError | TaskClient.StartError | TaskClient.WaitError

// Result-storage errors (possible only with an artifact store, which this provider does not set up)
// say nothing about retries: they are treated as final.
const flag = (error: ReelkitError, name: "retryable" | "provesNotCreated"): boolean =>
  name in error && (error as unknown as Record<string, unknown>)[name] === true

const statusCodeOf = (error: ReelkitError): number | undefined => {
  switch (error._tag) {
    case "Unauthorized":
      return 401
    case "Forbidden":
      return 403
    case "InsufficientCredits":
      return 402
    case "RateLimited":
    case "RetryLater":
      return 429
    case "TaskNotFound":
      return 404
    case "RequestRejected":
    case "ServerError":
      return error.status === 0 ? undefined : error.status
    case "IdempotencyConflict":
      return 409
    default:
      return undefined
  }
}

/**
 * Whether the SDK may call again. A status check is safe to repeat whenever reelkit says so. A
 * start is repeated only when no task can exist (`provesNotCreated`), or when the failure came after
 * the submit was recorded under the SDK's idempotency key (a ledger error): the repeated start
 * finds that record and sends nothing blindly.
 */
const isRetryableIn = (phase: Phase, error: ReelkitError): boolean => {
  if (phase === "status") return flag(error, "retryable")
  if (error._tag === "SubmitOutcomeUnknown") return false
  if (error._tag === "LedgerError") return true
  return flag(error, "retryable") && flag(error, "provesNotCreated")
}

const messageOf = (error: ReelkitError): string =>
  error._tag === "InvalidInput"
    ? `Invalid video option ${optionNameOf(error.path)}${optionNameOf(error.path) === error.path ? "" : ` (${error.path})`}: ${error.rule}; nothing was sent`
    : error.message

const headersOf = (error: ReelkitError): Record<string, string> | undefined =>
  error._tag === "RateLimited" && error.retryAfterMillis !== undefined
    ? {
        "retry-after": String(Math.ceil(error.retryAfterMillis / 1000)),
        "retry-after-ms": String(error.retryAfterMillis)
      }
    : error._tag === "RetryLater"
      ? // Nothing was sent; the task is queued. The time to retry is absolute: an HTTP date.
        { "retry-after": new Date(error.retryAt).toUTCString() }
      : undefined

/** The reelkit error as an `APICallError`; `data` carries its tag (and field, task key) for programs. */
export const toApiCallError = (error: ReelkitError, context: CallContext): APICallError => {
  const statusCode = statusCodeOf(error)
  const responseHeaders = headersOf(error)
  return new APICallError({
    message: messageOf(error),
    url: context.url,
    requestBodyValues: context.requestBodyValues,
    ...(statusCode === undefined ? {} : { statusCode }),
    ...(responseHeaders === undefined ? {} : { responseHeaders }),
    cause: error,
    isRetryable: isRetryableIn(context.phase, error),
    data: {
      error: error._tag,
      ...(error._tag === "InvalidInput" ? { path: error.path, option: optionNameOf(error.path) } : {}),
      ...("taskKey" in error ? { taskKey: error.taskKey } : {})
    }
  })
}
