// Vidu's callback signature: the signing string exactly as Vidu's documentation builds it for its
// example URL, and the verifier's verdicts (valid, wrong key, tampered header, stale, replayed,
// unsigned), against headers made by FakeVidu's independent implementation.
import { describe, expect, it } from "@effect/vitest"
import { FakeVidu } from "@reelkit/testing"
import { Duration, Effect, Either, Redacted, TestClock } from "effect"
import * as ViduSignature from "../src/ViduSignature.js"

const apiKey = "vidu-key-for-signatures-1234"
const url = "http://127.0.0.1:8080/vidu/callback?name=james&age=36"
const date = "Tue, 06 May 2025 12:09:42 GMT"
const nonce = "123e4567-e89b-12d3-a456-426614174000"

describe("ViduSignature", () => {
  it("builds the documented signing string for the documented example", () => {
    const text = ViduSignature.signingString({
      method: "post",
      url,
      date,
      headers: [
        ["Date", date],
        ["x-request-nonce", nonce]
      ]
    })
    expect(text).toBe(
      [
        "POST",
        "/vidu/callback",
        "name=james&age=36",
        "vidu",
        date,
        `Date:${date}`,
        `x-request-nonce:${nonce}`,
        ""
      ].join("\n")
    )
  })

  const delivery = (headers: Record<string, string>, at = url) => ({ method: "POST", url: at, headers, body: "{}" })
  const atDate = TestClock.setTime(Date.parse(date))

  it.effect("accepts FakeVidu's signature once; a replay of it is refused as replayed", () =>
    Effect.gen(function* () {
      yield* atDate
      const verify = ViduSignature.makeVerifier({ apiKey: Redacted.make(apiKey) })
      const headers = FakeVidu.signedHeaders({ apiKey, url, date, nonce })
      expect(Either.isRight(yield* Effect.either(verify(delivery(headers))))).toBe(true)
      const again = yield* Effect.flip(verify(delivery(headers)))
      expect(again.reason).toBe("replayed")
    })
  )

  it.effect("refuses a wrong key, another URL, a changed nonce, a stale date and a missing signature", () =>
    Effect.gen(function* () {
      yield* atDate
      const verify = ViduSignature.makeVerifier({ apiKey: Redacted.make(apiKey), replayWindow: Duration.minutes(5) })
      const good = FakeVidu.signedHeaders({ apiKey, url, date, nonce })
      const reasons = [
        yield* Effect.flip(verify(delivery(FakeVidu.signedHeaders({ apiKey: "other-key-000", url, date, nonce })))),
        yield* Effect.flip(verify(delivery(good, "http://127.0.0.1:8080/vidu/other?name=james&age=36"))),
        yield* Effect.flip(verify(delivery({ ...good, "x-request-nonce": "another-nonce" }))),
        yield* Effect.flip(verify(delivery({ ...good, "x-hmac-signed-headers": "Date" }))),
        yield* Effect.flip(verify(delivery({}))),
        yield* Effect.flip(verify(delivery({ ...good, "x-hmac-algorithm": "hmac-md5" })))
      ].map((error) => error.reason)
      expect(reasons).toEqual(["signature", "signature", "signature", "signature", "unsigned", "signature"])
      // Correctly signed, but sent 6 minutes ago: outside the window.
      yield* TestClock.adjust(Duration.minutes(6))
      expect((yield* Effect.flip(verify(delivery(good)))).reason).toBe("stale")
    })
  )

  it.effect("a nonce is forgotten only once its Date has left the window, so no replay gets through", () =>
    Effect.gen(function* () {
      yield* atDate
      const verify = ViduSignature.makeVerifier({ apiKey: Redacted.make(apiKey), replayWindow: Duration.minutes(5) })
      const headers = FakeVidu.signedHeaders({ apiKey, url, date, nonce })
      yield* verify(delivery(headers))
      yield* TestClock.adjust(Duration.minutes(4))
      expect((yield* Effect.flip(verify(delivery(headers)))).reason).toBe("replayed")
      yield* TestClock.adjust(Duration.minutes(2))
      expect((yield* Effect.flip(verify(delivery(headers)))).reason).toBe("stale")
    })
  )
})
