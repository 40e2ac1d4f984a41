/**
 * The apixo.ai wire protocol shared by every apixo model: the submit body, the `{ code, message,
 * data }` envelope, the four task states, fail codes, and the callback payload. Pure schemas and
 * functions; the HTTP side lives in `Apixo`.
 *
 * @since 0.1.0
 */
import { HttpTransport, TaskError, TaskProvider, TaskStatus } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** `async` (poll statusTask) or `callback` (apixo POSTs the final status to `callback_url`). */
export const RequestType = Schema.Literal("async", "callback")

/** `async` or `callback`. */
export type RequestType = typeof RequestType.Type

/** The routing values apixo documents; any other value must be a channel name. */
export const KnownRoutingProvider = Schema.Literal("auto", "value", "official")

/** The rule a channel name follows: a letter or digit, then letters, digits, `.`, `_` or `-`; 64 characters at most. */
export const channelNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/**
 * A channel name. Strict on purpose: the value goes into a paid request's body, so anything that
 * could not be a channel (spaces, slashes, control characters, kilobytes) is refused up front.
 */
export const ChannelName = Schema.String.pipe(
  Schema.pattern(channelNamePattern, {
    identifier: "ChannelName",
    message: () => "must be a channel name: a letter or digit, then letters, digits, '.', '_' or '-' (64 at most)"
  })
)

/**
 * Which upstream channel serves the task: `auto` (the server's default), `value`, `official`, or a
 * channel name. Kept open so a new channel needs no release.
 */
export type RoutingProvider = typeof KnownRoutingProvider.Type | (string & {})

/** A routing value: a documented one or a channel name. */
export const RoutingProvider: Schema.Schema<RoutingProvider, string> = Schema.Union(KnownRoutingProvider, ChannelName)

/** The rule `RoutingProvider` states, as `InvalidInput` reports it. */
export const routingProviderRule =
  'must be "auto", "value", "official" or a channel name (letters, digits, ".", "_", "-"; at most 64)'

/** An absolute http(s) URL. */
export const HttpUrl = HttpTransport.HttpUrl

/** The longest callback URL the gate accepts: far above any real one, far below what a server refuses. */
export const maxCallbackUrlLength = 2048

// Whitespace and control characters are refused rather than normalised: `new URL` silently strips
// some of them, and the URL must be sent exactly as the caller gave it.
const hasNoSpaceOrControl = (value: string): boolean => {
  if (/\s/.test(value)) return false
  for (let index = 0; index < value.length; index++) {
    const code = value.charCodeAt(index)
    if (code < 0x20 || code === 0x7f) return false
  }
  return true
}

/** A `callback_url`: an absolute http(s) URL without whitespace, at most `maxCallbackUrlLength` characters. */
export const CallbackUrl = Schema.String.pipe(
  Schema.maxLength(maxCallbackUrlLength, {
    message: () => `must be at most ${maxCallbackUrlLength} characters`
  }),
  Schema.filter(hasNoSpaceOrControl, { message: () => "must not contain whitespace or control characters" }),
  Schema.filter(HttpTransport.isHttpUrl, {
    identifier: "CallbackUrl",
    message: () => "must be an absolute http(s) URL"
  })
)

/** A submit that is polled: no `callback_url`. `request_type` defaults to `async` on the server. */
export const AsyncBody = Schema.Struct({
  request_type: Schema.optional(Schema.Literal("async")),
  provider: Schema.optional(RoutingProvider),
  input: Schema.Unknown
})

/** A submit whose completion apixo POSTs to `callback_url`, which is then required. */
export const CallbackBody = Schema.Struct({
  request_type: Schema.Literal("callback"),
  callback_url: CallbackUrl,
  provider: Schema.optional(RoutingProvider),
  input: Schema.Unknown
})

/** The body of `POST /api/v1/generateTask/{model}`: `callback_url` is present exactly when `request_type` is `callback`. */
export const GenerateTaskBody = Schema.Union(AsyncBody, CallbackBody)

/** The body of a submit. */
export type GenerateTaskBody = typeof GenerateTaskBody.Type

