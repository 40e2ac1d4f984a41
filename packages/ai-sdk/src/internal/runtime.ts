// All of reelkit's wiring for one provider instance, in one place: the HTTP client (the caller's
// `fetch` and headers), the apixo client, the ledger and the account budget (the caller's, or
// in-memory ones of this instance), and one `TaskClient` per model, run by one `ManagedRuntime`.
// The AI SDK calls plain async functions; they enter Effect here and nowhere else.
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Apixo, ApixoModel } from "@reelkit/apixo"
import { AccountLimits, CallbackUrls, ResultStorage, TaskClient, type TaskHandle, TaskLedger } from "@reelkit/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import type { ReelkitError } from "./errors.js"
import { models } from "./models.js"

/** A service given as it is (shared with whoever else holds it), or a layer this instance builds once. */
export type ServiceOrLayer<I, S> = S | Layer.Layer<I, unknown>

/** What the wiring needs from the provider's settings. */
export interface RuntimeSettings {
  /** Reads the API key when the runtime is first needed; throws when there is none. */
  readonly loadApiKey: () => string
  readonly baseURL: string
  readonly headers?: Record<string, string> | undefined
  readonly fetch?: typeof globalThis.fetch | undefined
  readonly ledger?: ServiceOrLayer<TaskLedger.TaskLedger, TaskLedger.Service> | undefined
  readonly limits?: ServiceOrLayer<AccountLimits.AccountLimits, AccountLimits.Service> | undefined
  readonly taskClient?: TaskClient.Options | undefined
  readonly holdTaskSlots?: boolean | undefined
}

/** The `TaskClient` of each model of this provider instance. */
class ModelClients extends Context.Tag("@reelkit/ai-sdk/ModelClients")<
  ModelClients,
  ReadonlyMap<string, TaskClient.Service>
>() {}

/**
 * How long a task holds one of the account's concurrent-task slots. By default only while its
 * submit is being sent: a task started here may be followed in another process, which cannot give
 * this process's slot back (a slot belongs to the process that took it), so ten such starts would
 * block the eleventh for ever. apixo itself refuses an eleventh running task with a 429, which is
 * retried like any other. With `holdTaskSlots`, from the start until this instance sees it finish.
 */
class SlotPolicy extends Context.Tag("@reelkit/ai-sdk/SlotPolicy")<
  SlotPolicy,
  { readonly holdUntilFinished: boolean }
>() {}

/** What the effects run here may use. */
export type Services = ModelClients | TaskLedger.TaskLedger | AccountLimits.AccountLimits | SlotPolicy

/** One provider instance's runtime, built on first use. */
export interface Runtime {
  readonly run: <A>(
    effect: Effect.Effect<A, ReelkitError, Services>,
    signal?: AbortSignal | undefined
  ) => Promise<Exit.Exit<A, ReelkitError>>
  readonly dispose: () => Promise<void>
}

const serviceLayer = <I, S>(
  tag: Context.Tag<I, S>,
  given: ServiceOrLayer<I, S> | undefined,
  fallback: Layer.Layer<I>
): Layer.Layer<I, unknown> =>
  given === undefined
    ? fallback
    : Layer.isLayer(given)
      ? (given as Layer.Layer<I, unknown>)
      : Layer.succeed(tag, given as S)

const httpClientLayer = (settings: RuntimeSettings): Layer.Layer<HttpClient.HttpClient> => {
  const fetchLayer =
    settings.fetch === undefined
      ? FetchHttpClient.layer
      : FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.Fetch, settings.fetch)))
  const headers = settings.headers
  if (headers === undefined) return fetchLayer
  return Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, HttpClient.mapRequest(HttpClientRequest.setHeaders(headers)))
  ).pipe(Layer.provide(fetchLayer))
}

// Each model's client is `TaskClient.layer` over the model's `TaskProvider`; every other service
// the client needs comes from `base` in `makeLayer`, so a client that needs more is wired there.
const modelClientsLayer = (options: TaskClient.Options | undefined) =>
  Layer.scoped(
    ModelClients,
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const clients = new Map<string, TaskClient.Service>()
      for (const { definition } of Object.values(models)) {
        const context = yield* Layer.buildWithScope(
          TaskClient.layer(options).pipe(
            Layer.provide(ApixoModel.layer(definition)),
            // The SDK hands over its own webhook URL per call; results are the SDK's to download.
            Layer.provide(Layer.merge(ResultStorage.layerNone, CallbackUrls.layerNone))
          ),
          scope
        )
        clients.set(definition.modelId, Context.get(context, TaskClient.TaskClient))
      }
      return clients
    })
  )

