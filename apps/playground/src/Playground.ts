/**
 * Wires reelkit's real layers for the playground: the chosen pair's provider (`Registry`; on an
 * in-process fake server when the pair's key is not set), the SQLite ledger, the account's shared
 * budget (limits and spend cap, in the ledger's file) and the file-system store under
 * `REELKIT_HOME`, and one `TaskClient` over them; for `serve`, one client per registry entry over
 * the same ledger and store (`Pairs`).
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import {
  AccountLimits,
  type ArtifactStore,
  CallbackUrls,
  ResultStorage,
  TaskClient,
  TaskError,
  type TaskLedger,
  type TaskProvider
} from "@reelkit/core"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as FileSystemStore from "@reelkit/storage/FileSystemStore"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Budget from "./Budget.js"
import * as Registry from "./Registry.js"
import * as Settings from "./Settings.js"
import { ledgerLayer, type Settings as SettingsOf, storeRoot } from "./Settings.js"
import * as Telemetry from "./Telemetry.js"

// The settings, the paths under REELKIT_HOME and the ledger alone live in Settings.ts, so commands
// that need only those (list, --help) load none of the rest of the wiring.
export { type Settings, artifactPath, ledgerFile, ledgerLayer, settings, storeRoot } from "./Settings.js"

/** Where the work goes: the pair's service itself, or its in-process fake. */
export type Backend =
  | { readonly _tag: "Live"; readonly baseUrl: string }
  | { readonly _tag: "Fake"; readonly baseUrl: string }

/** What the commands need to know about the wiring. */
export interface Service {
  readonly settings: SettingsOf
  /** The (model, transport) pair this client drives. */
  readonly entry: Registry.Entry
  readonly backend: Backend
  /** The file-system store's root; an artifact's file is `<storeRoot>/<key>`. */
  readonly storeRoot: string
  /** The default poll plan of this backend (flags override it per call). */
  readonly pollPlan: TaskProvider.PollPlan
}

/** The wiring, as a service. */
export class Playground extends Context.Tag("@reelkit/playground/Playground")<Playground, Service>() {}

/** One pair's client beside the others (`serve` runs one per registry entry). */
export interface Pair extends Service {
  readonly client: TaskClient.Service
  /** The budget this pair's client spends (its account's). */
  readonly limits: AccountLimits.AccountLimits["Type"]
  /**
   * Where this pair's callbacks arrive when it is not the command's own pair: its callback URLs
   * are `<REELKIT_PUBLIC_URL><prefix>/callbacks/:taskKey/:token` (under `/callbacks/`, so the
   * server treats them as callbacks). Undefined for the command's own pair (the root route).
   */
  readonly callbackPrefix?: string | undefined
}

/** The path prefix of a pair's callbacks beside the command's own pair's. */
export const callbackPrefixOf = (entry: Registry.Entry): `/${string}` => `/callbacks/via/${entry.transport}`

/** Every pair's client, in registry order (the command's own pair is also the context's `TaskClient`). */
export class Pairs extends Context.Tag("@reelkit/playground/Pairs")<Pairs, ReadonlyArray<Pair>>() {}

/**
 * The fakes' timings: a task is processing after 1 s and done after 3 s, so the README's main job
 * finishes in seconds; the poll plan matches (first poll after 1 s, then every second).
 */
export const fakeTimings = { processingAfter: Duration.seconds(1), completeAfter: Duration.seconds(3) }

/** The poll plan used against a fake. */
export const fakePollPlan: TaskProvider.PollPlan = {
  firstPollAfter: Duration.seconds(1),
  interval: Duration.seconds(1),
  deadline: Duration.minutes(2)
}

/** Errors of building the wiring. */
export type StartupError =
  | TaskError.LedgerError
  | ArtifactStore.ArtifactStoreError
  | Registry.FakeStartError
  | ConfigError.ConfigError

/** Options of the full wiring. */
export interface LayerOptions {
  /** Give every submitted task of the command's own pair a verified callback URL (only `serve` receives callbacks). */
  readonly useCallbacks?: boolean | undefined
  /** Build a client for every registry entry too (`Pairs`), for `serve`'s form. */
  readonly allPairs?: boolean | undefined
  /** Called once per fake started, with its pair and URL (to say so). */
  readonly onFakeStarted?: ((entry: Registry.Entry, url: string) => void) | undefined
}

/** Everything a command needs: the client, its ledger and store, and the wiring facts. */
export type Services =
  | Playground
  | Pairs
  | TaskClient.TaskClient
  | TaskLedger.TaskLedger
  | ArtifactStore.ArtifactStore
  | TaskProvider.TaskProvider
  | AccountLimits.AccountLimits

// What every pair shares: the ledger, the artifact store, result storage and the HTTP client.
type Shared = TaskLedger.TaskLedger | ArtifactStore.ArtifactStore | ResultStorage.ResultStorage | HttpClient.HttpClient

