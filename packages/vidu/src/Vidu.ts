/**
 * The official Vidu API client: `POST /text2video`, `/img2video`, `/start-end2video`,
 * `GET /tasks/{id}/creations` and `POST /tasks/{id}/cancel` under `https://api.vidu.com/ent/v2`,
 * `Authorization: Token <key>` from a `Redacted` key, the mapping of every answer and failed
 * connection to core's typed errors, and the verifier of its signed callbacks. The API key is cut
 * out of every answer before anything reads it. One request per call: retries and timing belong
 * to core's `TaskClient`.
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
import * as ViduProtocol from "./ViduProtocol.js"
import * as ViduSignature from "./ViduSignature.js"
import { classify, type Operation } from "./internal/classify.js"

const { decodeBody, isHttpUrl, redactorFor } = HttpTransport

/** Vidu's production base URL. */
export const defaultBaseUrl = "https://api.vidu.com/ent/v2"

/** How long a submit may take before it counts as sent-but-unanswered. */
export const defaultSubmitTimeout: Duration.Duration = Duration.seconds(30)

/** How long a query or cancel may take. */
export const defaultStatusTimeout: Duration.Duration = Duration.seconds(30)

/** How to reach Vidu. */
export interface Options {
  /** The API key. Never logged, never put in an error or a span; also the key callbacks are signed with. */
  readonly apiKey: Redacted.Redacted<string>
  /** Default `https://api.vidu.com/ent/v2`. */
  readonly baseUrl?: string | undefined
  /** A submit without an answer after this long is `TransportError { requestSent: true }`. Default 30 s. */
  readonly submitTimeout?: Duration.DurationInput | undefined
  /** Limit for one query or cancel. Default 30 s. */
  readonly statusTimeout?: Duration.DurationInput | undefined
  /** How far a callback's `Date` may be from now (default 5 minutes). */
  readonly callbackReplayWindow?: Duration.DurationInput | undefined
}

/** The Vidu client. */
export interface Service {
  /** The base URL requests go to, without a trailing slash. */
  readonly baseUrl: string
  /** POSTs exactly `wire.body` to `wire.path` (a submit endpoint only), once; returns the answer. */
  readonly send: (wire: TaskProvider.WireRequest) => Effect.Effect<ViduProtocol.SubmitAnswer, TaskError.ProviderError>
  /** One `GET /tasks/{id}/creations`. */
  readonly query: (taskId: string) => Effect.Effect<ViduProtocol.QueryAnswer, TaskError.ProviderError>
  /** One `POST /tasks/{id}/cancel`. A task Vidu will not cancel (already running or done) is `RequestRejected`. */
  readonly cancel: (taskId: string) => Effect.Effect<void, TaskError.ProviderError>
  /** Checks a callback's signature, date and nonce (see `ViduSignature.makeVerifier`). */
  readonly verifyCallback: (delivery: TaskProvider.CallbackDelivery) => Effect.Effect<void, TaskError.CallbackRejected>
  /** Replaces the API key in a text with `[redacted]`. */
  readonly redact: (text: string) => string
}

/** The Vidu client tag. One per API key. */
export class Vidu extends Context.Tag("@reelkit/vidu/Vidu")<Vidu, Service>() {}

const normaliseBaseUrl = (baseUrl: string): string => {
  const trimmed = baseUrl.trim().replace(/\/+$/, "")
  if (!isHttpUrl(trimmed)) throw new Error(`Vidu baseUrl must be an absolute http(s) URL, got "${trimmed}"`)
  return trimmed
}

const callNames = (call: string): HttpTransport.CallNames => ({
  connect: call,
  build: `${call} request`,
  timeout: call
})

/** The Vidu calls as their error messages name them. */
const calls: Record<Operation, HttpTransport.CallNames> = {
  submit: callNames("Vidu submit"),
  query: callNames("Vidu query"),
  cancel: callNames("Vidu cancel")
}

