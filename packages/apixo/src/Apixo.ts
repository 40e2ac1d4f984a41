/**
 * The apixo.ai HTTP client shared by every apixo model: `POST /api/v1/generateTask/{model}` and
 * `GET /api/v1/statusTask/{model}?taskId=`, Bearer auth from a `Redacted` key, and the mapping of
 * every answer and failed connection to core's typed errors. The API key is cut out of every
 * answer before anything reads it. One request per call: retries and timing belong to core's
 * `TaskClient`.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { HttpTransport, TaskError, type TaskProvider } from "@reelkit/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as ApixoProtocol from "./ApixoProtocol.js"
import { type Operation, callNames, classify } from "./internal/classify.js"
import * as Gate from "./internal/gate.js"

const { decodeBody, redactorFor } = HttpTransport

/** apixo's production base URL. */
export const defaultBaseUrl = "https://api.apixo.ai"

/** How long a submit may take before it counts as sent-but-unanswered. */
export const defaultSubmitTimeout: Duration.Duration = Duration.seconds(30)

/** How long a status request may take. */
export const defaultStatusTimeout: Duration.Duration = Duration.seconds(30)

/** How to reach apixo. */
export interface Options {
  /** The API key. Never logged, never put in an error or a span. */
  readonly apiKey: Redacted.Redacted<string>
  /** Default `https://api.apixo.ai`. */
  readonly baseUrl?: string | undefined
  /** The routing `provider` sent with every submit unless the submit names one; omitted by default (server default `auto`). */
  readonly provider?: ApixoProtocol.RoutingProvider | undefined
  /**
   * A submit without an answer after this long fails with `TransportError { requestSent: true }`:
   * the task may exist, so core marks it ambiguous rather than re-sending it. Default 30 s.
   */
  readonly submitTimeout?: Duration.DurationInput | undefined
  /** Limit for one status request. Default 30 s. */
  readonly statusTimeout?: Duration.DurationInput | undefined
}

/** The apixo client. */
export interface Service {
  /** The base URL requests go to, without a trailing slash. */
  readonly baseUrl: string
  /** The routing `provider` a submit carries when the request names none (`Options.provider`). */
  readonly provider: ApixoProtocol.RoutingProvider | undefined
  /**
   * POSTs exactly `wire.body` (as JSON) to `wire.path`, once; on success returns apixo's `taskId`.
   * The path must be a submit endpoint (`/api/v1/generateTask/<model>`).
   */
  readonly send: (wire: TaskProvider.WireRequest) => Effect.Effect<ApixoProtocol.SubmitData, TaskError.ProviderError>
  /**
   * Builds the body (with the client's routing provider when the request names none), checks the
   * callback URL and routing provider, and sends it once. `send` of a prepared request is the
   * provider's path; this remains for direct use of the client.
   */
  readonly generateTask: (
    modelId: string,
    request: ApixoProtocol.GenerateTaskRequest
  ) => Effect.Effect<ApixoProtocol.SubmitData, TaskError.ProviderError>
  /** Sends exactly one status request and returns the decoded `data` (state still unchecked). */
  readonly statusTask: (
    modelId: string,
    taskId: string
  ) => Effect.Effect<ApixoProtocol.StatusData, TaskError.ProviderError>
  /** Replaces the API key in a text with `[redacted]` (as `TaskProvider.redactSecrets` does). */
  readonly redact: (text: string) => string
}

/** The apixo client tag. One per API key; every apixo model shares it. */
export class Apixo extends Context.Tag("@reelkit/apixo/Apixo")<Apixo, Service>() {}

const normaliseBaseUrl = (baseUrl: string): string => {
  const trimmed = baseUrl.trim().replace(/\/+$/, "")
  if (!HttpTransport.isHttpUrl(trimmed)) {
    throw new Error(`apixo baseUrl must be an absolute http(s) URL, got "${trimmed}"`)
  }
  return trimmed
}

const normaliseProvider = (provider: ApixoProtocol.RoutingProvider | undefined) => {
  if (provider !== undefined && !Schema.is(ApixoProtocol.RoutingProvider)(provider)) {
    throw new Error(`apixo provider ${ApixoProtocol.routingProviderRule}`)
  }
  return provider
}

