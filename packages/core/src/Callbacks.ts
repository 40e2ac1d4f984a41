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
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { CallbackConfig, type Config, routePath, urlFor, verifyToken } from "./CallbackUrls.js"
import { TaskClient } from "./TaskClient.js"
import { fence, TaskLedger, type TaskRecord } from "./TaskLedger.js"
import { isTerminal } from "./TaskState.js"
import { AccountLimits } from "./AccountLimits.js"

/** What happened to one delivery, as the handler answers it. */
export type Outcome = "accepted" | "duplicate" | "unauthorized" | "too-large" | "unreadable" | "unknown-task"

/** Options of the handler. */
export interface HandlerOptions {
  /**
   * The least time between two status confirmations of one task (default 5 s). Deliveries in
   * between are coalesced into the next confirmation, so no number of replays spends more than one
   * status request per task per interval.
   */
  readonly minConfirmInterval?: Duration.DurationInput | undefined
  /** Called after each delivery is answered: for logs and tests. */
  readonly onDelivery?: ((taskKey: string, outcome: Outcome) => void) | undefined
  /** Called when a delivery's confirmation has finished (its status request applied, or refused): for logs and tests. */
  readonly onConfirmation?: ((taskKey: string, outcome: ConfirmationOutcome) => void) | undefined
}

/**
 * How a confirmation ended: `confirmed` (the provider's status was applied), `refused` (a callback
 * naming a remote id that is not this ambiguous task's: nothing changed), `failed` (the status
 * request or the ledger failed; polling remains the fallback).
 */
export type ConfirmationOutcome = "confirmed" | "refused" | "failed"

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
 * make (or, for a provider that signs its callbacks, a signature its `verifyCallback` refuses;
 * 200 `duplicate` for a replayed one), 413 for a body over the cap, 404 for a task not in the
 * ledger, and 200 otherwise, before the confirmation (a status request) runs in the background.
 */
export const makeRouter = (
  options: HandlerOptions = {}
): Effect.Effect<
  HttpRouter.HttpRouter,
  never,
  CallbackConfig | TaskClient | TaskLedger | AccountLimits | Scope.Scope