/** Builds the client from options and an injected `HttpClient`. */
export const make = (options: Options): Effect.Effect<Service, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    // A misconfigured client is a defect: die with the reason.
    const baseUrl = yield* Effect.try({
      try: () => normaliseBaseUrl(options.baseUrl ?? defaultBaseUrl),
      catch: (error) => error
    }).pipe(Effect.orDie)
    const redact = redactorFor(Redacted.value(options.apiKey))
    const submitTimeout = Duration.decode(options.submitTimeout ?? defaultSubmitTimeout)
    const statusTimeout = Duration.decode(options.statusTimeout ?? defaultStatusTimeout)
    // `authorization` is among the platform's redacted header names, so spans never show it.
    const client = HttpTransport.baseClient(yield* HttpClient.HttpClient, baseUrl, (request) =>
      HttpClientRequest.setHeader(request, "authorization", `Token ${Redacted.value(options.apiKey)}`)
    )

    const execute = (
      operation: Operation,
      request: HttpClientRequest.HttpClientRequest,
      timeout: Duration.Duration,
      remoteTaskId?: string
    ) =>
      HttpTransport.execute(client, request, { names: calls[operation], timeout, redact }, (received) => {
        const answer = classify({ ...received, operation, remoteTaskId, redact })
        return answer._tag === "Accepted" ? Effect.succeed(answer.body) : Effect.fail(answer)
      })

    const send: Service["send"] = (wire) =>
      Effect.gen(function* () {
        const endpoint = ViduProtocol.endpointOfPath(wire.path)
        if (endpoint === undefined) {
          return yield* new TaskError.InvalidInput({
            path: "wire.path",
            rule: `must be a Vidu submit endpoint (${ViduProtocol.endpoints.map(ViduProtocol.submitPath).join(", ")})`
          })
        }
        yield* Effect.annotateCurrentSpan("vidu.endpoint", endpoint)
        const text = yield* Effect.try({
          try: () => JSON.stringify(wire.body),
          catch: () => new TaskError.InvalidInput({ path: "input", rule: "must be serialisable as JSON" })
        })
        const request = HttpClientRequest.post(wire.path).pipe(HttpClientRequest.bodyText(text, "application/json"))
        const body = yield* execute("submit", request, submitTimeout)
        return yield* decodeBody(
          ViduProtocol.SubmitAnswer,
          body,
          "Vidu accepted the submit but sent no task_id",
          redact
        )
      }).pipe(Effect.withSpan("Vidu.submit"))

    const query: Service["query"] = (taskId) =>
      Effect.gen(function* () {
        const body = yield* execute(
          "query",
          HttpClientRequest.get(ViduProtocol.queryPath(taskId)),
          statusTimeout,
          taskId
        )
        const answer = yield* decodeBody(ViduProtocol.QueryAnswer, body, "Vidu sent an unreadable task", redact)
        if (answer.id !== undefined && answer.id !== taskId) {
          return yield* new TaskError.DecodeError({
            message: `Vidu answered a query for task ${taskId} with task ${answer.id}`
          })
        }
        return answer
      }).pipe(Effect.withSpan("Vidu.query", { attributes: { "vidu.task_id": taskId } }))

    const cancel: Service["cancel"] = (taskId) =>
      Effect.asVoid(
        execute(
          "cancel",
          HttpClientRequest.post(ViduProtocol.cancelPath(taskId)).pipe(
            HttpClientRequest.bodyText(JSON.stringify({ id: taskId }), "application/json")
          ),
          statusTimeout,
          taskId
        )
      ).pipe(Effect.withSpan("Vidu.cancel", { attributes: { "vidu.task_id": taskId } }))

    const verifyCallback = ViduSignature.makeVerifier({
      apiKey: options.apiKey,
      replayWindow: options.callbackReplayWindow
    })

    return { baseUrl, send, query, cancel, verifyCallback, redact }
  })

/** The client as a layer. Needs an `HttpClient` (apps choose Node's or fetch). */
export const layer = (options: Options): Layer.Layer<Vidu, never, HttpClient.HttpClient> =>
  Layer.effect(Vidu, make(options))

/** Reads `VIDU_API_KEY` (secret) and `VIDU_BASE_URL` (default `https://api.vidu.com/ent/v2`). */
export const config: Config.Config<Options> = Config.all({
  apiKey: Config.redacted("VIDU_API_KEY"),
  baseUrl: Config.string("VIDU_BASE_URL").pipe(
    Config.withDefault(defaultBaseUrl),
    Config.validate({ message: "must be an absolute http(s) URL", validation: (value) => isHttpUrl(value.trim()) })
  )
})

/** The client from configuration; by default `VIDU_API_KEY` and `VIDU_BASE_URL`. */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<Vidu, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(Vidu, Effect.flatMap(Config.unwrap(options), make))
