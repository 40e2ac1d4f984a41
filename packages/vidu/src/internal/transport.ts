// How a failed connection and the texts of an answer become safe parts of core's typed errors.
// The same rules as the apixo transport's (`@reelkit/apixo` internal/classify.ts and redact.ts):
// they belong in core, shared by every transport; kept here until core offers them.
import { TaskError, TaskProvider } from "@reelkit/core"

/** A function that removes the secrets from a text. */
export type Redact = (text: string) => string

/** The redactor for one API key: the key as is, and as it looks inside a JSON string when escaping changes it. */
export const redactorFor = (secret: string): Redact => {
  const escaped = JSON.stringify(secret).slice(1, -1)
  return TaskProvider.redactSecrets(escaped === secret ? [secret] : [secret, escaped])
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/** A copy of a parsed JSON value with `redact` applied to every string in it, keys included. */
export const redactValue = (value: unknown, redact: Redact): unknown => {
  if (typeof value === "string") return redact(value)
  if (Array.isArray(value)) return value.map((item) => redactValue(item, redact))
  if (!isRecord(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) out[redact(key)] = redactValue(field, redact)
  return out
}

const maxTextLength = 300

/** Removes the secrets from a text taken from the outside world, then bounds its length. */
export const scrub = (text: string, redact: Redact): string => {
  const clean = redact(text)
  return clean.length > maxTextLength ? `${clean.slice(0, maxTextLength)}...` : clean
}

/** Codes proving the connection never opened, so no byte of the request reached the server. */
export const preConnectCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH"
])

/** The `code`s of an error, its `cause` chain and an AggregateError's `errors`. */
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
 * opened; anything else may have reached the server, and a submit that may have arrived is never
 * re-sent by core. The cause kept is a plain summary: the platform's error holds the request.
 */
export const transportError = (call: string, cause: unknown, redact: Redact): TaskError.TransportError => {
  const codes = errorCodes(cause)
  const preConnect = codes.find((code) => preConnectCodes.has(code))
  const detail = scrub(innermostMessage(cause), redact)
  const code = preConnect ?? codes[0]
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
