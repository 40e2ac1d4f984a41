/**
 * Turns one apixo model's input schema into core's `TaskProvider`. Every apixo model shares the
 * transport, the envelope and the states; only `input` differs. So a model is a `Definition`: its
 * id, its input schema (with the rules' texts as annotations) and its hints.
 *
 * @since 0.1.0
 */
import { TaskError, TaskProvider } from "@reelkit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { Apixo } from "./Apixo.js"
import * as ApixoProtocol from "./ApixoProtocol.js"
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

// Optional fields given as `undefined` are omitted on the wire, as if the caller left them out.
const withoutUndefined = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutUndefined)
  if (typeof value !== "object" || value === null) return value
  const out: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) {
    if (field !== undefined) out[key] = withoutUndefined(field)
  }
  return out
}

/**
 * Checks an input against the model's schema, rejecting unknown fields, and encodes it. Sends
 * nothing. The first broken rule becomes `InvalidInput { path: "input.<field>", rule }`.
 */
export const prepare =
  <A, I>(definition: Definition<A, I>) =>
  (input: unknown): Effect.Effect<TaskProvider.PreparedInput, TaskError.InvalidInput> =>
    Effect.gen(function* () {
      const decoded = yield* Schema.decodeUnknown(definition.input, { errors: "all", onExcessProperty: "error" })(
        input
      ).pipe(Effect.mapError((error) => toInvalidInput(error)))
      const wire = yield* Schema.encode(definition.input)(decoded).pipe(
        Effect.mapError((error) => toInvalidInput(error))
      )
      return { wire: withoutUndefined(wire), billableSeconds: definition.billableSeconds?.(decoded) }
    })

const routingProvider = (
  options: Readonly<Record<string, unknown>> | undefined
): Effect.Effect<string | undefined, TaskError.InvalidInput> => {
  const provider = options?.provider
  return provider === undefined || (typeof provider === "string" && provider !== "")
    ? Effect.succeed(provider)
    : Effect.fail(
        new TaskError.InvalidInput({
          path: "options.provider",
          rule: 'must be "auto", "value", "official" or a channel name'
        })
      )
}

/**
 * Builds the model's `TaskProvider` on the shared `Apixo` client. `submit` sends one POST (the
 * routing `provider` from `options.provider`, else the client's default); `status` one GET.
 */
export const make = <A, I>(
  definition: Definition<A, I>,
  overrides: Overrides = {}
): Effect.Effect<TaskProvider.Service, never, Apixo> =>
  Effect.gen(function* () {
    const apixo = yield* Apixo
    const statusOptions = { outputContentType: definition.outputContentType }
    const modelId = definition.modelId
    return {
      providerId,
      modelId,
      prepare: prepare(definition),
      submit: (request) =>
        Effect.gen(function* () {
          const provider = yield* routingProvider(request.options)
          const accepted = yield* apixo.generateTask(modelId, {
            input: request.input,
            callbackUrl: request.callbackUrl,
            provider
          })
          return { remoteTaskId: accepted.taskId }
        }),
      status: (remoteTaskId) =>
        Effect.flatMap(apixo.statusTask(modelId, remoteTaskId), (data) =>
          ApixoProtocol.toTaskStatus(data, statusOptions)
        ),
      parseCallback: (body) => ApixoProtocol.parseCallback(body, statusOptions),
      hints: hints(definition, overrides)
    } satisfies TaskProvider.Service
  })

/** The model as core's `TaskProvider` layer, on an `Apixo` client layer. */
export const layer = <A, I>(
  definition: Definition<A, I>,
  overrides: Overrides = {}
): Layer.Layer<TaskProvider.TaskProvider, never, Apixo> =>
  Layer.effect(TaskProvider.TaskProvider, make(definition, overrides))
