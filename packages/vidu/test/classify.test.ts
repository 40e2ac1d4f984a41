// Every branch of the Vidu answer classification, without a socket: which typed error each answer
// becomes, and whether retrying it is safe.
import { describe, expect, it } from "@effect/vitest"
import { HttpTransport } from "@reelkit/core"
import { classify, type Operation } from "../src/internal/classify.js"

const secret = "vidu-classify-secret-99"
const answer = (operation: Operation, httpStatus: number, body: unknown, retryAfter?: string) =>
  classify({
    operation,
    httpStatus,
    retryAfter,
    bodyText: typeof body === "string" ? body : JSON.stringify(body),
    remoteTaskId: "t1",
    now: 1_000_000,
    redact: HttpTransport.redactorFor(secret)
  })
const error = (code: number, reason: string, message = reason) => ({
  code,
  reason,
  message,
  metadata: { trace_id: "x" }
})

describe("classify", () => {
  it("maps each documented answer to the typed error it means", () => {
    const cases: Array<[Operation, number, unknown, string]> = [
      ["submit", 200, { task_id: "t" }, "Accepted"],
      ["cancel", 200, "", "Accepted"],
      ["submit", 200, "<html>", "DecodeError"],
      ["submit", 400, error(400, "CreditInsufficient"), "InsufficientCredits"],
      ["submit", 400, error(400, "FieldInvalid"), "InvalidInput"],
      ["submit", 400, error(400, "OperationInProcess"), "RateLimited"],
      ["query", 400, error(400, "BadRequest"), "RequestRejected"],
      ["submit", 401, error(401, "Unauthorized"), "Unauthorized"],
      ["submit", 403, error(403, "Forbidden"), "Forbidden"],
      ["query", 404, error(404, "TaskNotFound"), "TaskNotFound"],
      ["submit", 404, error(404, "NotFound"), "RequestRejected"],
      ["submit", 409, error(409, "Conflict"), "RequestRejected"],
      ["submit", 429, error(429, "QuotaExceeded"), "RateLimited"],
      ["submit", 499, error(499, "Canceled"), "ServerError"],
      ["submit", 500, error(500, "InternalServiceFailure"), "ServerError"],
      ["submit", 502, "Bad Gateway", "ServerError"]
    ]
    expect(cases.map(([operation, status, body]) => answer(operation, status, body)._tag)).toEqual(
      cases.map(([, , , tag]) => tag)
    )
  })

  it("says a submit may be retried only when the answer proves nothing was created", () => {
    const flags = (status: number, body: unknown) => {
      const result = answer("submit", status, body)
      return result._tag === "Accepted" ? undefined : [result.retryable, result.provesNotCreated]
    }
    expect(flags(429, error(429, "TooManyRequests"))).toEqual([true, true])
    expect(flags(500, error(500, "InternalServiceFailure"))).toEqual([true, false])
    expect(flags(400, error(400, "CreditInsufficient"))).toEqual([false, true])
  })

  it("reads Retry-After in seconds and cuts the key out of every text", () => {
    const limited = answer("submit", 429, error(429, "TooManyRequests", `slow down ${secret}`), "12")
    expect(limited).toMatchObject({ _tag: "RateLimited", retryAfterMillis: 12_000 })
    expect(JSON.stringify(limited) + String((limited as Error).message)).not.toContain(secret)
    const plain = answer("submit", 503, `upstream said ${secret}`)
    expect((plain as Error).message).toContain("[redacted]")
  })
})
