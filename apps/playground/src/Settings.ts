/**
 * The playground's settings from the environment, where its files live under `REELKIT_HOME`, and
 * the ledger alone: what `list` and the start of every command need, without the provider, the
 * HTTP client or the fake server that `Playground.layer` wires.
 */
import { TaskError, type TaskLedger } from "@reelkit/core"
import { ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import * as SqliteLedger from "@reelkit/storage/SqliteLedger"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { Callbacks } from "@reelkit/core"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Registry from "./Registry.js"

/** The playground's settings, from the environment. */
export interface Settings {
  /** Absolute `REELKIT_HOME` (default `./.reelkit`). */
  readonly home: string
  /** The (model, transport) pair the command drives; the key, base URL and prices below are its. */
  readonly entry: Registry.Entry
  /** The pair's key (`APIXO_API_KEY`, `VIDU_API_KEY`). */
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  /** The pair's base URL override (`APIXO_BASE_URL`, `VIDU_BASE_URL`). */
  readonly baseUrl: Option.Option<string>
  /** `REELKIT_PUBLIC_URL` and `REELKIT_CALLBACK_SECRET`, when both are set. */
  readonly callbacks: Option.Option<Callbacks.Config>
  /** The pair's price table (`REELKIT_PRICING` on apixo, `REELKIT_VIDU_PRICING` on Vidu), as JSON. */
  readonly pricing: Option.Option<ViduQ3Pricing.ViduQ3Pricing>
}

// The provider's own reader, with the variable named in the error and only the first issue kept.
const pricingConfig = (variable: string): Config.Config<ViduQ3Pricing.ViduQ3Pricing> =>
  Config.string(variable).pipe(
    Config.mapOrFail((text) =>
      Either.mapLeft(Schema.decodeEither(ViduQ3Pricing.PricingFromJson)(text), (error) => {
        const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
        const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`
        return ConfigError.InvalidData(
          [variable],
          `is not a Vidu Q3 price table${where} (${issue?.message ?? "invalid"}), e.g. {"currency":"USD","standard":{"720p":0.1},"turbo":{"720p":0.05}}`
        )
      })
    )
  )

/** Reads the settings of one pair from the environment. */
export const settingsFor = (entry: Registry.Entry): Config.Config<Settings> =>
  Config.all({
    home: Config.string("REELKIT_HOME").pipe(
      Config.withDefault(".reelkit"),
      Config.map((home) => Path.resolve(home))
    ),
    apiKey: Config.option(Config.redacted(entry.keyVariable)).pipe(
      Config.map(Option.filter((key) => Redacted.value(key).trim() !== ""))
    ),
    baseUrl: Config.option(Config.nonEmptyString(entry.baseUrlVariable)),
    publicUrl: Config.option(Config.nonEmptyString("REELKIT_PUBLIC_URL")),
    secret: Config.option(Config.redacted("REELKIT_CALLBACK_SECRET")),
    pricing: Config.option(pricingConfig(entry.pricingVariable))
  }).pipe(
    Config.map(({ publicUrl, secret, ...rest }) => ({
      ...rest,
      entry,
      callbacks: Option.zipWith(publicUrl, secret, (publicBaseUrl, secret) => ({ publicBaseUrl, secret }))
    }))
  )

/** Reads the settings of the default pair (vidu-q3 on apixo). */
export const settings: Config.Config<Settings> = settingsFor(Registry.defaultEntry)

/** The SQLite file of the ledger. */
export const ledgerFile = (home: string): string => Path.join(home, "ledger.sqlite")

/** The root of the artifact store. */
export const storeRoot = (home: string): string => Path.join(home, "artifacts")

/** The absolute file of a stored artifact. */
export const artifactPath = (home: string, key: string): string => Path.join(storeRoot(home), key)

/** The ledger alone (for `list`): no provider, no fake server. */
export const ledgerLayer = (home: string): Layer.Layer<TaskLedger.TaskLedger, TaskError.LedgerError> =>
  SqliteLedger.layer({ filename: ledgerFile(home) }).pipe(Layer.provide(ensureHome(home)))

// SQLite creates the file but not its directory.
const ensureHome = (home: string): Layer.Layer<never, TaskError.LedgerError> =>
  Layer.effectDiscard(
    Effect.try({
      try: () => Fs.mkdirSync(home, { recursive: true }),
      catch: (cause) =>
        new TaskError.LedgerError({ operation: "open", message: `cannot create ${home}: ${String(cause)}`, cause })
    })
  )
