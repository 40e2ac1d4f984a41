/**
 * The official Vidu API's wire protocol (`https://api.vidu.com/ent/v2`): one submit endpoint per
 * mode, the submit and query answers, the five task states, error bodies, and callback payloads.
 * Pure schemas and functions; the HTTP side lives in `Vidu`.
 *
 * @since 0.1.0
 */
import { TaskError, TaskProvider, TaskStatus } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** The submit endpoints, one per mode: text alone, one image, a first and a last frame. */
export const Endpoint = Schema.Literal("text2video", "img2video", "start-end2video")

/** A submit endpoint. */
export type Endpoint = typeof Endpoint.Type

/** The submit endpoints. */
export const endpoints: ReadonlyArray<Endpoint> = Endpoint.literals

/** The path of a submit endpoint under the base URL, e.g. `/text2video`. */
export const submitPath = (endpoint: Endpoint): string => `/${endpoint}`

/** The endpoint a path names, when it is a submit endpoint. */
export const endpointOfPath = (path: string): Endpoint | undefined =>
  endpoints.find((endpoint) => submitPath(endpoint) === path)

/** The path of a task's query (`GET /tasks/{id}/creations`). */
export const queryPath = (taskId: string): string => `/tasks/${encodeURIComponent(taskId)}/creations`

/** The path of a task's cancel (`POST /tasks/{id}/cancel`). */
export const cancelPath = (taskId: string): string => `/tasks/${encodeURIComponent(taskId)}/cancel`

/** The body of a submit: the model's fields plus, when given, `callback_url` and the transport options. */
export type SubmitBody = Readonly<Record<string, unknown>> & { readonly model: string }

/** Transport options a start request may carry (`StartRequest.options`), sent as body fields. */
export const SubmitOptions = Schema.Struct({
  /** Off-peak generation: cheaper, finished within 48 hours. */
  off_peak: Schema.optional(Schema.Boolean),
  /** Your own text, echoed back in the task (at most 1048576 characters). */
  payload: Schema.optional(Schema.String.pipe(Schema.maxLength(1048576))),
  /** Whether the output carries Vidu's watermark. */
  watermark: Schema.optional(Schema.Boolean)
})

/** Transport options. */
export type SubmitOptions = typeof SubmitOptions.Type

/** The option keys the transport knows. */
export const optionKeys: ReadonlyArray<string> = Object.keys(SubmitOptions.fields)

/** The five documented task states. Anything else is `UnknownRemoteState`. */
export const State = Schema.Literal("created", "queueing", "processing", "success", "failed")

/** A documented task state. */
export type State = typeof State.Type

/** The answer to a submit. Only `task_id` is read; the echo of the request is ignored. */
export const SubmitAnswer = Schema.Struct({
  task_id: Schema.NonEmptyString,
  state: Schema.optionalWith(Schema.String, { nullable: true }),
  created_at: Schema.optionalWith(Schema.String, { nullable: true }),
  credits: Schema.optionalWith(Schema.Number, { nullable: true })
})

/** The answer to a submit. */
export type SubmitAnswer = typeof SubmitAnswer.Type

/** One generated result. URLs live 24 hours. */
export const Creation = Schema.Struct({
  id: Schema.optionalWith(Schema.String, { nullable: true }),
  url: Schema.String,
  cover_url: Schema.optionalWith(Schema.String, { nullable: true }),
  watermarked_url: Schema.optionalWith(Schema.String, { nullable: true })
})

/** One generated result. */
export type Creation = typeof Creation.Type

/**
 * The answer to a query (and, with `id`, a callback body). `state` stays a string so an unknown one
 * is reported, not rejected as garbage; `err_code` is `""` while nothing failed.
 */
export const QueryAnswer = Schema.Struct({
  id: Schema.optionalWith(Schema.String, { nullable: true }),
  state: Schema.String,
  err_code: Schema.optionalWith(Schema.String, { nullable: true }),
  credits: Schema.optionalWith(Schema.Number, { nullable: true }),
  creations: Schema.optionalWith(Schema.Array(Creation), { nullable: true })
})

/** The answer to a query. */
export type QueryAnswer = typeof QueryAnswer.Type

/** An error answer: `{ code, reason, message, metadata: { trace_id } }`. */
export const ErrorBody = Schema.Struct({
  code: Schema.optional(Schema.Number),
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  metadata: Schema.optional(Schema.Struct({ trace_id: Schema.optional(Schema.String) }))
})