/** What a submit needs beyond the model id. */
export interface GenerateTaskRequest {
  /** The model's input, already in wire form. */
  readonly input: unknown
  /** When set, the task is submitted with `request_type: "callback"` and this `callback_url`. */
  readonly callbackUrl?: string | undefined
  /** The routing `provider`; omitted when undefined (the server's default is `auto`). */
  readonly provider?: RoutingProvider | undefined
}

/** Builds the exact submit body: `request_type` always, `callback_url` and `provider` only when given. */
export const makeGenerateTaskBody = (request: GenerateTaskRequest): GenerateTaskBody => {
  const provider = request.provider === undefined ? {} : { provider: request.provider }
  return request.callbackUrl === undefined
    ? { request_type: "async", ...provider, input: request.input }
    : { request_type: "callback", callback_url: request.callbackUrl, ...provider, input: request.input }
}

/** The path of a model's submit endpoint under the base URL. */
export const generateTaskPath = (modelId: string): string => `/api/v1/generateTask/${encodeURIComponent(modelId)}`

/** The exact paid request for a model: `POST` of `makeGenerateTaskBody(request)` to `generateTaskPath(modelId)`. */
export const makeWireRequest = (modelId: string, request: GenerateTaskRequest): TaskProvider.WireRequest =>
  new TaskProvider.WireRequest({
    method: "POST",
    path: generateTaskPath(modelId),
    body: makeGenerateTaskBody(request)
  })

/** The envelope of every answer. `code` mirrors the HTTP status, but the two can disagree. */
export const Envelope = <A, I, R>(data: Schema.Schema<A, I, R>) =>
  Schema.Struct({
    code: Schema.Number,
    message: Schema.String,
    data: data
  })

/** `data` of a successful submit. */
export const SubmitData = Schema.Struct({
  taskId: Schema.NonEmptyString
})

/** `data` of a successful submit. */
export type SubmitData = typeof SubmitData.Type

/** The four documented task states. Anything else is `UnknownRemoteState`, never a silent pending. */
export const TaskState = Schema.Literal("pending", "processing", "success", "failed")

/** A documented task state. */
export type TaskState = typeof TaskState.Type

/**
 * Fail codes apixo documents, from both generations of its docs. The vocabulary is open: `failCode`
 * accepts any string, these are the ones worth matching on.
 */
export const KnownFailCode = Schema.Literal(
  "CONTENT_VIOLATION",
  "NSFW_DETECTED",
  "PROMPT_TOO_LONG",
  "INVALID_PROMPT",
  "INVALID_IMAGE_URL",
  "IMAGE_TOO_LARGE",
  "UNSUPPORTED_FORMAT",
  "IMAGE_DOWNLOAD_FAILED",
  "PROCESSING_TIMEOUT",
  "MODEL_UNAVAILABLE",
  "GENERATION_FAILED",
  "INSUFFICIENT_CREDITS",
  "SensitiveContentDetected",
  "PromptLengthExceeded"
)

/** A documented fail code. */
export type KnownFailCode = typeof KnownFailCode.Type

/** A fail code: a documented one or any other string the server sends. */
export type FailCode = KnownFailCode | (string & {})

/** A fail code: a documented one or any other string the server sends. */
export const FailCode: Schema.Schema<FailCode, string> = Schema.Union(KnownFailCode, Schema.String)

/** Whether a fail code is one apixo documents. */
export const isKnownFailCode: (code: string) => code is KnownFailCode = Schema.is(KnownFailCode)

/** Used when a failed task carries no `failCode`. */
export const unknownFailCode = "UNKNOWN"

/**
 * `data` of a status answer (and of a callback). Only `taskId` and `state` are always present; the
 * server may send `null` for absent fields. Times are epoch milliseconds, `costTime` a duration in
 * milliseconds. `state` stays a string here so an unknown one is reported, not rejected as garbage.
 */
export const StatusData = Schema.Struct({
  taskId: Schema.NonEmptyString,
  state: Schema.String,
  resultJson: Schema.optionalWith(Schema.Unknown, { nullable: true }),
  failCode: Schema.optionalWith(FailCode, { nullable: true }),
  failMsg: Schema.optionalWith(Schema.String, { nullable: true }),
  createTime: Schema.optionalWith(Schema.Number, { nullable: true }),
  completeTime: Schema.optionalWith(Schema.Number, { nullable: true }),
  costTime: Schema.optionalWith(Schema.Number, { nullable: true })
})

