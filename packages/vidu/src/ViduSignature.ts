/**
 * Vidu's signed callbacks. Every callback carries `X-HMAC-SIGNATURE = base64(HMAC-SHA256(api key,
 * signing string))`, where the signing string is the method, the callback URL's path and query,
 * `vidu`, the `Date` header and each header named in `X-HMAC-SIGNED-HEADERS` as `Key:Value`, each
 * followed by a newline. The signature does not cover the body, so a verified callback is still a
 * hint that core confirms with a status request.
 *
 * `makeVerifier` checks a delivery: the signature in constant time, its `Date` within a replay
 * window of the Clock's now, and its `x-request-nonce` not seen before within that window.
 *
 * @since 0.1.0
 */
import { TaskError, type TaskProvider } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createHmac, timingSafeEqual } from "node:crypto"

/** The access key Vidu signs with, fixed. */
export const accessKey = "vidu"

/** The only algorithm Vidu documents. */
export const algorithm = "hmac-sha256"

/** How far a callback's `Date` may be from now (either way) by default: 5 minutes. */
export const defaultReplayWindow: Duration.Duration = Duration.minutes(5)

/** What is signed. */
export interface Signed {
  readonly method: string
  /** The callback URL as given to Vidu (its path and query are signed). */
  readonly url: string
  /** The `Date` header, e.g. `Tue, 06 May 2025 12:09:42 GMT`. */
  readonly date: string
  /** The signed headers in order, as `[name as listed, value]`. */
  readonly headers: ReadonlyArray<readonly [string, string]>
}

/** The signing string: method, path, canonical query, `vidu`, Date, then `Key:Value` per signed header; each line ends with `\n`. */
export const signingString = (signed: Signed): string => {
  const url = new URL(signed.url)
  const path = url.pathname === "" ? "/" : url.pathname
  const query = url.search.startsWith("?") ? url.search.slice(1) : url.search
  const lines = [signed.method.toUpperCase(), path, query, accessKey, signed.date]
  return `${lines.join("\n")}\n${signed.headers.map(([name, value]) => `${name}:${value}\n`).join("")}`
}

/** The signature of a signing string under the API key. */
export const sign = (apiKey: Redacted.Redacted<string>, text: string): string =>
  createHmac("sha256", Redacted.value(apiKey)).update(text, "utf8").digest("base64")

const equalInConstantTime = (expected: string, given: string): boolean => {
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  // Compare equal-length buffers only; a wrong length is rejected after a dummy comparison.
  if (a.length !== b.length) {
    timingSafeEqual(a, a)
    return false
  }
  return timingSafeEqual(a, b)
}

/** Options of `makeVerifier`. */
export interface VerifierOptions {
  /** The API key the tasks were created with: Vidu signs their callbacks with it. */
  readonly apiKey: Redacted.Redacted<string>
  /** How far a callback's `Date` may be from now, either way (default 5 minutes); nonces are kept as long. */
  readonly replayWindow?: Duration.DurationInput | undefined
}

const reject = (reason: TaskError.CallbackRejected["reason"], message: string) =>
  Effect.fail(new TaskError.CallbackRejected({ reason, message }))

/**
 * A verifier for `TaskProvider.verifyCallback`. In order: the signature headers are present and
 * name `Date` and `x-request-nonce` among the signed headers (`unsigned`/`signature`), the
 * signature matches (`signature`), the `Date` lies within the window (`stale`), and the nonce is
 * new (`replayed`). Only a delivery that passes every check records its nonce.
 */
export const makeVerifier = (
  options: VerifierOptions
): ((delivery: TaskProvider.CallbackDelivery) => Effect.Effect<void, TaskError.CallbackRejected>) => {
  const windowMillis = Duration.toMillis(options.replayWindow ?? defaultReplayWindow)
  // nonce -> when it may be forgotten (its Date is then outside the window anyway).
  const nonces = new Map<string, number>()
  const forgetExpired = (now: number) => {
    for (const [nonce, until] of nonces) if (until < now) nonces.delete(nonce)
  }
  return (delivery) =>
    Effect.gen(function* () {
      const header = (name: string) => delivery.headers[name.toLowerCase()]
      const signature = header("x-hmac-signature")
      const date = header("date")
      const nonce = header("x-request-nonce")
      const listed = header("x-hmac-signed-headers")
      if (signature === undefined || date === undefined || listed === undefined) {
        return yield* reject("unsigned", "The callback carries no X-HMAC-SIGNATURE, Date or X-HMAC-SIGNED-HEADERS")
      }
      const algorithmGiven = header("x-hmac-algorithm")
      if (algorithmGiven !== undefined && algorithmGiven.toLowerCase() !== algorithm) {
        return yield* reject("signature", `The callback is signed with ${algorithmGiven}, not ${algorithm}`)
      }
      const names = listed
        .split(";")
        .map((name) => name.trim())
        .filter((name) => name !== "")
      const lowered = names.map((name) => name.toLowerCase())
      // An unsigned nonce could be changed at will, defeating the replay check: both must be signed.
      if (nonce === undefined || !lowered.includes("date") || !lowered.includes("x-request-nonce")) {
        return yield* reject("signature", "The callback's signed headers must include Date and x-request-nonce")
      }
      const headers = names.map((name) => [name, header(name) ?? ""] as const)
      let expected: string
      try {
        expected = sign(options.apiKey, signingString({ method: delivery.method, url: delivery.url, date, headers }))
      } catch {
        return yield* reject("signature", "The callback URL cannot be parsed")
      }
      if (!equalInConstantTime(expected, signature.trim())) {
        return yield* reject("signature", "The callback's X-HMAC-SIGNATURE does not match")
      }
      const now = yield* Clock.currentTimeMillis
      const sentAt = Date.parse(date)
      if (Number.isNaN(sentAt) || Math.abs(now - sentAt) > windowMillis) {
        return yield* reject("stale", `The callback's Date (${date}) is outside the replay window`)
      }
      forgetExpired(now)
      if (nonces.has(nonce)) return yield* reject("replayed", "The callback's nonce was seen already")
      nonces.set(nonce, sentAt + windowMillis)
    })
}
