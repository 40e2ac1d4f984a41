/**
 * Provider callbacks, made safe. Each task's callback URL carries a token derived from a secret
 * and the task key (HMAC-SHA256), so only URLs we handed out are accepted; the token is compared
 * in constant time. The handler answers at once and treats the body as a hint only: it asks the
 * provider for the task's real status before anything changes, and a waiting `wait` or `watch`
 * finishes as soon as that confirmed status arrives. Repeated deliveries are de-duplicated.
 *
 * Mount `router` in your own server, or serve it with `layerServe`.
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { CallbackConfig, type Config, routePath, verifyToken } from "./CallbackUrls.js"
import { TaskClient } from "./TaskClient.js"
import { isTerminalState, TaskLedger } from "./TaskLedger.js"

/** What happened to one delivery, as the handler answers it. */
export type Outcome = "accepted" | "duplicate" | "unauthorized" | "too-large" | "unreadable" | "unknown-task"

/** Options of the handler. */
export interface HandlerOptions {
  /** How many (task, claimed status) pairs are remembered for de-duplication (default 10,000). */
  readonly dedupeCapacity?: number | undefined
  /** Called after each delivery is answered: for logs and tests. */
  readonly onDelivery?: ((taskKey: string, outcome: Outcome) => void) | undefined
}

type Body = { readonly _tag: "Read"; readonly text: string } | { readonly _tag: "Unreadable" }

/**
 * Reads a body up to `maxBytes`; `None` when it is larger. A declared Content-Length is checked
 * first and the body read in one piece (the fast path); a chunked body is read as a stream and kept only up
 * to the cap and answered with 413 beyond it.
 */
const readCapped = (request: HttpServerRequest.HttpServerRequest, maxBytes: number) => {
  const declared = Number(request.headers["content-length"] ?? Number.NaN)
  if (Number.isFinite(declared)) {
    if (declared > maxBytes) return Effect.succeed(Option.none<Body>())
    return request.text.pipe(
      Effect.map((text) => Option.some<Body>({ _tag: "Read", text })),
      Effect.orElseSucceed(() => Option.some<Body>({ _tag: "Unreadable" }))
    )
  }
  const chunks: Array<Uint8Array> = []
  let total = 0
  // Stopping early would make the platform drop the connection without an answer: drain the rest,
  // keeping nothing past the cap, so memory stays bounded and the sender gets its 413.
  return request.stream.pipe(
    Stream.runForEach((chunk) =>
      Effect.sync(() => {
        total += chunk.byteLength
        if (total <= maxBytes) chunks.push(chunk)
      })
    ),
    Effect.map(() =>
      total <= maxBytes
        ? Option.some<Body>({ _tag: "Read", text: Buffer.concat(chunks).toString("utf8") })
        : Option.none<Body>()
    ),
    Effect.orElseSucceed(() => Option.some<Body>({ _tag: "Unreadable" }))
  )
}

/**
 * Builds the callback router: `POST /callbacks/:taskKey/:token`. Answers 401 for a token we did not
 * make, 413 for a body over the cap, 404 for a task not in the ledger, and 200 otherwise, before
 * the confirmation (a status request) runs in the background.
 */