/** One pair's client layer over the shared parts: its provider (or its fake), its account's budget. */
const pairLayer = (
  settings: SettingsOf,
  useCallbacks: boolean,
  options: LayerOptions
): Effect.Effect<
  {
    readonly layer: Layer.Layer<
      TaskClient.TaskClient | TaskProvider.TaskProvider | AccountLimits.AccountLimits | Playground,
      TaskError.LedgerError | ConfigError.ConfigError,
      Shared
    >
    readonly service: Service
  },
  Registry.FakeStartError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const entry = settings.entry
    const wiring = yield* Effect.promise(entry.load)
    const backend = yield* backendFor(settings, wiring, options)
    const pollPlan = backend.fake ? fakePollPlan : wiring.pollPlan
    // One budget per account (transport and key), in the ledger's file: every process using this
    // key on this home spends it; another transport's client spends its own.
    const account = { entry, apiKey: Redacted.value(backend.apiKey) }
    const service: Service = {
      settings,
      entry,
      backend: { _tag: backend.fake ? "Fake" : "Live", baseUrl: backend.baseUrl },
      storeRoot: storeRoot(settings.home),
      pollPlan
    }
    const base = Layer.mergeAll(
      wiring.provider({ apiKey: backend.apiKey, baseUrl: backend.baseUrl, pollPlan }),
      Budget.limitsLayer(settings.home, account),
      Budget.spendCapLayer(settings.home, account, settings.pricing, wiring.priceOf),
      // Callback URLs are a capability of their own: only `serve` receives callbacks.
      useCallbacks && Option.isSome(settings.callbacks)
        ? CallbackUrls.layer(settings.callbacks.value).pipe(Layer.orDie)
        : CallbackUrls.layerNone
    )
    return {
      layer: Layer.mergeAll(TaskClient.layer().pipe(Layer.provideMerge(base)), Layer.succeed(Playground, service)),
      service
    }
  })

/** Builds the wiring from the settings. Scoped: the fakes, the database and the HTTP pool close with it. */
export const layer = (settings: SettingsOf, options: LayerOptions = {}): Layer.Layer<Services, StartupError> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const shared = ledgerLayer(settings.home).pipe(
        // Outputs are downloaded with the plain HTTP client into the file store, before their URLs expire.
        Layer.provideMerge(ResultStorage.layer()),
        Layer.provideMerge(
          Layer.merge(FileSystemStore.layer({ root: storeRoot(settings.home) }), NodeHttpClient.layerUndici)
        )
      )
      const own = yield* pairLayer(settings, options.useCallbacks === true, options)
      if (options.allPairs !== true) {
        return own.layer.pipe(
          Layer.provideMerge(shared),
          Layer.map((context) =>
            Context.add(context, Pairs, [
              {
                ...own.service,
                client: Context.get(context, TaskClient.TaskClient),
                limits: Context.get(context, AccountLimits.AccountLimits)
              }
            ])
          )
        )
      }
      // `serve`: one client per registry entry over the same ledger and store. The command's
      // own pair receives callbacks on the root route; every other pair under its own prefix
      // (a callback route answers for one client).
      const others = yield* Effect.forEach(
        Registry.entries.filter((entry) => entry !== settings.entry),
        (entry) =>
          Effect.flatMap(Settings.settingsFor(entry), (other) =>
            pairLayer(
              {
                ...other,
                home: settings.home,
                callbacks: Option.map(settings.callbacks, (config) => ({
                  ...config,
                  publicBaseUrl: `${config.publicBaseUrl.replace(/\/+$/, "")}${callbackPrefixOf(entry)}`
                }))
              },
              options.useCallbacks === true,
              options
            )
          )
      )
      return Layer.unwrapScoped(
        Effect.gen(function* () {
          const sharedContext = yield* Layer.build(shared)
          const ownContext = yield* Layer.build(Layer.provide(own.layer, Layer.succeedContext(sharedContext)))
          const pairs: Array<Pair> = []
          for (const entry of Registry.entries) {
            if (entry === settings.entry) {
              pairs.push({
                ...own.service,
                client: Context.get(ownContext, TaskClient.TaskClient),
                limits: Context.get(ownContext, AccountLimits.AccountLimits)
              })
              continue
            }
            const other = others.find((candidate) => candidate.service.entry === entry)!
            const context = yield* Layer.build(Layer.provide(other.layer, Layer.succeedContext(sharedContext)))
            pairs.push({
              ...other.service,
              client: Context.get(context, TaskClient.TaskClient),
              limits: Context.get(context, AccountLimits.AccountLimits),
              callbackPrefix: callbackPrefixOf(entry)
            })
          }
          return Layer.succeedContext(Context.add(Context.merge(sharedContext, ownContext), Pairs, pairs))
        })
      )
    })
  ).pipe(
    // Built first, so the tracer is in place before the client forks its background fibers.
    Layer.provide(Telemetry.layerTracing)
  )

// With the pair's key: its service (or its base URL override). Without: the transport's fake on
// loopback, in this process, which also answers for the tasks of earlier runs' fakes.
const backendFor = (settings: SettingsOf, wiring: Registry.Wiring, options: LayerOptions) =>
  Effect.gen(function* () {
    if (Option.isSome(settings.apiKey)) {
      return {
        fake: false,
        apiKey: settings.apiKey.value,
        baseUrl: Option.getOrElse(settings.baseUrl, () => settings.entry.defaultBaseUrl)
      }
    }
    // Each run starts its own fake; it answers for tasks an earlier run submitted
    // (`generate --no-wait`, then `wait`, `status`, `cancel` or `reconcile` in another process).
    const fake = yield* wiring.startFake(fakeTimings)
    options.onFakeStarted?.(settings.entry, fake.url)
    return { fake: true, apiKey: fake.apiKey, baseUrl: fake.url }
  })