/** An error answer. */
export type ErrorBody = typeof ErrorBody.Type

/** The `err_code` of a task a user cancelled (ours, or from Vidu's console). */
export const userCancelledCode = "UserCancelled"

/** Used when a failed task carries no `err_code`. */
export const unknownFailCode = "UNKNOWN"

/** What Vidu's error-code table says each task failure code means (the query carries only the code). */
export const failDescriptions: Readonly<Record<string, string>> = {
  ImageDownloadFailure: "Failed to download the image URL",
  ImageFormatInvalid: "The image format does not meet the requirements",
  AuditSubmitIllegal: "The input did not pass the safety review",
  CreditInsufficient: "Insufficient credits",
  CreationPolicyViolation: "The generated content triggered a policy violation",
  TaskPromptPolicyViolation: "The prompt triggered a policy violation",
  ModelUnavailable: "The requested model is unavailable",
  UserCancelled: "The task was cancelled",
  InternalServiceFailure: "Internal service failure"
}

/** Options of `toTaskStatus`. */
export interface StatusOptions {
  /** Content type given to every output (e.g. `video/mp4`); Vidu does not say. */
  readonly outputContentType?: string | undefined
}

/**
 * Turns a query answer into core's `TaskStatus`: `created` and `queueing` are `Pending`,
 * `processing` is `Processing`, `success` is `Succeeded` with each creation's `url`, `failed` is
 * `Failed` with `err_code`, or `Cancelled` when the code is `UserCancelled`.
 */
export const toTaskStatus = (
  answer: QueryAnswer,
  options: StatusOptions = {}
): Effect.Effect<TaskStatus.TaskStatus, TaskError.DecodeError | TaskError.UnknownRemoteState> => {
  switch (answer.state) {
    case "created":
    case "queueing":
      return Effect.succeed(new TaskStatus.Pending({}))
    case "processing":
      return Effect.succeed(new TaskStatus.Processing({}))
    case "success": {
      const creations = answer.creations ?? []
      if (creations.length === 0) {
        return Effect.fail(new TaskError.DecodeError({ message: "A successful Vidu task carries no creations" }))
      }
      return Effect.succeed(
        new TaskStatus.Succeeded({
          outputs: creations.map(
            (creation) =>
              new TaskStatus.TaskOutput(
                options.outputContentType === undefined
                  ? { url: creation.url }
                  : { url: creation.url, contentType: options.outputContentType }
              )
          )
        })
      )
    }
    case "failed": {
      const code = answer.err_code === undefined || answer.err_code === "" ? unknownFailCode : answer.err_code
      if (code === userCancelledCode) return Effect.succeed(new TaskStatus.Cancelled({ code }))
      return Effect.succeed(new TaskStatus.Failed({ code, message: failDescriptions[code] ?? "" }))
    }
    default:
      return Effect.fail(new TaskError.UnknownRemoteState({ state: answer.state }))
  }
}

const CallbackBody = Schema.Struct({ ...QueryAnswer.fields, id: Schema.NonEmptyString })

const decodeError = (what: string, error: ParseResult.ParseError): TaskError.DecodeError =>
  new TaskError.DecodeError({ message: `${what}: ${ParseResult.TreeFormatter.formatErrorSync(error)}` })

/**
 * Reads a callback body (the task as a query answers it, with its `id`; parsed JSON or raw text)
 * into a status hint. A hint only, even when signed: the signature does not cover the body, so
 * core confirms it with `status` before acting.
 */
export const parseCallback = (
  body: unknown,
  options: StatusOptions = {}
): Effect.Effect<TaskProvider.CallbackHint, TaskError.DecodeError> =>
  Effect.gen(function* () {
    const json =
      typeof body === "string"
        ? yield* Effect.try({
            try: () => JSON.parse(body) as unknown,
            catch: () => new TaskError.DecodeError({ message: "The Vidu callback body is not JSON" })
          })
        : body
    const callback = yield* Schema.decodeUnknown(CallbackBody)(json).pipe(
      Effect.mapError((error) => decodeError("Not a Vidu callback", error))
    )
    const status = yield* toTaskStatus(callback, options).pipe(
      Effect.catchTag("UnknownRemoteState", (error) =>
        Effect.fail(new TaskError.DecodeError({ message: `The Vidu callback reports ${error.message}` }))
      )
    )
    return { remoteTaskId: callback.id, status }
  })
