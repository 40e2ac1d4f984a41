/**
 * The verified callback URLs of tasks: a token derived from a secret and the task key (HMAC-SHA256),
 * so only URLs we handed out are accepted. Kept apart from the handler so that `TaskClient` can
 * make URLs without depending on the server side.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Redacted from "effect/Redacted"
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
