/**
 * The verified callback URLs of tasks: a token derived from a secret and the task key (HMAC-SHA256),
 * so only URLs we handed out are accepted. Kept apart from the handler so that `TaskClient` can
 * make URLs without depending on the server side.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHmac, timingSafeEqual } from "node:crypto"

/** Where callbacks are received, and the secret their tokens derive from. */
export interface Config {
  /** At least 32 characters of randomness; never logged. */
  readonly secret: Redacted.Redacted<string>
  /** The public URL under which `router` is reachable, e.g. `https://media.example.com/reelkit`. */
  readonly publicBaseUrl: string
  /** Largest accepted body in bytes (default 64 KiB). */
  readonly maxBodyBytes?: number | undefined
}

/** The callback configuration. When present, `TaskClient.start` gives every task a verified callback URL. */
export class CallbackConfig extends Context.Tag("@reelkit/core/CallbackConfig")<CallbackConfig, Config>() {}

/** The path the router serves, under the public base URL. */
export const routePath = "/callbacks/:taskKey/:token"

/** The token of a task's callback URL: HMAC-SHA256 of the task key under the secret, base64url. */
export const tokenFor = (secret: Redacted.Redacted<string>, taskKey: string): string =>
  createHmac("sha256", Redacted.value(secret)).update(`reelkit-callback:${taskKey}`).digest("base64url")

/** The callback URL of a task. */
export const urlFor = (config: Config, taskKey: string): string =>
  `${config.publicBaseUrl.replace(/\/+$/, "")}/callbacks/${encodeURIComponent(taskKey)}/${tokenFor(config.secret, taskKey)}`

/** Whether a token is the one we made for this task. Constant time in the token's content. */
export const verifyToken = (secret: Redacted.Redacted<string>, taskKey: string, token: string): boolean => {
  const expected = Buffer.from(tokenFor(secret, taskKey))
  const given = Buffer.from(token)
  // Compare equal-length buffers only; a wrong length is rejected after a dummy comparison.
  if (given.length !== expected.length) {
    timingSafeEqual(expected, expected)
    return false
  }
  return timingSafeEqual(expected, given)
}

/** The shortest accepted callback secret, in bytes. */
export const minimumSecretBytes = 32

/** The callback configuration cannot be used (e.g. a secret shorter than 32 bytes, a base URL that is not http(s)). */
export class InvalidCallbackConfig extends Schema.TaggedError<InvalidCallbackConfig>(
  "@reelkit/core/InvalidCallbackConfig"
)("InvalidCallbackConfig", { field: Schema.String, rule: Schema.String }) {
  override get message(): string {
    return `Invalid callback ${this.field}: ${this.rule}`
  }
}

/** Checks a callback configuration: the secret's length and the base URL's form. */
export const validate = (config: Config): Effect.Effect<Config, InvalidCallbackConfig> => {
  if (Buffer.byteLength(Redacted.value(config.secret), "utf8") < minimumSecretBytes) {
    return Effect.fail(
      new InvalidCallbackConfig({ field: "secret", rule: `must be at least ${minimumSecretBytes} bytes of randomness` })
    )
  }
  let url: URL | undefined
  try {
    url = new URL(config.publicBaseUrl)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
    return Effect.fail(new InvalidCallbackConfig({ field: "publicBaseUrl", rule: "must be an http(s) URL" }))
  }
  return Effect.succeed(config)
}

/** The callback-URL capability `TaskClient` uses: a verified URL per task, or none. */
export interface Service {
  /** The task's callback URL, or `undefined` when callbacks are not configured. */
  readonly urlFor: (taskKey: string) => string | undefined
}

/** The callback-URL tag. Provide `layer(config)` or `layerNone`. */
export class CallbackUrls extends Context.Tag("@reelkit/core/CallbackUrls")<CallbackUrls, Service>() {}

/**
 * Verified callback URLs from a configuration (checked: a secret of at least 32 bytes, an http(s)
 * base URL), plus the `CallbackConfig` the callback handler needs.
 */
export const layer = (config: Config): Layer.Layer<CallbackUrls | CallbackConfig, InvalidCallbackConfig> =>
  Layer.unwrapEffect(
    Effect.map(validate(config), (valid) =>
      Layer.mergeAll(
        Layer.succeed(CallbackUrls, { urlFor: (taskKey) => urlFor(valid, taskKey) }),
        Layer.succeed(CallbackConfig, valid)
      )
    )
  )

/** No callbacks: every task is polled. */
export const layerNone: Layer.Layer<CallbackUrls> = Layer.succeed(CallbackUrls, { urlFor: () => undefined })
