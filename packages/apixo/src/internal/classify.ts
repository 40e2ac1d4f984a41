// How an apixo answer becomes one of core's typed errors. Kept pure (the current time and the
// redactor are parameters) so every branch is tested without a socket. apixo has been seen echoing
// a request's key in messages, so the key is cut out of every string of the answer before anything
// reads it. Connection failures, Retry-After and redaction are core's `HttpTransport`.
import { HttpTransport, TaskError } from "@reelkit/core"

const { parseJson, parseRetryAfter, redactValue, scrub } = HttpTransport

/** Which call failed: a 404 means "unknown model" on submit but "unknown task" on status. */
export type Operation = "submit" | "status"

/** The apixo calls as their error messages name them. */
export const callNames: Record<Operation, HttpTransport.CallNames> = {
  submit: { connect: "apixo submit", build: "apixo submit request", timeout: "apixo submit request" },
  status: { connect: "apixo status request", build: "apixo status request", timeout: "apixo status request" }
}

/** Everything needed to classify one HTTP answer. */
export type Answer = HttpTransport.Answer<Operation>

/** The answer is a success; `data` is the envelope's payload (secrets removed), still to be decoded. */
export interface Accepted {
  readonly _tag: "Accepted"
  readonly data: unknown
  readonly message: string
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

const insufficientPattern = /insufficient\s+(credit|balance|fund)/i

/**
 * The effective error code of an answer. The HTTP status and the body's `code` can disagree; the
 * reading that claims less wins: a 5xx on either side is a 5xx (the outcome of a submit is then
 * unknown), otherwise an error code in the body beats a 2xx or a vaguer HTTP status (a 200 whose
 * body says 402 is a 402), otherwise the HTTP status.
 */
export const effectiveCode = (httpStatus: number, bodyCode: number | undefined): number => {
  const body = bodyCode !== undefined && Number.isInteger(bodyCode) && bodyCode >= 100 ? bodyCode : undefined
  if (httpStatus >= 500) return httpStatus
  if (body !== undefined && body >= 500) return body
  if (body !== undefined && body >= 300) return body
  return httpStatus
}

/**
 * Classifies one HTTP answer: an `Accepted` payload, or the typed error it means.
 *
 * 400 on submit is `InvalidInput` at path `input` with the server's text (from `data.error`, else
 * `message`): the server judged the request, and core must not resend it. 400 on status is
 * `RequestRejected`. "Insufficient credits" in a 4xx is `InsufficientCredits` whatever its code.
 */
export const classify = (answer: Answer): Accepted | TaskError.ProviderError => {
  const parsed = parseJson(answer.bodyText)
  // Every string of the body loses the key here, so nothing read from it further down can leak it.
  const value = parsed.ok ? redactValue(parsed.value, answer.redact) : undefined
  const body = isRecord(value) ? value : undefined
  const bodyCode = typeof body?.code === "number" ? body.code : undefined
  const code = effectiveCode(answer.httpStatus, bodyCode)

  if (code >= 200 && code < 300) {
    if (body === undefined) {
      return new TaskError.DecodeError({
        message: `apixo answered HTTP ${answer.httpStatus} with a body that is not a JSON envelope: ${scrub(answer.bodyText, answer.redact)}`
      })
    }
    return { _tag: "Accepted", data: body.data, message: typeof body.message === "string" ? body.message : "" }
  }

  const data = isRecord(body?.data) ? body.data : undefined
  const serverText = scrub(
    typeof data?.error === "string" && data.error !== ""
      ? data.error
      : typeof body?.message === "string" && body.message !== ""
        ? body.message
        : parsed.ok
          ? `HTTP ${answer.httpStatus}`
          : answer.bodyText.trim() || `HTTP ${answer.httpStatus}`,
    answer.redact
  )
  const submit = answer.operation === "submit"

  if (code >= 500 || code < 400) {
    return new TaskError.ServerError({ status: code, message: `apixo answered ${code}: ${serverText}` })
  }
  if (code === 402 || insufficientPattern.test(serverText)) {
    return new TaskError.InsufficientCredits({ message: `apixo: ${serverText}` })
  }
  switch (code) {
    case 400:
      return submit
        ? new TaskError.InvalidInput({ path: "input", rule: `rejected by apixo: ${serverText}` })
        : new TaskError.RequestRejected({ status: 400, message: `apixo rejected the status request: ${serverText}` })
    case 401:
      return new TaskError.Unauthorized({ message: `apixo rejected the API key (401): ${serverText}` })
    case 403:
      return new TaskError.Forbidden({ message: `apixo refused the request (403): ${serverText}` })
    case 404:
      return submit
        ? new TaskError.RequestRejected({ status: 404, message: `apixo does not know this model (404): ${serverText}` })
        : new TaskError.TaskNotFound({
            remoteTaskId: answer.remoteTaskId ?? "",
            message: `apixo does not know task ${answer.remoteTaskId ?? ""} (404): ${serverText}`
          })
    case 429: {
      const retryAfterMillis = parseRetryAfter(answer.retryAfter, answer.now)
      return new TaskError.RateLimited({
        message: `apixo rate limit hit (429): ${serverText}`,
        ...(retryAfterMillis === undefined ? {} : { retryAfterMillis })
      })
    }
    default:
      return new TaskError.RequestRejected({
        status: code,
        message: `apixo rejected the request (${code}): ${serverText}`
      })
  }
}
