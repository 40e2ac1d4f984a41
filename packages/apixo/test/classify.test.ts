import { describe, expect, it } from "@effect/vitest"
import { HttpTransport } from "@reelkit/core"
import { callNames, classify, effectiveCode } from "../src/internal/classify.js"

const { errorCodes, parseRetryAfter, redactValue, redactorFor } = HttpTransport
const transportError = (operation: "submit" | "status", cause: unknown, redact: HttpTransport.Redact) =>
  HttpTransport.transportError(callNames[operation].connect, cause, redact)

const secret = "sk-unit-secret"
const redact = redactorFor(secret)

describe("classify (internal)", () => {
  it("finds socket error codes however the HTTP client wraps them", () => {
    // undici: the socket error itself.
    expect(errorCodes(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toEqual([
      "ECONNREFUSED"
    ])
    // fetch: a TypeError whose cause is the socket error.
    const dns = Object.assign(new Error("getaddrinfo ENOTFOUND api.apixo.ai"), { code: "ENOTFOUND" })
    expect(errorCodes(new TypeError("fetch failed", { cause: dns }))).toEqual(["ENOTFOUND"])
    // Happy eyeballs: an AggregateError holding one error per address.
    const aggregate = new AggregateError([
      Object.assign(new Error("a"), { code: "ENETUNREACH" }),
      Object.assign(new Error("b"), { code: "EHOSTUNREACH" })
    ])
    expect(errorCodes(aggregate)).toEqual(["ENETUNREACH", "EHOSTUNREACH"])
    // Cycles do not loop.
    const cyclic: { code: string; cause?: unknown } = { code: "ECONNRESET" }
    cyclic.cause = cyclic
    expect(errorCodes(cyclic)).toEqual(["ECONNRESET"])
  })

  it("says nothing was sent only for failures before the connection opened", () => {
    for (const code of ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"]) {
      const error = transportError("submit", new TypeError("fetch failed", { cause: { code, message: code } }), redact)
      expect(error.requestSent, code).toBe(false)
    }
    for (const cause of [
      { code: "ECONNRESET", message: "read ECONNRESET" },
      { code: "UND_ERR_SOCKET", message: "other side closed" },
      { code: "ETIMEDOUT", message: "timed out" },
      new Error("socket hang up"),
      "a string",
      undefined
    ]) {
      expect(transportError("submit", cause, redact).requestSent).toBe(true)
    }
  })

  it("keeps a plain summary as the cause and scrubs the secret from it", () => {
    const error = transportError("status", { code: "ECONNRESET", message: `reset while sending ${secret}` }, redact)
    expect(error.cause).toEqual({ code: "ECONNRESET", message: "reset while sending [redacted]" })
    expect(error.message).not.toContain(secret)
  })

  it("lets a 5xx on either side win, then an error code in the body, then the HTTP status", () => {
    expect(effectiveCode(200, 200)).toBe(200)
    expect(effectiveCode(200, undefined)).toBe(200)
    expect(effectiveCode(200, 402)).toBe(402)
    expect(effectiveCode(200, 503)).toBe(503)
    expect(effectiveCode(400, 402)).toBe(402)
    expect(effectiveCode(400, 500)).toBe(500)
    expect(effectiveCode(502, 400)).toBe(502)
    expect(effectiveCode(401, 200)).toBe(401)
    expect(effectiveCode(400, 1.5)).toBe(400)
  })

  it("parses Retry-After seconds and dates, and ignores garbage", () => {
    expect(parseRetryAfter("12", 0)).toBe(12_000)
    expect(parseRetryAfter("1.5", 0)).toBe(1_500)
    const now = Date.parse("2026-01-01T00:00:00Z")
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000)
    expect(parseRetryAfter("Thu, 01 Jan 2025 00:00:30 GMT", now)).toBe(0)
    expect(parseRetryAfter("soon", now)).toBeUndefined()
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
  })

  it("bounds server text taken into a message", () => {
    const error = classify({
      operation: "submit",
      httpStatus: 403,
      retryAfter: undefined,
      bodyText: JSON.stringify({ code: 403, message: "x".repeat(5000), data: null }),
      now: 0,
      redact
    })
    expect(error._tag).toBe("Forbidden")
    expect((error as { message: string }).message.length).toBeLessThan(400)
  })

  it("removes the key from every string of an answer, keys included, however the JSON escaped it", () => {
    const quoted = 'sk-"quoted"\\key'
    const redactQuoted = redactorFor(quoted)
    // Raw text: the key as is, and as it reads inside a JSON string.
    expect(redactQuoted(`plain ${quoted} and json ${JSON.stringify(quoted)}`)).toBe(
      'plain [redacted] and json "[redacted]"'
    )
    expect(redactValue({ [secret]: [`a ${secret}`, 3, { deep: secret }], n: null }, redact)).toEqual({
      "[redacted]": ["a [redacted]", 3, { deep: "[redacted]" }],
      n: null
    })
    // A body that spells the key with \u escapes is caught once parsed.
    const escaped = [...secret].map((char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")
    const answer = classify({
      operation: "status",
      httpStatus: 200,
      retryAfter: undefined,
      bodyText: `{"code":200,"message":"success","data":{"taskId":"t","failMsg":"bad key ${escaped}"}}`,
      now: 0,
      redact
    })
    expect(answer).toEqual({
      _tag: "Accepted",
      message: "success",
      data: { taskId: "t", failMsg: "bad key [redacted]" }
    })
  })
})
