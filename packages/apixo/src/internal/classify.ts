// How an apixo answer or a failed connection becomes one of core's typed errors. Kept pure (the
// current time and the redactor are parameters) so every branch is tested without a socket.
import { TaskError } from "@reelkit/core"
import { type Redact, redactValue } from "./redact.js"

/** Which call failed: a 404 means "unknown model" on submit but "unknown task" on status. */
export type Operation = "submit" | "status"

/** Everything needed to classify one HTTP answer. */
export interface Answer {
  readonly operation: Operation
  readonly httpStatus: number
  readonly retryAfter: string | undefined
  readonly bodyText: string
  /** The task asked about, for `TaskNotFound`. */
  readonly remoteTaskId?: string | undefined
  /** Epoch milliseconds from `Clock`, to turn a `Retry-After` date into a delay. */
  readonly now: number
  /** Removes the API key from any text taken from the answer. */
  readonly redact: Redact
}

/** The answer is a success; `data` is the envelope's payload (secrets removed), still to be decoded. */
export interface Accepted {
  readonly _tag: "Accepted"
  readonly data: unknown
  readonly message: string
}

/** Codes proving the connection never opened, so no byte of the request reached the server. */
export const preConnectCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH"
])

const maxTextLength = 300

/** Removes the secrets from any text taken from the outside world, then bounds its length. */
export const scrub = (text: string, redact: Redact): string => {
  const clean = redact(text)
  return clean.length > maxTextLength ? `${clean.slice(0, maxTextLength)}...` : clean
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/**
 * Collects the `code`s of an error, its `cause` chain and an AggregateError's `errors` (Node's
 * happy-eyeballs connect reports one per address). `fetch` wraps the socket error in a TypeError's
 * `cause`; undici reports it directly.
 */
export const errorCodes = (error: unknown): ReadonlyArray<string> => {
  const codes: Array<string> = []
  const seen = new Set<unknown>()
  const visit = (value: unknown, depth: number): void => {
    if (!isRecord(value) || depth > 6 || seen.has(value)) return
    seen.add(value)
    if (typeof value.code === "string") codes.push(value.code)
    visit(value.cause, depth + 1)
    if (Array.isArray(value.errors)) for (const inner of value.errors) visit(inner, depth + 1)
  }
  visit(error, 0)
  return codes
}

const innermostMessage = (error: unknown): string => {
  let current: unknown = error
  let message = "unknown error"
  for (let depth = 0; depth < 6 && isRecord(current); depth++) {
    if (typeof current.message === "string" && current.message !== "") message = current.message
    current = current.cause
  }
  return message
}

/**
 * A failed connection. `requestSent` is false only when an error code proves the connection never
 * opened; a reset, a hang-up or anything unrecognised may have reached the server, and a submit
 * that may have reached it must never be re-sent automatically. The cause kept is a plain summary:
 * the platform's error holds the request, headers included.
 */
export const transportError = (operation: Operation, cause: unknown, redact: Redact): TaskError.TransportError => {
  const codes = errorCodes(cause)
  const preConnect = codes.find((code) => preConnectCodes.has(code))
  const detail = scrub(innermostMessage(cause), redact)
  const code = preConnect ?? codes[0]
  const call = operation === "submit" ? "apixo submit" : "apixo status request"
  return new TaskError.TransportError({
    message:
      preConnect !== undefined
        ? `The ${call} could not connect (${preConnect}); nothing was sent: ${detail}`
        : `The ${call} failed after the connection opened${code === undefined ? "" : ` (${code})`}: ${detail}`,
    requestSent: preConnect === undefined,
    cause: { code, message: detail }
  })
}

/** Parses a `Retry-After` header: delay seconds, or an HTTP date measured against `now`. */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

const parseJson = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch {
    return { ok: false }
  }
}

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
