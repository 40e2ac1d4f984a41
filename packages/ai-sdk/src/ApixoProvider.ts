/**
 * The apixo provider for the Vercel AI SDK, after the SDK's own provider conventions:
 * `createApixo(settings)` returns a provider whose `video(id)` / `videoModel(id)` give
 * `Experimental_VideoModelV4`s, and `apixo` is a default instance keyed from `APIXO_API_KEY`.
 *
 * @since 0.1.0
 */
import {
  type EmbeddingModelV4,
  type ImageModelV4,
  type LanguageModelV4,
  LoadAPIKeyError,
  NoSuchModelError,
  type ProviderV4
} from "@ai-sdk/provider"
import type { AccountLimits, TaskClient, TaskLedger } from "@reelkit/core"
import type * as Layer from "effect/Layer"
import * as ApixoVideoModel from "./ApixoVideoModel.js"
import type { ApixoVideoModelId } from "./ApixoVideoOptions.js"
import { isServed } from "./internal/models.js"
import * as Runtime from "./internal/runtime.js"

/** apixo's production base URL. */
export const defaultBaseURL = "https://api.apixo.ai"

/** Settings of `createApixo`. Every field is optional. */
export interface ApixoProviderSettings {
  /** The apixo API key; default the `APIXO_API_KEY` environment variable, read on the first call. */
  readonly apiKey?: string | undefined
  /** Default `https://api.apixo.ai`. */
  readonly baseURL?: string | undefined
  /** Extra headers sent with every apixo request. */
  readonly headers?: Record<string, string> | undefined
  /** A `fetch` to send requests with (a middleware, a proxy, a test double); default the global one. */
  readonly fetch?: typeof globalThis.fetch | undefined
  /**
   * The reelkit ledger every start is recorded in: a `TaskLedger` service (shared as it is) or a
   * layer (e.g. `SqliteLedger.layer` from `@reelkit/storage`, built once by this provider). Default
   * an in-memory ledger of this provider instance.
   */
  readonly ledger?: TaskLedger.Service | Layer.Layer<TaskLedger.TaskLedger, unknown> | undefined
  /**
   * The account budget (requests per minute, concurrent tasks) every request takes from: an
   * `AccountLimits` service shared with the rest of your reelkit code, or a layer. Default an
   * in-memory budget of this instance with apixo's limits (60 requests a minute, 10 tasks).
   */
  readonly limits?: AccountLimits.Service | Layer.Layer<AccountLimits.AccountLimits, unknown> | undefined
  /** Options of the reelkit `TaskClient` behind each model (retry schedule, leases, ...). */
  readonly taskClient?: TaskClient.Options | undefined
  /**
   * Hold one of the account's concurrent-task slots from a task's start until this instance sees
   * it finish (default false: only while its submit is sent). Only for instances that follow
   * every task they start to its end, as `experimental_generateVideo` does: a task checked in
   * another process would keep this instance's slot.
   */
  readonly holdTaskSlots?: boolean | undefined
}

/** The apixo provider: video models, and `NoSuchModelError` for every other kind. */
export interface ApixoProvider extends ProviderV4 {
  /** A video model. */
  (modelId: ApixoVideoModelId): ApixoVideoModel.ApixoVideoModel
  /** A video model. */
  video(modelId: ApixoVideoModelId): ApixoVideoModel.ApixoVideoModel
  /** A video model. */
  videoModel(modelId: ApixoVideoModelId): ApixoVideoModel.ApixoVideoModel
  /** Stops this instance's reelkit runtime (its ledger and budget, when it built them). */
  close(): Promise<void>
}

const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, "")

const loadApiKey = (apiKey: string | undefined) => (): string => {
  if (apiKey !== undefined) return apiKey
  const fromEnvironment = typeof process === "undefined" ? undefined : process.env.APIXO_API_KEY
  if (fromEnvironment === undefined || fromEnvironment === "") {
    throw new LoadAPIKeyError({
      message: "apixo API key is missing. Pass it using the 'apiKey' setting or the APIXO_API_KEY environment variable."
    })
  }
  return fromEnvironment
}

/** Creates an apixo provider. Nothing is read or built until its first call. */
export const createApixo = (settings: ApixoProviderSettings = {}): ApixoProvider => {
  const baseURL = withoutTrailingSlash(settings.baseURL ?? defaultBaseURL)
  const runtime = Runtime.make({
    loadApiKey: loadApiKey(settings.apiKey),
    baseURL,
    headers: settings.headers,
    fetch: settings.fetch,
    ledger: settings.ledger,
    limits: settings.limits,
    taskClient: settings.taskClient,
    holdTaskSlots: settings.holdTaskSlots
  })
  const models = new Map<string, ApixoVideoModel.ApixoVideoModel>()
  const videoModel = (modelId: ApixoVideoModelId): ApixoVideoModel.ApixoVideoModel => {
    if (!isServed(modelId)) throw new NoSuchModelError({ modelId, modelType: "videoModel" })
    let model = models.get(modelId)
    if (model === undefined) {
      model = ApixoVideoModel.make(modelId, { runtime, baseURL })
      models.set(modelId, model)
    }
    return model
  }
  const provider = (modelId: ApixoVideoModelId) => videoModel(modelId)
  return Object.assign(provider, {
    specificationVersion: "v4" as const,
    video: videoModel,
    videoModel,
    languageModel: (modelId: string): LanguageModelV4 => {
      throw new NoSuchModelError({ modelId, modelType: "languageModel" })
    },
    embeddingModel: (modelId: string): EmbeddingModelV4 => {
      throw new NoSuchModelError({ modelId, modelType: "embeddingModel" })
    },
    imageModel: (modelId: string): ImageModelV4 => {
      throw new NoSuchModelError({ modelId, modelType: "imageModel" })
    },
    close: () => runtime.dispose()
  })
}

/** The default apixo provider, keyed from `APIXO_API_KEY`. */
export const apixo: ApixoProvider = createApixo()