export const makeRouter = (
  options: HandlerOptions = {}
): Effect.Effect<HttpRouter.HttpRouter, never, CallbackConfig | TaskClient | TaskLedger | Scope.Scope> =>
  Effect.gen(function* () {
    const config = yield* CallbackConfig
    const client = yield* TaskClient
    const ledger = yield* TaskLedger
    const confirmations = yield* FiberSet.make<void>()
    const maxBodyBytes = config.maxBodyBytes ?? 64 * 1024
    const capacity = options.dedupeCapacity ?? 10_000
    // (task, claimed state) pairs already acted on; insertion-ordered, so the oldest is evicted first.
    const seen = new Set<string>()
    const confirming = new Set<string>()

    const answer = (taskKey: string, outcome: Outcome, status: number) => {
      options.onDelivery?.(taskKey, outcome)
      return HttpServerResponse.unsafeJson({ outcome }, { status })
    }

    /** Asks the provider for the truth, and resolves an ambiguous submit when the hint names the remote task. */
    const confirm = (taskKey: string, claimedRemoteId: string | undefined, dedupeKey: string) =>
      Effect.gen(function* () {
        const row = yield* ledger.get(taskKey)
        if (Option.isSome(row) && row.value.state === "ambiguous" && claimedRemoteId !== undefined) {
          // The provider called back for this task: its submit did create it, under this id. The
          // status request below confirms the id really exists before anyone waits on it.
          const status = yield* Effect.either(client.provider.status(claimedRemoteId))
          if (Either.isRight(status)) {
            yield* ledger.transition(taskKey, ["ambiguous"], { state: "submitted", remoteTaskId: claimedRemoteId })
          }
        }
        const confirmed = yield* client.refresh(taskKey)
        // The status did not bear the callback out (yet): forget this delivery, so a later one
        // claiming the same is acted on rather than dropped as a duplicate.
        if (!isTerminalState(confirmed.state) && confirmed.state !== "succeeded") seen.delete(dedupeKey)
      }).pipe(
        Effect.tapErrorCause(() => Effect.sync(() => seen.delete(dedupeKey))),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => confirming.delete(taskKey))),
        Effect.withSpan("reelkit.callback.confirm", { attributes: { "reelkit.task_key": taskKey } })
      )

    const handle = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const params = yield* HttpRouter.params
      const taskKey = params.taskKey ?? ""
      if (!verifyToken(config.secret, taskKey, params.token ?? "")) return answer(taskKey, "unauthorized", 401)
      const body = yield* readCapped(request, maxBodyBytes)
      if (Option.isNone(body)) return answer(taskKey, "too-large", 413)
      if (body.value._tag === "Unreadable") return answer(taskKey, "unreadable", 400)
      const row = yield* Effect.orElseSucceed(ledger.get(taskKey), () => Option.none())
      if (Option.isNone(row)) return answer(taskKey, "unknown-task", 404)

      const hint = yield* parseHint(client, body.value.text)
      const claimedState = Option.match(hint, { onNone: () => "unreadable", onSome: (value) => value.status._tag })
      const dedupeKey = `${taskKey}:${claimedState}`
      if (seen.has(dedupeKey) || confirming.has(taskKey)) return answer(taskKey, "duplicate", 200)
      seen.add(dedupeKey)
      if (seen.size > capacity) seen.delete(seen.values().next().value!)
      confirming.add(taskKey)
      yield* FiberSet.run(
        confirmations,
        confirm(taskKey, Option.getOrUndefined(Option.map(hint, (value) => value.remoteTaskId)), dedupeKey)
      )
      return answer(taskKey, "accepted", 200)
    })

    return HttpRouter.empty.pipe(HttpRouter.post(routePath, handle))
  })

const parseHint = (client: TaskClient["Type"], text: string) =>
  Effect.gen(function* () {
    const parse = client.provider.parseCallback
    if (parse === undefined) return Option.none()
    const json = yield* Effect.try(() => JSON.parse(text) as unknown).pipe(Effect.option)
    if (Option.isNone(json)) return Option.none()
    return yield* parse(json.value).pipe(Effect.option)
  })

/** Serves the callback router on the `HttpServer` in context (e.g. `NodeHttpServer.layer(createServer, { port })`). */
export const layerServe = (
  options: HandlerOptions = {}
): Layer.Layer<never, never, CallbackConfig | TaskClient | TaskLedger | HttpServer.HttpServer> =>
  Layer.unwrapScoped(Effect.map(makeRouter(options), (router) => HttpServer.serve(router)))

/** The callback configuration as a layer. */
export const layerConfig = (config: Config): Layer.Layer<CallbackConfig> => Layer.succeed(CallbackConfig, config)

export { CallbackConfig, type Config } from "./CallbackUrls.js"
