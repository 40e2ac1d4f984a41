/**
 * Settings of the generation workflow on one runner: who it is in ledger leases, how long a
 * submit may take, how often its status poller asks, and where callbacks are received.
 *
 * @since 0.3.0
 */
import { CallbackUrls } from "@reelkit/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { randomBytes } from "node:crypto"

/** Options of `layer`; every field has a default. */
export interface Options {
  /** This runner's name in submit leases (default: pid and random bytes, unique per start). */
  readonly owner?: string | undefined
  /** A submit without an answer after this long counts as ambiguous (default 30 s). */
  readonly submitTimeout?: Duration.DurationInput | undefined
  /** How long a `sending` row is held by its sender before another runner may judge it (default submit timeout + 15 s). */
  readonly submitLease?: Duration.DurationInput | undefined
  /** Submits refused in a way that proves nothing was created are retried up to this many times (default 5). */
  readonly maxSubmitAttempts?: number | undefined
  /** The poller's tick, and the interval between status requests of a task without callbacks (default the provider's poll interval). */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** Status requests of a task with a callback URL (fallback for a lost callback; default 60 s). */
  readonly callbackFallbackInterval?: Duration.DurationInput | undefined
  /** Finished rows younger than this are checked for executions left suspended (default 1 h). */
  readonly sweepWindow?: Duration.DurationInput | undefined
  /** How long an ambiguous submit waits for a callback that resolves it (default 1 h). */
  readonly ambiguousWait?: Duration.DurationInput | undefined
  /** Callbacks: a secret (32+ bytes) and the public base URL of a runner's callback server. */
  readonly callbacks?: CallbackUrls.Config | undefined
  /** Told of each step a task takes on this runner (`sending`, `submitted`, `downloading`, `completed`, ...): for logs and tests. */
  readonly onStep?: ((step: Step, taskKey: string) => void) | undefined
}

/** A step of a task, as `onStep` hears it. */
export type Step = "reserved" | "sending" | "submitted" | "finished" | "downloading" | "completed" | "released"

/** Resolved settings. */
export interface Settings {
  readonly owner: string
  readonly submitTimeoutMillis: number
  readonly submitLeaseMillis: number
  readonly maxSubmitAttempts: number
  readonly pollIntervalMillis: number | undefined
  readonly callbackFallbackIntervalMillis: number
  readonly sweepWindowMillis: number
  readonly ambiguousWaitMillis: number
  readonly callbacks: CallbackUrls.Config | undefined
  readonly onStep: (step: Step, taskKey: string) => void
}

/** The settings tag. */
export class GenerationConfig extends Context.Tag("@reelkit/cluster/GenerationConfig")<GenerationConfig, Settings>() {}

/** A runner name unique per process start. */
export const newOwner = (): string => `runner-${process.pid}-${randomBytes(4).toString("hex")}`

/** Resolves options to settings, checking the callback configuration (secret length, URL form). */
export const make = (options: Options = {}): Effect.Effect<Settings, CallbackUrls.InvalidCallbackConfig> =>
  Effect.gen(function* () {
    const callbacks = options.callbacks === undefined ? undefined : yield* CallbackUrls.validate(options.callbacks)
    const submitTimeoutMillis = Duration.toMillis(options.submitTimeout ?? Duration.seconds(30))
    return {
      owner: options.owner ?? newOwner(),
      submitTimeoutMillis,
      submitLeaseMillis: Duration.toMillis(options.submitLease ?? Duration.millis(submitTimeoutMillis + 15_000)),
      maxSubmitAttempts: Math.max(1, options.maxSubmitAttempts ?? 5),
      pollIntervalMillis: options.pollInterval === undefined ? undefined : Duration.toMillis(options.pollInterval),
      callbackFallbackIntervalMillis: Duration.toMillis(options.callbackFallbackInterval ?? Duration.seconds(60)),
      sweepWindowMillis: Duration.toMillis(options.sweepWindow ?? Duration.hours(1)),
      ambiguousWaitMillis: Duration.toMillis(options.ambiguousWait ?? Duration.hours(1)),
      callbacks,
      onStep: options.onStep ?? (() => {})
    }
  })

/** The settings as a layer. */
export const layer = (options: Options = {}): Layer.Layer<GenerationConfig, CallbackUrls.InvalidCallbackConfig> =>
  Layer.effect(GenerationConfig, make(options))

/** The signed callback URL of a task: the deferred token in the path, signed with the secret (HMAC-SHA256). */
export const callbackUrlFor = (config: CallbackUrls.Config, token: string): string =>
  `${config.publicBaseUrl.replace(/\/+$/, "")}/cluster/callbacks/${token}/${CallbackUrls.tokenFor(config.secret, `cluster:${token}`)}`

/** Whether a callback's signature is the one made for this token (constant time). */
export const verifyCallback = (config: CallbackUrls.Config, token: string, signature: string): boolean =>
  CallbackUrls.verifyToken(config.secret, `cluster:${token}`, signature)

/** A secret's value is never printed: settings shown in logs go through this. */
export const describe = (settings: Settings): Record<string, unknown> => ({
  ...settings,
  onStep: undefined,
  callbacks:
    settings.callbacks === undefined
      ? undefined
      : { publicBaseUrl: settings.callbacks.publicBaseUrl, secret: "[redacted]" }
})
