/**
 * Turns one apixo model's input schema into core's `TaskProvider`. Every apixo model shares the
 * transport, the envelope and the states; only `input` differs. So a model is a `Definition`: its
 * id, its input schema (with the rules' texts as annotations) and its hints.
 *
 * @since 0.1.0
 */
import { HttpTransport, TaskError, TaskProvider } from "@reelkit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { Apixo } from "./Apixo.js"
import * as ApixoProtocol from "./ApixoProtocol.js"
import * as Gate from "./internal/gate.js"
import { toInvalidInput } from "./internal/issues.js"

/** The provider id every apixo model reports. */
export const providerId = "apixo"

/** How long apixo keeps result URLs: 15 days for every model it documents. */
export const defaultResultRetention: Duration.Duration = Duration.days(15)

/** One apixo model. */
export interface Definition<A, I> {
  /** The model id, a case-sensitive path segment (`vidu-q3`, `kling-2-6`, ...). */
  readonly modelId: string
  /**
   * The input schema. Its encoded form is the wire `input`, sent as is; `message` annotations give
   * the rule texts `prepare` reports.
   */
  readonly input: Schema.Schema<A, I, never>
  /** Seconds billed for an input, when known (e.g. `duration`). */
  readonly billableSeconds?: ((input: A) => number | undefined) | undefined
  /** Default `TaskProvider.defaultPollPlan`. */
  readonly pollPlan?: TaskProvider.PollPlan | undefined
  /** Default 15 days. */
  readonly resultRetention?: Duration.DurationInput | undefined
  /** Content type of every output (e.g. `video/mp4`), when the model always produces one kind. */
  readonly outputContentType?: string | undefined
}

/** Declares a model, inferring its input types. */
export const define = <A, I>(definition: Definition<A, I>): Definition<A, I> => definition

/** Per-deployment overrides of a model's hints. */
export interface Overrides {
  readonly pollPlan?: Partial<TaskProvider.PollPlan> | undefined
  readonly resultRetention?: Duration.DurationInput | undefined
}

/** The hints core uses for a model, with overrides applied. */
export const hints = <A, I>(definition: Definition<A, I>, overrides: Overrides = {}): TaskProvider.ProviderHints => ({
  pollPlan: { ...(definition.pollPlan ?? TaskProvider.defaultPollPlan), ...overrides.pollPlan },
  resultRetention: Duration.decode(overrides.resultRetention ?? definition.resultRetention ?? defaultResultRetention)
})

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The encoded input as it goes on the wire: optional fields given as `undefined` are omitted, as
 * if the caller left them out, and fields keep the caller's order (a schema's encoding orders them
 * by the schema), so a request transcribed from apixo's docs is sent byte for byte as written.
 * Fields the encoding added follow the caller's, in the schema's order.
 */
const toWire = (encoded: unknown, given: unknown): unknown => {
  if (Array.isArray(encoded)) {
    return encoded.map((item, index) => toWire(item, Array.isArray(given) ? given[index] : undefined))
  }
  if (!isRecord(encoded)) return encoded
  const source = isRecord(given) ? given : {}
  const keys = [...Object.keys(source).filter((key) => key in encoded), ...Object.keys(encoded)]
  const out: Record<string, unknown> = {}
  for (const key of keys) {
    const field = encoded[key]
    if (field !== undefined && !(key in out)) out[key] = toWire(field, source[key])
  }
  return out
}

/** An input that passed the model's rules: its wire form and the seconds it bills. */
export interface PreparedInput {
  /** The input as sent: the schema's encoded form, fields given as `undefined` left out. */
  readonly input: unknown
  readonly billableSeconds?: number | undefined
}

/**
 * Checks a model input against the model's schema, rejecting unknown fields, and encodes it. Sends
 * nothing. The first broken rule becomes `InvalidInput { path: "input.<field>", rule }`.
 */