> =>
  Effect.gen(function* () {
    const config = yield* CallbackConfig
    const client = yield* TaskClient
    const ledger = yield* TaskLedger
    const limits = yield* AccountLimits
    // One confirmation per task at a time; a delivery while one is pending joins it.
    const confirmations = yield* FiberMap.make<string>()
    const lastConfirmed = new Map<string, number>()
    const maxBodyBytes = config.maxBodyBytes ?? 64 * 1024
    const minIntervalMillis = Duration.toMillis(options.minConfirmInterval ?? Duration.seconds(5))

    const answer = (taskKey: string, outcome: Outcome) => {
      options.onDelivery?.(taskKey, outcome)
      return answers[outcome]
    }

    /**
     * An ambiguous task's callback names a remote id: it is taken as this task's only if no other
     * row has that id and the provider's own status for it, asked with our key, exists and was
     * created while this task's submit was out. Otherwise nothing changes.
     */
    const resolveAmbiguous = (row: TaskRecord, claimedRemoteId: string): Effect.Effect<boolean, unknown> =>
      Effect.gen(function* () {
        const holder = yield* ledger.findByRemoteId(claimedRemoteId)
        if (Option.isSome(holder) && holder.value.taskKey !== row.taskKey) return false
        yield* limits.takeRequest
        const status = yield* client.provider.status(claimedRemoteId)
        const created = status.remoteCreatedAt
        if (
          created !== undefined &&
          (created < row.createdAt - clockSkewMillis || created > row.updatedAt + clockSkewMillis)
        ) {
          return false
        }
        yield* ledger.transition(fence(row, "reelkit-callbacks"), {
          state: "submitted",
          remoteTaskId: claimedRemoteId,
          submittedAt: created ?? row.updatedAt
        })
        return true
      })

    /** Asks the provider for the truth (after the task's minimum interval), resolving an ambiguous submit when the hint bears it out. */
    const confirm = (taskKey: string, claimedRemoteId: string | undefined) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const last = lastConfirmed.get(taskKey)
        const wakeAt = last === undefined ? now : last + minIntervalMillis
        if (wakeAt > now) yield* Effect.sleep(Duration.millis(wakeAt - now))
        lastConfirmed.set(taskKey, yield* Clock.currentTimeMillis)
        // Forget old entries now and then so the map stays small.
        if (lastConfirmed.size > 10_000) lastConfirmed.delete(lastConfirmed.keys().next().value!)
        const row = yield* ledger.get(taskKey)
        if (Option.isSome(row) && row.value.state === "ambiguous") {
          // Only a callback that names the task, borne out by the provider, resolves an ambiguous submit.
          const resolved = claimedRemoteId === undefined ? false : yield* resolveAmbiguous(row.value, claimedRemoteId)
          if (!resolved) return "refused" as const
        }
        yield* client.refresh(taskKey)
        return "confirmed" as const
      }).pipe(
        Effect.orElseSucceed(() => "failed" as const),
        Effect.tap((outcome) => Effect.sync(() => options.onConfirmation?.(taskKey, outcome))),
        Effect.asVoid,
        Effect.withSpan("reelkit.callback.confirm", { attributes: { "reelkit.task_key": taskKey } })
      )

    const handle = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const params = yield* HttpRouter.params
      const taskKey = params.taskKey ?? ""
      if (!verifyToken(config.secret, taskKey, params.token ?? "")) return answer(taskKey, "unauthorized")
      const body = yield* readCapped(request, maxBodyBytes)
      if (Option.isNone(body)) return answer(taskKey, "too-large")
      if (body.value._tag === "Unreadable") return answer(taskKey, "unreadable")
      // A body that is not JSON is refused here, before the ledger or the provider see it.
      const json = parseJson(body.value.text)
      if (json === unparsable) return answer(taskKey, "unreadable")
      const verify = client.provider.verifyCallback
      if (verify !== undefined) {
        // A signed provider's delivery must also carry its signature; a replay of a genuine one is a duplicate.
        const delivery = {
          method: request.method,
          url: urlFor(config, taskKey),
          headers: request.headers,
          body: body.value.text
        }
        const verdict = yield* Effect.either(verify(delivery))
        if (verdict._tag === "Left") {
          return verdict.left.reason === "replayed" ? answer(taskKey, "duplicate") : answer(taskKey, "unauthorized")
        }
      }
      // A confirmation already pending for this task takes this delivery in: a replay costs no ledger read.
      if (yield* FiberMap.has(confirmations, taskKey)) return answer(taskKey, "duplicate")
      const row = yield* Effect.orElseSucceed(ledger.get(taskKey), () => Option.none())
      if (Option.isNone(row)) return answer(taskKey, "unknown-task")
      // Nothing a callback says can change a finished task: no status request for it.
      if (isTerminal(row.value.state) && row.value.state !== "ambiguous") return answer(taskKey, "duplicate")
      const hint = yield* parseHint(client, json)
      yield* FiberMap.run(
        confirmations,
        taskKey,
        confirm(taskKey, Option.getOrUndefined(Option.map(hint, (value) => value.remoteTaskId))),
        { onlyIfMissing: true }
      )
      return answer(taskKey, "accepted")
    })

    return HttpRouter.empty.pipe(HttpRouter.post(routePath, handle))
  })

/** How far a provider's clock may be from ours when a callback's remote task is matched to an ambiguous submit. */
const clockSkewMillis = 5 * 60_000

// The answers are a handful of fixed bodies: built once, never serialized per delivery.
const statusOf: Record<Outcome, number> = {
  accepted: 200,
  duplicate: 200,
  unauthorized: 401,
  "too-large": 413,
  unreadable: 400,
  "unknown-task": 404
}
const answers = Object.fromEntries(
  Object.entries(statusOf).map(([outcome, status]) => [
    outcome,
    HttpServerResponse.text(JSON.stringify({ outcome }), { status, contentType: "application/json" })
  ])
) as Record<Outcome, HttpServerResponse.HttpServerResponse>

const unparsable: unique symbol = Symbol("unparsable")
/** The body as JSON, or `unparsable`: a plain try, as the rejection path should cost nothing. */
const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return unparsable
  }
}

const parseHint = (client: TaskClient["Type"], json: unknown) => {
  const parse = client.provider.parseCallback
  return parse === undefined ? Effect.succeedNone : Effect.option(parse(json))
}

/** Serves the callback router on the `HttpServer` in context (e.g. `NodeHttpServer.layer(createServer, { port })`). */
export const layerServe = (
  options: HandlerOptions = {}
): Layer.Layer<never, never, CallbackConfig | TaskClient | TaskLedger | AccountLimits | HttpServer.HttpServer> =>
  Layer.unwrapScoped(Effect.map(makeRouter(options), (router) => HttpServer.serve(router)))

/** The callback configuration as a layer. */
export const layerConfig = (config: Config): Layer.Layer<CallbackConfig> => Layer.succeed(CallbackConfig, config)

export { CallbackConfig, type Config } from "./CallbackUrls.js"
