/**
 * The (model, transport) pairs the playground drives, in one place: adding a model or a transport
 * is one entry here. Each entry names its pair, the environment variables of its account (key,
 * base URL, price table), its account limits, and, loaded only when a command talks to it, how to
 * build its provider layer, its fake server (started in the process when the key is absent), its
 * poll plan and its pricing. The command tree reads only the plain data (`--model` and `--transport`
 * choices), so `--help` and `list` load no provider code.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type { TaskProvider } from "@reelkit/core"
import type { ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { createHash } from "node:crypto"

/** How a provider layer reaches its service. */
export interface Connection {
  readonly apiKey: Redacted.Redacted<string>
  readonly baseUrl: string
  readonly pollPlan: TaskProvider.PollPlan
}

/** A fake server of a transport, running in this process. */
export interface RunningFake {
  readonly url: string
  readonly apiKey: Redacted.Redacted<string>
}

/** The heavy half of an entry: provider code and its fake, loaded when a command talks to the pair. */
export interface Wiring {
  /** The provider layer on the real service (or on the fake, given the fake's URL and key). */
  readonly provider: (connection: Connection) => Layer.Layer<TaskProvider.TaskProvider, never, HttpClient.HttpClient>
  /** Starts the transport's fake: it answers for tasks earlier runs' fakes made, too. */
  readonly startFake: (timings: FakeTimings) => Effect.Effect<RunningFake, FakeStartError, Scope.Scope>
  /** The key the fake accepts (what the budget of a run without a key is keyed by). */
  readonly fakeApiKey: string
  /** The provider's own poll plan, used against the real service. */
  readonly pollPlan: TaskProvider.PollPlan
  /** A task's price from the pair's price table, when its input can be priced. */
  readonly priceOf: (input: unknown, table: ViduQ3Pricing.ViduQ3Pricing) => Option.Option<ViduQ3Pricing.Cost>
}

/** When a fake's tasks move on. */
export interface FakeTimings {
  readonly processingAfter: Duration.DurationInput
  readonly completeAfter: Duration.DurationInput
}

/** A fake could not start (either fake's error). */
export interface FakeStartError {
  readonly _tag: "FakeApixoError" | "FakeViduError"
  readonly message: string
}

/** One (model, transport) pair. */
export interface Entry {
  /** `vidu-q3`: reelkit's model id, the same on every transport. */
  readonly model: string
  /** `apixo` or `vidu`: what `--transport` says. */
  readonly transport: string
  /** The ledger's `providerId` of this pair's tasks (which transport a recorded task went to). */
  readonly providerId: string
  /** How the service is named in messages: "apixo", "the official Vidu API". */
  readonly serviceName: string
  /** How its fake is named in messages: "fake apixo", "fake Vidu". */
  readonly fakeName: string
  /** The variable holding the account's key; without it the fake runs in the process. */
  readonly keyVariable: string
  /** The variable overriding the base URL. */
  readonly baseUrlVariable: string
  /** The service's base URL when the variable is unset. */
  readonly defaultBaseUrl: string
  /** The variable holding the pair's price table (JSON, as `ViduQ3Pricing.PricingFromJson` reads it). */
  readonly pricingVariable: string
  /** The account's limits, shared by every process using one key. */
  readonly limits: {
    readonly requestsPerWindow: number
    readonly windowSeconds: number
    readonly concurrentTasks: number
  }
  /** Whether the transport can cancel a running task. */
  readonly cancels: boolean
  /** The provider code and the fake, loaded on first use. */
  readonly load: () => Promise<Wiring>
}

// The provider package and the fakes, loaded together by the first entry that needs them.
const loadModules = () =>
  Promise.all([
    import("@reelkit/provider-vidu-q3"),
    import("@reelkit/testing"),
    import("effect/Effect"),
    import("effect/Option"),
    import("effect/Schema")
  ]).then(([provider, testing, Effect, Option, Schema]) => ({ ...provider, ...testing, Effect, Option, Schema }))

type Modules = Awaited<ReturnType<typeof loadModules>>

// Vidu Q3's price on either transport: the same table shape (tier, resolution, per second).
const viduQ3Price = (modules: Modules): Wiring["priceOf"] => {
  const decode = modules.Schema.decodeUnknownOption(modules.ViduQ3Input.ViduQ3Input)
  return (raw, table) => {
    const input = decode(raw)
    return input._tag === "None" ? modules.Option.none() : modules.ViduQ3Pricing.estimateCost(input.value, table)
  }
}