/** Builds the client from options and an injected `HttpClient`. */
export const make = (options: Options): Effect.Effect<Service, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    // A misconfigured client is a defect: die with the reason, not an anonymous UnknownException.
    const baseUrl = yield* Effect.try({
      try: () => normaliseBaseUrl(options.baseUrl ?? defaultBaseUrl),
      catch: (error) => error
    }).pipe(Effect.orDie)
    const defaultProvider = yield* Effect.try({
      try: () => normaliseProvider(options.provider),
      catch: (error) => error
    }).pipe(Effect.orDie)
    const redact = redactorFor(Redacted.value(options.apiKey))
    const submitTimeout = Duration.decode(options.submitTimeout ?? defaultSubmitTimeout)
    const statusTimeout = Duration.decode(options.statusTimeout ?? defaultStatusTimeout)
    const client = HttpTransport.baseClient(yield* HttpClient.HttpClient, baseUrl, (request) =>
      HttpClientRequest.bearerToken(request, options.apiKey)
    )

    const execute = (
      operation: Operation,
      request: HttpClientRequest.HttpClientRequest,
      timeout: Duration.Duration,
      remoteTaskId?: string
    ) =>
      HttpTransport.execute(client, request, { names: callNames[operation], timeout, redact }, (received) => {
        const answer = classify({ ...received, operation, remoteTaskId, redact })
        return answer._tag === "Accepted" ? Effect.succeed(answer.data) : Effect.fail(answer)
      })

    const send: Service["send"] = (wire) =>
      Effect.gen(function* () {
        if (!Gate.isGenerateTaskPath(wire.path)) {
          return yield* new TaskError.InvalidInput({
            path: "wire.path",
            rule: "must be an apixo submit endpoint (/api/v1/generateTask/<model>)"
          })
        }
        yield* Effect.annotateCurrentSpan("apixo.model", Gate.modelOfPath(wire.path))
        const text = yield* Gate.jsonText(wire.body, "input")
        const httpRequest = HttpClientRequest.post(wire.path).pipe(HttpClientRequest.bodyText(text, "application/json"))
        const data = yield* execute("submit", httpRequest, submitTimeout)
        return yield* decodeBody(ApixoProtocol.SubmitData, data, "apixo accepted the submit but sent no taskId", redact)
        // The span keeps the endpoint's name, as before `send` existed, so traces read the same.
      }).pipe(Effect.withSpan("Apixo.generateTask"))

    const generateTask: Service["generateTask"] = (modelId, request) =>
      Effect.flatMap(Gate.wireRequest(modelId, { ...request, provider: request.provider ?? defaultProvider }), send)

    const statusTask: Service["statusTask"] = (modelId, taskId) =>
      Effect.gen(function* () {
        const request = HttpClientRequest.get(`/api/v1/statusTask/${encodeURIComponent(modelId)}`).pipe(
          HttpClientRequest.setUrlParam("taskId", taskId)
        )
        const data = yield* execute("status", request, statusTimeout, taskId)
        const status = yield* decodeBody(ApixoProtocol.StatusData, data, "apixo sent an unreadable task status", redact)
        if (status.taskId !== taskId) {
          return yield* new TaskError.DecodeError({
            message: `apixo answered a status request for task ${taskId} with task ${status.taskId}`
          })
        }
        return status
      }).pipe(Effect.withSpan("Apixo.statusTask", { attributes: { "apixo.model": modelId, "apixo.task_id": taskId } }))

    return { baseUrl, provider: defaultProvider, send, generateTask, statusTask, redact }
  })

/** The client as a layer. Needs an `HttpClient` (apps choose Node's or fetch). */
export const layer = (options: Options): Layer.Layer<Apixo, never, HttpClient.HttpClient> =>
  Layer.effect(Apixo, make(options))

/** Reads `APIXO_API_KEY` (secret) and `APIXO_BASE_URL` (default `https://api.apixo.ai`). */
export const config: Config.Config<Options> = Config.all({
  apiKey: Config.redacted("APIXO_API_KEY"),
  baseUrl: Config.string("APIXO_BASE_URL").pipe(
    Config.withDefault(defaultBaseUrl),
    Config.validate({
      message: "must be an absolute http(s) URL",
      validation: (value) => HttpTransport.isHttpUrl(value.trim())
    })
  )
})

/** The client from configuration; by default `APIXO_API_KEY` and `APIXO_BASE_URL`. */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<Apixo, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(Apixo, Effect.flatMap(Config.unwrap(options), make))
