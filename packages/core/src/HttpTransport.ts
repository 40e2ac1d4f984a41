/**
 * The transport-neutral parts of an HTTP provider client: one request with a timeout whose every
 * failure is a `TransportError` saying whether the request may have reached the server, the
 * `Retry-After` header, and the removal of secrets from everything an answer brings in. Each
 * transport keeps its own reading of answers (what a status or a body code means).
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as TaskError from "./TaskError.js"
import * as TaskProvider from "./TaskProvider.js"

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

/** Removes the secrets from a text taken from the outside world, then bounds its length (300 characters). */
export const scrub = (text: string, redact: Redact): string => {
  const clean = redact(text)
  return clean.length > maxTextLength ? `${clean.slice(0, maxTextLength)}...` : clean
}

/** Whether a text is an absolute http(s) URL with a host. */
export const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
  } catch {
    return false
  }
}

/** An absolute http(s) URL, as a schema. */
export const HttpUrl = Schema.String.pipe(
  Schema.filter(isHttpUrl, {
    identifier: "HttpUrl",
    description: "an absolute http(s) URL",
    message: () => "must be an absolute http(s) URL",
    arbitrary: () => (fc) => fc.webUrl({ validSchemes: ["http", "https"] })
  })
)

/** A body parsed as JSON, or `ok: false` when it is not JSON (the caller decides what that means). */
export const parseJson = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch {
    return { ok: false }
  }
}

/** Decodes an accepted body; a mismatch is a `DecodeError` reading "<what>: <the schema's complaint>", secrets removed. */
export const decodeBody = <A, I>(
  schema: Schema.Schema<A, I>,
  body: unknown,
  what: string,
  redact: Redact
): Effect.Effect<A, TaskError.DecodeError> =>
  Schema.decodeUnknown(schema)(body).pipe(
    Effect.mapError(
      (error) =>
        new TaskError.DecodeError({
          message: scrub(`${what}: ${ParseResult.TreeFormatter.formatErrorSync(error)}`, redact)
        })
    )
  )

/** Codes proving the connection never opened, so no byte of the request reached the server. */
export const preConnectCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH"
])

/**
 * The `code`s of an error, its `cause` chain and an AggregateError's `errors` (Node's
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
 * A failed connection of the call named `call` (e.g. "Vidu submit"). `requestSent` is false only
 * when an error code proves the connection never opened; a reset, a hang-up or anything
 * unrecognised may have reached the server, and a submit that may have arrived is never re-sent
 * by core. The cause kept is a plain summary: the platform's error holds the request, headers included.
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

/** Parses a `Retry-After` header into milliseconds: delay seconds, or an HTTP date measured against `now`. */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * How one call is named in its error messages. Three names because each transport's messages are
 * public wording: "The <connect> could not connect", "The <build> could not be built", "The
 * <timeout> got no answer within 30s".
 */
export interface CallNames {
  /** Names the call in connection failures (`transportError`). */
  readonly connect: string
  /** Names the call when the platform could not build the request (bad URL or body). */
  readonly build: string
  /** Names the call when no answer came in time. */
  readonly timeout: string
}

/**
 * The platform's failure as a `TransportError`: an unusable URL or body fails before anything is
 * sent; everything else is classified by its cause (`transportError`).
 */
export const fromHttpClientError = (
  error: HttpClientError.HttpClientError,
  names: CallNames,
  redact: Redact
): TaskError.TransportError =>
  error._tag === "RequestError" && error.reason !== "Transport"
    ? new TaskError.TransportError({
        message: scrub(`The ${names.build} could not be built (${error.reason})`, redact),
        requestSent: false
      })
    : transportError(names.connect, error.cause, redact)

/** `client` with every request sent under `baseUrl`, authorised by `authorize`, and asking for JSON. */
export const baseClient = (
  client: HttpClient.HttpClient,
  baseUrl: string,
  authorize: (request: HttpClientRequest.HttpClientRequest) => HttpClientRequest.HttpClientRequest
): HttpClient.HttpClient =>
  client.pipe(
    HttpClient.mapRequest((request) =>
      request.pipe(HttpClientRequest.prependUrl(baseUrl), authorize, HttpClientRequest.acceptJson)
    )
  )

/** One HTTP answer, its body read in full: what a transport classifies. */
export interface Received {
  readonly httpStatus: number
  readonly retryAfter: string | undefined
  readonly bodyText: string
  /** Epoch milliseconds from `Clock` when the body was read, to turn a `Retry-After` date into a delay. */
  readonly now: number
}

/** What a transport's classifier reads: the answer `execute` received, the call it answers, the redactor. */
export interface Answer<Operation extends string> extends Received {
  readonly operation: Operation
  /** The task the call concerned, for `TaskNotFound`. */
  readonly remoteTaskId?: string | undefined
  /** Removes the API key from any text taken from the answer. */
  readonly redact: Redact
}

/** What `execute` needs besides the request. */
export interface ExecuteOptions {
  readonly names: CallNames
  /** No answer after this long is `TransportError { requestSent: true }`: the request may have arrived. */
  readonly timeout: Duration.Duration
  readonly redact: Redact
}

/**
 * Sends one request and reads its whole body, then hands the answer to `classify`, all within
 * `timeout`. Every failure of the platform and the timeout become a `TransportError`. Never retries.
 */
export const execute = <A, E>(
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  options: ExecuteOptions,
  classify: (received: Received) => Effect.Effect<A, E>
): Effect.Effect<A, E | TaskError.TransportError> =>
  Effect.gen(function* () {
    const response = yield* client.execute(request)
    const bodyText = yield* response.text
    const now = yield* Clock.currentTimeMillis
    return { httpStatus: response.status, retryAfter: response.headers["retry-after"], bodyText, now }
  }).pipe(
    Effect.mapError((error) => fromHttpClientError(error, options.names, options.redact)),
    Effect.flatMap(classify),
    Effect.timeoutFail({
      duration: options.timeout,
      onTimeout: () =>
        new TaskError.TransportError({
          message: `The ${options.names.timeout} got no answer within ${Duration.format(options.timeout)}; it may have reached the server`,
          requestSent: true
        })
    })
  )
