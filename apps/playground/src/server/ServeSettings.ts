/**
 * What `serve` checks and decides before it listens: the access token (`REELKIT_SERVE_TOKEN`, or a
 * fresh random one), the callback secret's length, and the limits every request meets.
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"

/** The fewest bytes a secret of `serve` may have: 32, the size of an HMAC-SHA256 key. */
export const minimumSecretBytes = 32

/** A setting `serve` refuses to start with; the message names the variable and the rule. */
export class ServeSettingError extends Data.TaggedError("ServeSettingError")<{
  readonly variable: string
  readonly rule: string
}> {
  override get message(): string {
    return `${this.variable} ${this.rule}`
  }
}

/** Limits every request of `serve` meets. */
export interface Limits {
  /** Largest body of a form POST, in bytes. */
  readonly formBodyBytes: number
  /** Largest body of a callback, in bytes (core's handler enforces it too). */
  readonly callbackBodyBytes: number
  /** Event streams (`GET /events`) open at once; one more is answered 503. */
  readonly eventStreams: number
  /** Time for a client to send a whole request (headers and body), in ms. */
  readonly requestTimeoutMs: number
  /** Time for a client to send the request headers, in ms. */
  readonly headersTimeoutMs: number
  /** Time a GET handler may take to start its answer before a 503, in ms (a stream then runs on). */
  readonly handlerTimeoutMs: number
}

/** The limits `serve` uses. */
export const defaultLimits: Limits = {
  formBodyBytes: 64 * 1024,
  callbackBodyBytes: 64 * 1024,
  eventStreams: 1000,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  handlerTimeoutMs: 30_000
}

/** How the access token was chosen: given by the user, or made now (and printed once). */
export interface AccessToken {
  readonly token: Redacted.Redacted<string>
  readonly source: "environment" | "generated"
}

const byteLength = (text: string) => Buffer.byteLength(text, "utf8")

/** Reads `REELKIT_SERVE_TOKEN` (32 bytes or more), or makes a random token. */
export const accessToken: Effect.Effect<AccessToken, ServeSettingError | ConfigError.ConfigError> = Effect.gen(
  function* () {
    const given = yield* Config.option(Config.redacted("REELKIT_SERVE_TOKEN"))
    if (Option.isNone(given) || Redacted.value(given.value) === "") {
      return { token: Redacted.make(randomBytes(32).toString("base64url")), source: "generated" } as const
    }
    if (byteLength(Redacted.value(given.value)) < minimumSecretBytes) {
      return yield* new ServeSettingError({
        variable: "REELKIT_SERVE_TOKEN",
        rule: `must be at least ${minimumSecretBytes} bytes (leave it unset and serve makes a random one)`
      })
    }
    return { token: given.value, source: "environment" } as const
  }
)

/** Refuses a `REELKIT_CALLBACK_SECRET` shorter than 32 bytes: it signs the callback URLs of paid tasks. */
export const checkCallbackSecret: Effect.Effect<void, ServeSettingError | ConfigError.ConfigError> = Effect.flatMap(
  Config.option(Config.redacted("REELKIT_CALLBACK_SECRET")),
  (secret) =>
    Option.isSome(secret) && byteLength(Redacted.value(secret.value)) < minimumSecretBytes
      ? new ServeSettingError({
          variable: "REELKIT_CALLBACK_SECRET",
          rule: `must be at least ${minimumSecretBytes} bytes (e.g. the output of: openssl rand -hex 32)`
        })
      : Effect.void
)
