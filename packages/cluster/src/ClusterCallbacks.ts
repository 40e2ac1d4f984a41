/**
 * The cluster's callback handler: `POST /cluster/callbacks/:token/:signature`. The token is the
 * execution's `DurableDeferred` token (not a secret); the signature (HMAC-SHA256 under the callback
 * secret) proves we made the URL, and is checked before the token is even parsed. The body is a
 * hint only: the provider's own status is asked (spending the shared budget) and applied to the
 * ledger, and a finished task's wait is completed. Serve it on any runner (or a client-only
 * process): a completion for an execution whose runner is dead is stored and consumed after
 * failover.
 *
 * @since 0.3.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import { AccountLimits, ResultStorage, TaskLedger, TaskProvider, TaskState } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { GenerationConfig, verifyCallback } from "./GenerationConfig.js"
import { GenerationWorkflow, taskKeyOf } from "./GenerationWorkflow.js"
import { clusterOwner, finishedRemotely, observe } from "./internal/steps.js"

/** What happened to one delivery. */
export type Outcome =
  | "accepted"
  | "duplicate"
  | "unauthorized"
  | "unreadable"
  | "unknown-task"
  | "too-large"
  | "not-yet"

/** Options of the handler. */
export interface Options {
  /** Called after each delivery is answered, and after its confirmation (for logs and tests). */
  readonly onDelivery?: ((taskKey: string, outcome: Outcome) => void) | undefined
  readonly onConfirmation?: ((taskKey: string, outcome: "confirmed" | "refused" | "failed") => void) | undefined
}

/** The route the handler serves: `/cluster/callbacks/<token>/<signature>`. */
export const routePath = "/cluster/callbacks/*"

// A deferred token is longer than the router's longest path parameter (100 characters), so the two
// segments are read from the path itself.
const segmentsOf = (url: string): { readonly token: string; readonly signature: string } => {
  const path = url.split("?")[0] ?? ""
  const [token = "", signature = "", ...rest] = path.slice("/cluster/callbacks/".length).split("/")
  return rest.length === 0 ? { token, signature } : { token: "", signature: "" }
}

const maxBodyBytes = 64 * 1024

const decodeToken = Schema.decodeUnknownOption(DurableDeferred.TokenParsed.FromString)

/** Builds the callback router. */
export const makeRouter = (
  options: Options = {}
): Effect.Effect<
  HttpRouter.HttpRouter,
  never,
  | GenerationConfig
  | TaskLedger.TaskLedger
  | TaskProvider.TaskProvider
  | AccountLimits.AccountLimits
  | ResultStorage.ResultStorage
  | WorkflowEngine
  | Scope.Scope
