// The checks of a start request beyond the model's input: the callback URL, the transport options
// and the JSON form of the body. Shared by `ApixoModel.prepare` (the validation gate) and the
// client's `generateTask`, so both refuse the same things with the same paths and rules.
import { TaskError, type TaskProvider } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as ApixoProtocol from "../ApixoProtocol.js"

/** The only transport option apixo knows: the routing `provider`. */
export const optionKeys: ReadonlyArray<string> = ["provider"]

const invalid = (path: string, rule: string) => new TaskError.InvalidInput({ path, rule })

const decodeCallbackUrl = Schema.decodeUnknownEither(ApixoProtocol.CallbackUrl)

/** Checks a callback URL (absent is fine); the rule broken is reported at `callbackUrl`. */
export const checkCallbackUrl = (value: unknown): Effect.Effect<string | undefined, TaskError.InvalidInput> => {
  if (value === undefined) return Effect.succeed(undefined)
  if (typeof value !== "string") return Effect.fail(invalid("callbackUrl", "must be a string"))
  const decoded = decodeCallbackUrl(value)
  if (Either.isRight(decoded)) return Effect.succeed(decoded.right)
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
  return Effect.fail(invalid("callbackUrl", issue?.message ?? "must be an absolute http(s) URL"))
}

const isRoutingProvider = Schema.is(ApixoProtocol.RoutingProvider)

/** Checks a routing provider (absent is fine) at `path`. */
export const checkRoutingProvider = (
  value: unknown,
  path: string
): Effect.Effect<ApixoProtocol.RoutingProvider | undefined, TaskError.InvalidInput> =>
  value === undefined || isRoutingProvider(value)
    ? Effect.succeed(value)
    : Effect.fail(invalid(path, ApixoProtocol.routingProviderRule))

/** Checks the transport options: only known keys, each valid. Returns the routing provider they name. */
export const checkOptions = (
  options: Readonly<Record<string, unknown>> | undefined
): Effect.Effect<ApixoProtocol.RoutingProvider | undefined, TaskError.InvalidInput> => {
  if (options === undefined) return Effect.succeed(undefined)
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return Effect.fail(invalid("options", "must be an object"))
  }
  const unknown = Object.keys(options).find((key) => !optionKeys.includes(key))
  return unknown === undefined
    ? checkRoutingProvider(options.provider, "options.provider")
    : Effect.fail(
        invalid(`options.${unknown}`, `is not an option of the apixo transport (known: ${optionKeys.join(", ")})`)
      )
}

/** The JSON text of a body; a body JSON cannot carry (a bigint, a cycle) is refused at `path`. */
export const jsonText = (body: unknown, path: string): Effect.Effect<string, TaskError.InvalidInput> =>
  Effect.try({
    try: () => JSON.stringify(body),
    catch: () => invalid(path, "must be serialisable as JSON")
  })

/**
 * The exact paid request for a model, once its callback URL and routing provider pass their rules
 * and its body is JSON. `input` must already be in wire form.
 */
export const wireRequest = (
  modelId: string,
  request: { readonly input: unknown; readonly callbackUrl?: unknown; readonly provider?: unknown }
): Effect.Effect<TaskProvider.WireRequest, TaskError.InvalidInput> =>
  Effect.gen(function* () {
    const callbackUrl = yield* checkCallbackUrl(request.callbackUrl)
    const provider = yield* checkRoutingProvider(request.provider, "options.provider")
    const wire = ApixoProtocol.makeWireRequest(modelId, { input: request.input, callbackUrl, provider })
    yield* jsonText(wire.body, "input")
    return wire
  })

const generateTaskPrefix = "/api/v1/generateTask/"

/** Whether a path is a submit endpoint (`/api/v1/generateTask/<model>`): the only place a stored request may go. */
export const isGenerateTaskPath = (path: string): boolean =>
  path.startsWith(generateTaskPrefix) && /^[^/?#]+$/.test(path.slice(generateTaskPrefix.length))

/** The model id of a submit endpoint's path (as `ApixoProtocol.generateTaskPath` encoded it). */
export const modelOfPath = (path: string): string => {
  const segment = path.slice(generateTaskPrefix.length)
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}