/** `data` of a status answer. */
export type StatusData = typeof StatusData.Type

/** The parsed content of `resultJson`. */
export const ResultJson = Schema.Struct({
  resultUrls: Schema.Array(Schema.String)
})

/** The parsed content of `resultJson`. */
export type ResultJson = typeof ResultJson.Type

// `resultJson` is documented as a JSON string; an already-parsed object is accepted too, since
// one doc generation shows it that way and nothing is lost by reading both.
const ResultJsonField = Schema.Union(Schema.parseJson(ResultJson), ResultJson)

const decodeError = (what: string, error: ParseResult.ParseError): TaskError.DecodeError =>
  new TaskError.DecodeError({ message: `${what}: ${ParseResult.TreeFormatter.formatErrorSync(error)}` })

/** Parses `resultJson` (a JSON string holding `{"resultUrls": [...]}`); a malformed one is a `DecodeError`. */
export const parseResultJson = (resultJson: unknown): Effect.Effect<ResultJson, TaskError.DecodeError> =>
  resultJson === undefined
    ? Effect.fail(new TaskError.DecodeError({ message: "A successful apixo task carries no resultJson" }))
    : Schema.decodeUnknown(ResultJsonField)(resultJson).pipe(
        Effect.mapError((error) => decodeError("apixo sent a malformed resultJson", error))
      )

/** Options of `toTaskStatus`. */
export interface StatusOptions {
  /** Content type given to every output (e.g. `video/mp4`); apixo does not say. */
  readonly outputContentType?: string | undefined
}

/** Turns status `data` into core's `TaskStatus`. An undocumented state is `UnknownRemoteState`. */
export const toTaskStatus = (
  data: StatusData,
  options: StatusOptions = {}
): Effect.Effect<TaskStatus.TaskStatus, TaskError.DecodeError | TaskError.UnknownRemoteState> => {
  const times = {
    ...(data.createTime === undefined ? {} : { remoteCreatedAt: data.createTime }),
    ...(data.completeTime === undefined ? {} : { remoteCompletedAt: data.completeTime })
  }
  switch (data.state) {
    case "pending":
      return Effect.succeed(new TaskStatus.Pending(times))
    case "processing":
      return Effect.succeed(new TaskStatus.Processing(times))
    case "success":
      return Effect.map(
        parseResultJson(data.resultJson),
        (result) =>
          new TaskStatus.Succeeded({
            ...times,
            outputs: result.resultUrls.map(
              (url) =>
                new TaskStatus.TaskOutput(
                  options.outputContentType === undefined ? { url } : { url, contentType: options.outputContentType }
                )
            )
          })
      )
    case "failed":
      return Effect.succeed(
        new TaskStatus.Failed({
          ...times,
          code: data.failCode ?? unknownFailCode,
          message: data.failMsg ?? ""
        })
      )
    default:
      return Effect.fail(new TaskError.UnknownRemoteState({ state: data.state }))
  }
}

const CallbackEnvelope = Envelope(StatusData)

/**
 * Reads a callback body (the statusTask envelope, as parsed JSON or as raw text) into a status hint.
 * A hint only: the callback is unsigned, so core confirms it with `status` before acting.
 */
export const parseCallback = (
  body: unknown,
  options: StatusOptions = {}
): Effect.Effect<TaskProvider.CallbackHint, TaskError.DecodeError> =>
  Effect.gen(function* () {
    const json = typeof body === "string" ? yield* parseJsonText(body, "The apixo callback body") : body
    const envelope = yield* Schema.decodeUnknown(CallbackEnvelope)(json).pipe(
      Effect.mapError((error) => decodeError("Not an apixo callback", error))
    )
    const status = yield* toTaskStatus(envelope.data, options).pipe(
      Effect.catchTag("UnknownRemoteState", (error) =>
        Effect.fail(new TaskError.DecodeError({ message: `The apixo callback reports ${error.message}` }))
      )
    )
    return { remoteTaskId: envelope.data.taskId, status }
  })

const parseJsonText = (text: string, what: string): Effect.Effect<unknown, TaskError.DecodeError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: () => new TaskError.DecodeError({ message: `${what} is not JSON` })
  })