> =>
  Effect.gen(function* () {
    const settings = yield* GenerationConfig
    const ledger = yield* TaskLedger.TaskLedger
    const provider = yield* TaskProvider.TaskProvider
    const limits = yield* AccountLimits.AccountLimits
    const context = yield* Effect.context<
      | GenerationConfig
      | TaskLedger.TaskLedger
      | TaskProvider.TaskProvider
      | ResultStorage.ResultStorage
      | WorkflowEngine
    >()
    const confirmations = yield* FiberMap.make<string>()

    const answer = (taskKey: string, outcome: Outcome, status: number) => {
      options.onDelivery?.(taskKey, outcome)
      return HttpServerResponse.unsafeJson({ outcome }, { status })
    }

    // An ambiguous row is resolved only by a callback naming a remote task no other row has, borne
    // out by the provider's own status asked with our key.
    const confirm = (taskKey: string, claimedRemoteId: string | undefined) =>
      Effect.gen(function* () {
        const found = yield* ledger.get(taskKey)
        if (Option.isNone(found)) return "failed" as const
        let row = found.value
        if (row.state === "ambiguous") {
          if (claimedRemoteId === undefined) return "refused" as const
          const holder = yield* ledger.findByRemoteId(claimedRemoteId)
          if (Option.isSome(holder) && holder.value.taskKey !== taskKey) return "refused" as const
          yield* limits.takeRequest
          const status = yield* provider.status(claimedRemoteId)
          row = yield* ledger.transition(TaskLedger.fence(row, clusterOwner), {
            state: "submitted",
            remoteTaskId: claimedRemoteId,
            submittedAt: status.remoteCreatedAt ?? row.updatedAt,
            failCode: null,
            failMessage: null
          })
          yield* observe(row, status)
          return "confirmed" as const
        }
        if (row.remoteTaskId === undefined) return "refused" as const
        yield* limits.takeRequest
        const status = yield* provider.status(row.remoteTaskId)
        yield* observe(row, status)
        return "confirmed" as const
      }).pipe(
        Effect.provide(context),
        Effect.orElseSucceed(() => "failed" as const),
        Effect.tap((outcome) => Effect.sync(() => options.onConfirmation?.(taskKey, outcome)))
      )

    const parseHint = (text: string) => {
      const parse = provider.parseCallback
      if (parse === undefined) return Effect.succeed(undefined)
      return Effect.try(() => JSON.parse(text) as unknown).pipe(
        Effect.flatMap(parse),
        Effect.map((hint) => hint.remoteTaskId),
        Effect.orElseSucceed(() => undefined)
      )
    }

    const handle = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const { signature, token } = segmentsOf(request.url)
      const config = settings.callbacks
      // The signature first: a token we did not sign is never parsed.
      if (config === undefined || !verifyCallback(config, token, signature)) {
        return answer("", "unauthorized", 401)
      }
      const parsed = decodeToken(token)
      if (Option.isNone(parsed) || parsed.value.workflowName !== GenerationWorkflow.name) {
        return answer("", "unknown-task", 404)
      }
      const taskKey = taskKeyOf(parsed.value.executionId)
      const declared = Number(request.headers["content-length"] ?? "0")
      if (declared > maxBodyBytes) return answer(taskKey, "too-large", 413)
      const text = yield* request.text.pipe(Effect.option)
      if (Option.isNone(text) || text.value.length > maxBodyBytes) return answer(taskKey, "unreadable", 400)
      const row = yield* ledger.get(taskKey).pipe(Effect.orElseSucceed(() => Option.none()))
      if (Option.isNone(row)) return answer(taskKey, "unknown-task", 404)
      if (finishedRemotely(row.value) && row.value.state !== "ambiguous") return answer(taskKey, "duplicate", 200)
      if (TaskState.submitStates.includes(row.value.state)) {
        // Caught sending by a runner that is gone (its lease expired): it is ambiguous now, and
        // this callback may be what resolves it. Otherwise the submit's answer is not recorded
        // yet: ask the provider to deliver again later.
        const now = yield* Clock.currentTimeMillis
        const judged =
          TaskState.recoveryOf(row.value, clusterOwner, now)._tag === "MarkAmbiguous"
            ? yield* ledger
                .transition(TaskLedger.fence(row.value, clusterOwner), {
                  state: "ambiguous",
                  failCode: "SubmitOutcomeUnknown",
                  failMessage: "the runner stopped while the submit was in flight; it was not re-sent",
                  leaseOwner: null,
                  leaseExpiresAt: null
                })
                .pipe(Effect.option)
            : Option.none()
        if (Option.isNone(judged)) return answer(taskKey, "not-yet", 503)
      }
      if (yield* FiberMap.has(confirmations, taskKey)) return answer(taskKey, "duplicate", 200)
      const claimed = yield* parseHint(text.value)
      yield* FiberMap.run(confirmations, taskKey, confirm(taskKey, claimed), { onlyIfMissing: true })
      return answer(taskKey, "accepted", 200)
    })

    return HttpRouter.empty.pipe(HttpRouter.post(routePath, handle))
  })

/** Serves the callback router on the `HttpServer` in context. */
export const layerServe = (
  options: Options = {}
): Layer.Layer<
  never,
  never,
  | GenerationConfig
  | TaskLedger.TaskLedger
  | TaskProvider.TaskProvider
  | AccountLimits.AccountLimits
  | ResultStorage.ResultStorage
  | WorkflowEngine
  | HttpServer.HttpServer
> => Layer.unwrapScoped(Effect.map(makeRouter(options), (router) => HttpServer.serve(router)))