export const prepareInput =
  <A, I>(definition: Definition<A, I>) =>
  (input: unknown): Effect.Effect<PreparedInput, TaskError.InvalidInput> =>
    Effect.gen(function* () {
      const decoded = yield* Schema.decodeUnknown(definition.input, { errors: "all", onExcessProperty: "error" })(
        input
      ).pipe(Effect.mapError((error) => toInvalidInput(error)))
      const encoded = yield* Schema.encode(definition.input)(decoded).pipe(
        Effect.mapError((error) => toInvalidInput(error))
      )
      return { input: toWire(encoded, input), billableSeconds: definition.billableSeconds?.(decoded) }
    })

/** What the transport adds to every request of a model unless the request says otherwise. */
export interface TransportDefaults {
  /** The routing `provider` used when `options.provider` is absent (the client's `Apixo.Options.provider`). */
  readonly provider?: ApixoProtocol.RoutingProvider | undefined
}

/**
 * The validation gate: checks the whole start request before anything is written or sent, and
 * returns the exact paid request. In order: the model input (`input.<field>`), the callback URL
 * (`callbackUrl`: an absolute http(s) URL of at most 2048 characters, no whitespace), and the
 * transport options (`options.provider`: `auto`, `value`, `official` or a channel name; any other
 * key is refused as `options.<key>`). The wire request is `POST /api/v1/generateTask/<model>`
 * with `request_type`, `callback_url` (exactly when a callback URL is given), `provider` (when
 * given here or in `defaults`) and `input`.
 */
export const prepare = <A, I>(definition: Definition<A, I>, defaults: TransportDefaults = {}) => {
  const checkInput = prepareInput(definition)
  return (request: TaskProvider.StartRequest): Effect.Effect<TaskProvider.PreparedRequest, TaskError.InvalidInput> =>
    Effect.gen(function* () {
      const prepared = yield* checkInput(request.input)
      const callbackUrl = yield* Gate.checkCallbackUrl(request.callbackUrl)
      const provider = (yield* Gate.checkOptions(request.options)) ?? defaults.provider
      const wire = yield* Gate.wireRequest(definition.modelId, { input: prepared.input, callbackUrl, provider })
      return { input: prepared.input, wire, billableSeconds: prepared.billableSeconds }
    })
}

/**
 * Builds the model's `TaskProvider` on the shared `Apixo` client. `prepare` is the gate above (with
 * the client's routing provider as default); `submit` sends the prepared request's exact bytes in
 * one POST; `status` is one GET. Everything read from apixo (statuses, callbacks, errors) has the
 * API key cut out, and `redact` does the same for core.
 */
export const make = <A, I>(
  definition: Definition<A, I>,
  overrides: Overrides = {}
): Effect.Effect<TaskProvider.Service, never, Apixo> =>
  Effect.gen(function* () {
    const apixo = yield* Apixo
    const statusOptions = { outputContentType: definition.outputContentType }
    const modelId = definition.modelId
    const path = ApixoProtocol.generateTaskPath(modelId)
    return {
      providerId,
      modelId,
      prepare: prepare(definition, { provider: apixo.provider }),
      submit: ({ wire }) =>
        wire.path === path
          ? Effect.map(apixo.send(wire), (accepted) => ({ remoteTaskId: accepted.taskId }))
          : // A stored request of another model: sending it here would bill the wrong model.
            Effect.fail(
              new TaskError.InvalidInput({ path: "wire.path", rule: `must be ${path} for model ${modelId}` })
            ),
      status: (remoteTaskId) =>
        Effect.flatMap(apixo.statusTask(modelId, remoteTaskId), (data) =>
          ApixoProtocol.toTaskStatus(data, statusOptions)
        ),
      // A callback body comes from outside like any answer: the key is cut out before it is read.
      parseCallback: (body) =>
        ApixoProtocol.parseCallback(HttpTransport.redactValue(body, apixo.redact), statusOptions),
      hints: hints(definition, overrides),
      redact: apixo.redact
    } satisfies TaskProvider.Service
  })

/** The model as core's `TaskProvider` layer, on an `Apixo` client layer. */
export const layer = <A, I>(
  definition: Definition<A, I>,
  overrides: Overrides = {}
): Layer.Layer<TaskProvider.TaskProvider, never, Apixo> =>
  Layer.effect(TaskProvider.TaskProvider, make(definition, overrides))
