/**
 * Wires reelkit's real layers for the playground: the Vidu Q3 provider on apixo (or on an
 * in-process fake apixo server when no API key is set), the SQLite ledger, the shared account
 * budget (limits and spend cap, in the ledger's file) and the file-system store under
 * `REELKIT_HOME`, and one `TaskClient` over them.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import {
  type AccountLimits,
  type ArtifactStore,
  CallbackUrls,
  ResultStorage,
  TaskClient,
  TaskError,
  type TaskLedger,
  type TaskProvider
} from "@reelkit/core"
import { ViduQ3, ViduQ3Input } from "@reelkit/provider-vidu-q3"
import * as FileSystemStore from "@reelkit/storage/FileSystemStore"
import { FakeApixo } from "@reelkit/testing"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Budget from "./Budget.js"
import { ledgerLayer, type Settings, storeRoot } from "./Settings.js"
import * as Telemetry from "./Telemetry.js"

// The settings, the paths under REELKIT_HOME and the ledger alone live in Settings.ts, so commands
// that need only those (list, --help) load none of the rest of the wiring.
export { type Settings, artifactPath, ledgerFile, ledgerLayer, settings, storeRoot } from "./Settings.js"

/** Where the work goes: apixo itself, or the in-process fake. */
export type Backend =
  | { readonly _tag: "Apixo"; readonly baseUrl: string }
  | { readonly _tag: "Fake"; readonly baseUrl: string }

/** What the commands need to know about the wiring. */
export interface Service {
  readonly settings: Settings
  readonly backend: Backend
  /** The file-system store's root; an artifact's file is `<storeRoot>/<key>`. */
  readonly storeRoot: string
  /** The default poll plan of this backend (flags override it per call). */
  readonly pollPlan: TaskProvider.PollPlan
}

/** The wiring, as a service. */
export class Playground extends Context.Tag("@reelkit/playground/Playground")<Playground, Service>() {}

/**
 * The fake's timings: a task is processing after 1 s and done after 3 s, so the README's main job
 * finishes in seconds; the poll plan matches (first poll after 1 s, then every second).
 */
export const fakeTimings = { processingAfter: Duration.seconds(1), completeAfter: Duration.seconds(3) }

/** The poll plan used against the fake. */
export const fakePollPlan: TaskProvider.PollPlan = {
  firstPollAfter: Duration.seconds(1),
  interval: Duration.seconds(1),
  deadline: Duration.minutes(2)
}

/** Errors of building the wiring. */
export type StartupError =
  | TaskError.LedgerError
  | ArtifactStore.ArtifactStoreError
  | FakeApixo.FakeApixoError
  | ConfigError.ConfigError

/** Options of the full wiring. */
export interface LayerOptions {
  /** Give every submitted task a verified callback URL (only `serve` receives callbacks). */
  readonly useCallbacks?: boolean | undefined
  /** Called once with the fake's URL when the fake is started (to say so). */
  readonly onFakeStarted?: ((url: string) => void) | undefined
}

/** Everything a command needs: the client, its ledger and store, and the wiring facts. */
export type Services =
  | Playground
  | TaskClient.TaskClient
  | TaskLedger.TaskLedger
  | ArtifactStore.ArtifactStore
  | TaskProvider.TaskProvider
  | AccountLimits.AccountLimits

/** Builds the wiring from the settings. Scoped: the fake server, the database and the HTTP pool close with it. */
export const layer = (settings: Settings, options: LayerOptions = {}): Layer.Layer<Services, StartupError> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const backend = yield* backendFor(settings, options)
      const pollPlan = backend.fake ? fakePollPlan : ViduQ3.pollPlan
      const provider = ViduQ3.layer({
        apiKey: backend.apiKey,
        baseUrl: backend.baseUrl,
        pollPlan
      })
      const root = storeRoot(settings.home)
      const base = Layer.mergeAll(
        provider,
        ledgerLayer(settings.home),
        // One budget for every process on this home (CLI runs and serve), in the ledger's file.
        Budget.limitsLayer(settings.home),
        Budget.spendCapLayer(settings.home, settings.pricing),
        // Callback URLs are a capability of their own: only `serve` receives callbacks.
        options.useCallbacks === true && Option.isSome(settings.callbacks)
          ? CallbackUrls.layer(settings.callbacks.value).pipe(Layer.orDie)
          : CallbackUrls.layerNone
      ).pipe(
        // Outputs are downloaded with the plain HTTP client into the file store, before their URLs expire.
        Layer.provideMerge(ResultStorage.layer()),
        Layer.provideMerge(Layer.merge(FileSystemStore.layer({ root }), NodeHttpClient.layerUndici))
      )
      const playground = Layer.succeed(Playground, {
        settings,
        backend: { _tag: backend.fake ? "Fake" : "Apixo", baseUrl: backend.baseUrl },
        storeRoot: root,
        pollPlan
      })
      return Layer.mergeAll(TaskClient.layer().pipe(Layer.provideMerge(base)), playground)
    })
  ).pipe(
    // Built first, so the tracer is in place before the client forks its background fibers.
    Layer.provide(Telemetry.layerTracing)
  )

// With a key: apixo (or APIXO_BASE_URL). Without: a fake apixo server on loopback, in this process,
// which also answers for the tasks of earlier runs' fakes.
const backendFor = (settings: Settings, options: LayerOptions) =>
  Effect.gen(function* () {
    if (Option.isSome(settings.apiKey)) {
      return {
        fake: false,
        apiKey: settings.apiKey.value,
        baseUrl: Option.getOrElse(settings.baseUrl, () => "https://api.apixo.ai")
      }
    }
    // Each run starts its own fake; recoverTasks lets it answer for tasks an earlier run submitted
    // (`generate --no-wait`, then `wait`, `status` or `reconcile` in another process).
    const fake = yield* FakeApixo.make({
      recoverTasks: true,
      timings: fakeTimings,
      models: { [ViduQ3.modelId]: { inputSchema: ViduQ3Input.ViduQ3Input } }
    })
    options.onFakeStarted?.(fake.url)
    return { fake: true, apiKey: fake.apiKey, baseUrl: fake.url }
  })
