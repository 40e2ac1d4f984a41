// How an answer of the official Vidu API becomes one of core's typed errors. Pure (the current
// time and the redactor are parameters) so every branch is tested without a socket.
import { HttpTransport, TaskError } from "@reelkit/core"

const { parseJson, parseRetryAfter, redactValue, scrub } = HttpTransport

/** Which call was made: a 404 means "unknown endpoint" on submit but "unknown task" otherwise. */
export type Operation = "submit" | "query" | "cancel"

/** Everything needed to classify one HTTP answer. */
export type Answer = HttpTransport.Answer<Operation>

/** A 2xx answer; `body` is the parsed JSON with the secrets removed, still to be decoded. */
export interface Accepted {
  readonly _tag: "Accepted"
  readonly body: unknown
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** `reason`s that mean "try again later": the request was refused, nothing was created. */
const retryLaterReasons: ReadonlySet<string> = new Set([
  "TooManyRequests",
  "QuotaExceeded",
  "SystemThrottling",
  "OperationInProcess"
])

/**
 * Classifies one answer. A 2xx is `Accepted` (an empty body reads as `{}`: a cancel answers `{}`
 * or nothing). Otherwise the `reason` decides where it is specific (`CreditInsufficient` is
 * `InsufficientCredits` whatever its status, a throttling reason is `RateLimited`), then the HTTP
 * status: 400 on submit is `InvalidInput` (the server judged the request: never re-sent), 401
 * `Unauthorized`, 403 `Forbidden`, 404 `TaskNotFound` (or, on submit, `RequestRejected`), 429
 * `RateLimited`, other 4xx `RequestRejected`, 5xx, 499 and anything else `ServerError` (the request
 * arrived: a submit's outcome is unknown).
 */
export const classify = (answer: Answer): Accepted | TaskError.ProviderError => {
  const parsed = parseJson(answer.bodyText.trim() === "" ? "{}" : answer.bodyText)
  const value = parsed.ok ? redactValue(parsed.value, answer.redact) : undefined
  const status = answer.httpStatus
  if (status >= 200 && status < 300) {
    if (!parsed.ok) {
      return new TaskError.DecodeError({
        message: `Vidu answered HTTP ${status} with a body that is not JSON: ${scrub(answer.bodyText, answer.redact)}`
      })
    }
    return { _tag: "Accepted", body: value }
  }
  const body = isRecord(value) ? value : {}
  const reason = typeof body.reason === "string" ? body.reason : undefined
  const text = scrub(
    typeof body.message === "string" && body.message !== ""
      ? body.message
      : parsed.ok
        ? `HTTP ${status}`
        : answer.bodyText.trim() || `HTTP ${status}`,
    answer.redact
  )
  const said = reason === undefined ? text : `${reason}: ${text}`
  const taskId = answer.remoteTaskId ?? ""
  if (status >= 500 || status < 400 || status === 499) {
    return new TaskError.ServerError({ status, message: `Vidu answered ${status}: ${said}` })
  }
  if (reason === "CreditInsufficient") return new TaskError.InsufficientCredits({ message: `Vidu: ${said}` })
  if (status === 429 || (reason !== undefined && retryLaterReasons.has(reason))) {
    const retryAfterMillis = parseRetryAfter(answer.retryAfter, answer.now)
    return new TaskError.RateLimited({
      message: `Vidu asks to retry later (${status}): ${said}`,
      ...(retryAfterMillis === undefined ? {} : { retryAfterMillis })
    })
  }
  switch (status) {
    case 400:
      return answer.operation === "submit"
        ? new TaskError.InvalidInput({ path: "input", rule: `rejected by Vidu (${said})` })
        : new TaskError.RequestRejected({ status, message: `Vidu refused the ${answer.operation}: ${said}` })
    case 401:
      return new TaskError.Unauthorized({ message: `Vidu rejected the API key (401): ${said}` })
    case 403:
      return new TaskError.Forbidden({ message: `Vidu refused the request (403): ${said}` })
    case 404:
      return answer.operation === "submit"
        ? new TaskError.RequestRejected({ status, message: `Vidu does not serve this endpoint (404): ${said}` })
        : new TaskError.TaskNotFound({
            remoteTaskId: taskId,
            message: `Vidu does not know task ${taskId} (404): ${said}`
          })
    default:
      return new TaskError.RequestRejected({ status, message: `Vidu rejected the request (${status}): ${said}` })
  }
}
