// Removes the API key from everything apixo sends back. apixo has been seen echoing a request's
// key in messages; anything taken from an answer may end up in an error, a ledger row, a log line
// or a span, so the key is cut out where the answer enters the library: in the raw text (for
// bodies that are not JSON) and in every string of the parsed value (whatever escaping the JSON
// used for it).
import { TaskProvider } from "@reelkit/core"

/** A function that removes the secrets from a text. */
export type Redact = (text: string) => string

/** The redactor for one API key: the key as is, and as it looks inside a JSON string when escaping changes it. */
export const redactorFor = (secret: string): Redact => {
  const escaped = JSON.stringify(secret).slice(1, -1)
  return TaskProvider.redactSecrets(escaped === secret ? [secret] : [secret, escaped])
}

const isPlainRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** A copy of a parsed JSON value with `redact` applied to every string in it, keys included. */
export const redactValue = (value: unknown, redact: Redact): unknown => {
  if (typeof value === "string") return redact(value)
  if (Array.isArray(value)) return value.map((item) => redactValue(item, redact))
  if (!isPlainRecord(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) out[redact(key)] = redactValue(field, redact)
  return out
}