const makeLayer = (settings: RuntimeSettings) => {
  const apixo = Apixo.layer({ apiKey: Redacted.make(settings.loadApiKey()), baseUrl: settings.baseURL }).pipe(
    Layer.provide(httpClientLayer(settings))
  )
  const base = Layer.mergeAll(
    apixo,
    serviceLayer(TaskLedger.TaskLedger, settings.ledger, TaskLedger.layerMemory),
    serviceLayer(AccountLimits.AccountLimits, settings.limits, AccountLimits.layerMemory()),
    Layer.succeed(SlotPolicy, { holdUntilFinished: settings.holdTaskSlots === true })
  )
  // A layer that cannot be built (a ledger that cannot open its file) is a defect of every call.
  return modelClientsLayer(settings.taskClient).pipe(Layer.provideMerge(base), Layer.orDie)
}

/** The runtime of one provider instance. The key is read, and the layers built, on the first call. */
export const make = (settings: RuntimeSettings): Runtime => {
  let runtime: ManagedRuntime.ManagedRuntime<Services, never> | undefined
  return {
    run: (effect, signal) => {
      runtime ??= ManagedRuntime.make(makeLayer(settings))
      return runtime.runPromiseExit(effect, signal === undefined ? undefined : { signal })
    },
    dispose: async () => {
      await runtime?.dispose()
    }
  }
}

/** The `TaskClient` of a model. */
const clientFor = (modelId: string): Effect.Effect<TaskClient.Service, never, ModelClients> =>
  Effect.map(ModelClients, (clients) => clients.get(modelId)!)

/** Starts a task of a model through its `TaskClient`: checked, recorded, sent once. */
export const startTask = (
  modelId: string,
  input: unknown,
  options: TaskClient.StartOptions
): Effect.Effect<TaskHandle.TaskHandle, ReelkitError, Services> =>
  Effect.gen(function* () {
    const handle = yield* (yield* clientFor(modelId)).start(input, options)
    if (!(yield* SlotPolicy).holdUntilFinished) {
      yield* (yield* AccountLimits.AccountLimits).releaseTaskSlot(handle.taskKey)
    }
    return handle
  })

/**
 * The ledger row of a task, asking apixo for its status first when it is in flight. A handle this
 * ledger has never seen (a start made by another process with its own ledger) is recorded first,
 * as `TaskClient.resume` would, so the status is applied and the account budget spent as usual.
 */
export const refreshTask = (
  handle: TaskHandle.TaskHandle
): Effect.Effect<TaskLedger.TaskRecord, ReelkitError, Services> =>
  Effect.gen(function* () {
    const client = yield* clientFor(handle.modelId)
    return yield* client
      .refresh(handle)
      .pipe(Effect.catchTag("UnknownTask", () => Effect.zipRight(adopt(handle), client.refresh(handle))))
  })

const adopt = (handle: TaskHandle.TaskHandle) =>
  Effect.gen(function* () {
    const ledger = yield* TaskLedger.TaskLedger
    yield* ledger
      .create({
        taskKey: handle.taskKey,
        providerId: handle.providerId,
        modelId: handle.modelId,
        input: null,
        state: "submitted",
        remoteTaskId: handle.remoteTaskId,
        submittedAt: handle.submittedAt
      })
      .pipe(
        // Without an idempotency key there is nothing to conflict with.
        Effect.catchTag("IdempotencyConflict", (error) => Effect.die(error)),
        // The remote id is recorded already (under this key or another): that row serves.
        Effect.catchTag("DuplicateRemoteId", () => Effect.succeed({ _tag: "Existing" as const })),
        // A concurrent status check of the same handle recorded it first: its row serves both.
        Effect.catchTag("LedgerError", (error) =>
          Effect.flatMap(ledger.get(handle.taskKey), (row) =>
            row._tag === "Some" ? Effect.succeed({ _tag: "Existing" as const }) : Effect.fail(error)
          )
        )
      )
  })
