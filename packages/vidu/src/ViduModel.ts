/**
 * Turns one model's encoding for the official Vidu API into core's `TaskProvider`. A model is a
 * `Definition`: its id, how its input becomes a submit (endpoint, body, warnings) and its hints.
 * The transport adds `callback_url` and the transport options (`off_peak`, `payload`, `watermark`).
 *
 * @since 0.1.0
 */
import { HttpTransport, TaskError, TaskProvider } from "@reelkit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Vidu } from "./Vidu.js"
import * as ViduProtocol from "./ViduProtocol.js"

/** The provider id every model on this transport reports. */
export const providerId = "vidu"

/** How long Vidu keeps result URLs: 24 hours. */
export const defaultResultRetention: Duration.Duration = Duration.hours(24)

/** One model input encoded for Vidu. */
export interface Encoded {
  /** The model input as the ledger stores it (and idempotency compares). */
  readonly input: unknown
  readonly endpoint: ViduProtocol.Endpoint
  /** The body's model fields (`model`, `prompt`, `images`, ...), in the order they are sent. */
  readonly body: ViduProtocol.SubmitBody
  readonly billableSeconds?: number | undefined
  /** Fields the caller set that Vidu cannot carry. */
  readonly warnings?: ReadonlyArray<TaskProvider.Warning> | undefined
}

/** One model on the Vidu transport. */
export interface Definition {
  /** reelkit's model id, e.g. `vidu-q3` (Vidu's own model name goes in the body). */
  readonly modelId: string
  /** Checks and encodes a caller's input; sends nothing. */
  readonly encode: (input: unknown) => Effect.Effect<Encoded, TaskError.InvalidInput>
  /** Default `TaskProvider.defaultPollPlan`. */
  readonly pollPlan?: TaskProvider.PollPlan | undefined
  /** Default 24 hours. */
  readonly resultRetention?: Duration.DurationInput | undefined
  /** Content type of every output (e.g. `video/mp4`). */
  readonly outputContentType?: string | undefined
}

/** Per-deployment overrides of a model's hints. */
export interface Overrides {
  readonly pollPlan?: Partial<TaskProvider.PollPlan> | undefined
  readonly resultRetention?: Duration.DurationInput | undefined
}

/** The hints core uses for a model, with overrides applied. */
export const hints = (definition: Definition, overrides: Overrides = {}): TaskProvider.ProviderHints => ({
  pollPlan: { ...(definition.pollPlan ?? TaskProvider.defaultPollPlan), ...overrides.pollPlan },
  resultRetention: Duration.decode(overrides.resultRetention ?? definition.resultRetention ?? defaultResultRetention)
})

const maxCallbackUrlLength = 2048

const invalid = (path: string, rule: string) => new TaskError.InvalidInput({ path, rule })

/** Checks a callback URL (absent is fine): an absolute http(s) URL, no whitespace, at most 2048 characters. */
export const checkCallbackUrl = (value: unknown): Effect.Effect<string | undefined, TaskError.InvalidInput> => {
  if (value === undefined) return Effect.succeed(undefined)
  if (typeof value !== "string") return Effect.fail(invalid("callbackUrl", "must be a string"))
  if (value.length > maxCallbackUrlLength) {
    return Effect.fail(invalid("callbackUrl", `must be at most ${maxCallbackUrlLength} characters`))
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(value)) {
    return Effect.fail(invalid("callbackUrl", "must not contain whitespace or control characters"))
  }
  try {
    const url = new URL(value)
    if ((url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "") return Effect.succeed(value)
  } catch {
    // refused below
  }
  return Effect.fail(invalid("callbackUrl", "must be an absolute http(s) URL"))
}

/** Checks the transport options: only `off_peak`, `payload`, `watermark`, each valid. */
export const checkOptions = (
  options: Readonly<Record<string, unknown>> | undefined
): Effect.Effect<ViduProtocol.SubmitOptions, TaskError.InvalidInput> => {
  if (options === undefined) return Effect.succeed({})
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return Effect.fail(invalid("options", "must be an object"))
  }
  const unknown = Object.keys(options).find((key) => !ViduProtocol.optionKeys.includes(key))
  if (unknown !== undefined) {
    return Effect.fail(
      invalid(
        `options.${unknown}`,
        `is not an option of the Vidu transport (known: ${ViduProtocol.optionKeys.join(", ")})`
      )
    )
  }
  return Schema.decodeUnknown(ViduProtocol.SubmitOptions)(options).pipe(
    Effect.mapError((error) => {
      const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
      return invalid(["options", ...(issue?.path ?? []).map(String)].join("."), issue?.message ?? "is invalid")
    })
  )
}

/**
 * The validation gate: the model input (`input.<field>`), the callback URL (`callbackUrl`) and the
 * transport options (`options.<key>`), then the exact request: `POST /<endpoint>` with the model's
 * fields, `callback_url` when given, and the options given.
 */
export const prepare =
  (definition: Definition) =>
  (request: TaskProvider.StartRequest): Effect.Effect<TaskProvider.PreparedRequest, TaskError.InvalidInput> =>
    Effect.gen(function* () {
      const encoded = yield* definition.encode(request.input)
      const callbackUrl = yield* checkCallbackUrl(request.callbackUrl)
      const options = yield* checkOptions(request.options)
      const body: Record<string, unknown> = { ...encoded.body }
      if (callbackUrl !== undefined) body.callback_url = callbackUrl
      for (const key of ViduProtocol.optionKeys) {
        const value = options[key as keyof ViduProtocol.SubmitOptions]
        if (value !== undefined) body[key] = value
      }
      const wire = new TaskProvider.WireRequest({
        method: "POST",
        path: ViduProtocol.submitPath(encoded.endpoint),
        body
      })
      return {
        input: encoded.input,
        wire,
        billableSeconds: encoded.billableSeconds,
        ...(encoded.warnings === undefined || encoded.warnings.length === 0 ? {} : { warnings: encoded.warnings })
      }
    })

/**
 * Builds the model's `TaskProvider` on the shared `Vidu` client: `prepare` is the gate above,
 * `submit` sends the prepared request's exact bytes, `status` is one query, `cancel` one cancel,
 * `verifyCallback` checks Vidu's signature, `parseCallback` reads the body as a hint.
 */
export const make = (
  definition: Definition,
  overrides: Overrides = {}
): Effect.Effect<TaskProvider.Service, never, Vidu> =>
  Effect.gen(function* () {
    const vidu = yield* Vidu
    const statusOptions = { outputContentType: definition.outputContentType }
    return {
      providerId,
      modelId: definition.modelId,
      prepare: prepare(definition),
      submit: ({ wire }) => Effect.map(vidu.send(wire), (accepted) => ({ remoteTaskId: accepted.task_id })),
      status: (remoteTaskId) =>
        Effect.flatMap(vidu.query(remoteTaskId), (answer) => ViduProtocol.toTaskStatus(answer, statusOptions)),
      cancel: vidu.cancel,
      verifyCallback: vidu.verifyCallback,
      // A callback body comes from outside like any answer: the key is cut out before it is read.
      parseCallback: (body) => ViduProtocol.parseCallback(HttpTransport.redactValue(body, vidu.redact), statusOptions),
      hints: hints(definition, overrides),
      redact: vidu.redact
    } satisfies TaskProvider.Service
  })

/** The model as core's `TaskProvider` layer, on a `Vidu` client layer. */
export const layer = (
  definition: Definition,
  overrides: Overrides = {}
): Layer.Layer<TaskProvider.TaskProvider, never, Vidu> =>
  Layer.effect(TaskProvider.TaskProvider, make(definition, overrides))