/** Every pair, the default (`--model vidu-q3 --transport apixo`) first. */
export const entries: ReadonlyArray<Entry> = [
  {
    model: "vidu-q3",
    transport: "apixo",
    providerId: "apixo",
    serviceName: "apixo",
    fakeName: "fake apixo",
    keyVariable: "APIXO_API_KEY",
    baseUrlVariable: "APIXO_BASE_URL",
    defaultBaseUrl: "https://api.apixo.ai",
    pricingVariable: "REELKIT_PRICING",
    // apixo's vidu-q3 page: 60 requests a minute, 10 concurrent tasks.
    limits: { requestsPerWindow: 60, windowSeconds: 60, concurrentTasks: 10 },
    cancels: false,
    load: () =>
      loadModules().then((modules) => ({
        provider: (connection) => modules.ViduQ3.layer(connection),
        startFake: (timings) =>
          modules.FakeApixo.make({
            recoverTasks: true,
            timings,
            models: { [modules.ViduQ3.modelId]: { inputSchema: modules.ViduQ3Input.ViduQ3Input } }
          }).pipe(modules.Effect.map(({ apiKey, url }) => ({ apiKey, url }))),
        fakeApiKey: modules.FakeApixo.defaultApiKey,
        pollPlan: modules.ViduQ3.pollPlan,
        priceOf: viduQ3Price(modules)
      }))
  },
  {
    model: "vidu-q3",
    transport: "vidu",
    providerId: "vidu",
    serviceName: "the official Vidu API",
    fakeName: "fake Vidu",
    keyVariable: "VIDU_API_KEY",
    baseUrlVariable: "VIDU_BASE_URL",
    defaultBaseUrl: "https://api.vidu.com/ent/v2",
    pricingVariable: "REELKIT_VIDU_PRICING",
    // Vidu publishes its limits per plan; these are the fake's (and apixo's) numbers.
    limits: { requestsPerWindow: 60, windowSeconds: 60, concurrentTasks: 10 },
    cancels: true,
    load: () =>
      loadModules().then((modules) => ({
        provider: (connection) => modules.ViduQ3.layerVidu(connection),
        startFake: (timings) =>
          modules.FakeVidu.make({ recoverTasks: true, timings }).pipe(
            modules.Effect.map(({ apiKey, url }) => ({ apiKey, url }))
          ),
        fakeApiKey: modules.FakeVidu.defaultApiKey,
        pollPlan: modules.ViduQ3Vidu.pollPlan,
        priceOf: viduQ3Price(modules)
      }))
  }
]

/** The default pair: the first entry. */
export const defaultEntry: Entry = entries[0]!

/** The models, for `--model`'s choices. */
export const models: ReadonlyArray<string> = [...new Set(entries.map((entry) => entry.model))]

/** The transports, for `--transport`'s choices. */
export const transports: ReadonlyArray<string> = [...new Set(entries.map((entry) => entry.transport))]

/** A pair's name, as the web form's select and the task pages show it: `vidu-q3 on apixo`. */
export const nameOf = (entry: Entry): string => `${entry.model} on ${entry.transport}`

/** A pair's id, as the web form sends it: `vidu-q3/apixo`. */
export const idOf = (entry: Entry): string => `${entry.model}/${entry.transport}`

/** The entry of a model and transport, if that pair exists. */
export const find = (model: string, transport: string): Entry | undefined =>
  entries.find((entry) => entry.model === model && entry.transport === transport)

/** The entry of a pair id (`vidu-q3/vidu`). */
export const byId = (id: string): Entry | undefined => entries.find((entry) => idOf(entry) === id)

/** The entry a recorded task went to, from its row's provider and model ids. */
export const ofRecord = (record: { readonly providerId: string; readonly modelId: string }): Entry | undefined =>
  entries.find((entry) => entry.providerId === record.providerId && entry.model === record.modelId)

/**
 * The name of an account's budget: the transport and a fingerprint of the key. Two processes on
 * one key share it; two transports (or two keys) never do. The key itself is never stored.
 */
export const accountOf = (entry: Entry, apiKey: string): string =>
  `${entry.transport}:${createHash("sha256").update(apiKey, "utf8").digest("hex").slice(0, 16)}`
