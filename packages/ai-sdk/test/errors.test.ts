import { describe, expect, it } from "@effect/vitest"
import { APICallError } from "@ai-sdk/provider"
import { TaskError } from "@reelkit/core"
import { type CallContext, type Phase, type ReelkitError, toApiCallError } from "../src/internal/errors.js"

const contextFor = (phase: Phase): CallContext => ({
  phase,
  url: "https://api.apixo.ai/api/v1/generateTask/vidu-q3",
  requestBodyValues: { mode: "text-to-video", prompt: "p" }
})

const rows: ReadonlyArray<{
  readonly error: ReelkitError
  readonly statusCode: number | undefined
  readonly start: boolean
  readonly status: boolean
}> = [
  {
    error: new TaskError.InvalidInput({ path: "input.duration", rule: "r" }),
    statusCode: undefined,
    start: false,
    status: false
  },
  { error: new TaskError.Unauthorized({ message: "m" }), statusCode: 401, start: false, status: false },
  { error: new TaskError.Forbidden({ message: "m" }), statusCode: 403, start: false, status: false },
  { error: new TaskError.InsufficientCredits({ message: "m" }), statusCode: 402, start: false, status: false },
  {
    error: new TaskError.RateLimited({ message: "m", retryAfterMillis: 1500 }),
    statusCode: 429,
    start: true,
    status: true
  },
  { error: new TaskError.RequestRejected({ status: 400, message: "m" }), statusCode: 400, start: false, status: false },
  {
    error: new TaskError.TransportError({ message: "m", requestSent: false }),
    statusCode: undefined,
    start: true,
    status: true
  },
  {
    error: new TaskError.TransportError({ message: "m", requestSent: true }),
    statusCode: undefined,
    start: false,
    status: true
  },
  { error: new TaskError.ServerError({ status: 502, message: "m" }), statusCode: 502, start: false, status: true },
  { error: new TaskError.DecodeError({ message: "m" }), statusCode: undefined, start: false, status: true },
  {
    error: new TaskError.SubmitOutcomeUnknown({ taskKey: "tk", reason: "500" }),
    statusCode: undefined,
    start: false,
    status: false
  },
  {
    error: new TaskError.TaskNotFound({ remoteTaskId: "t", message: "m" }),
    statusCode: 404,
    start: false,
    status: false
  },
  {
    error: new TaskError.LedgerError({ operation: "create", message: "m" }),
    statusCode: undefined,
    start: true,
    status: true
  },
  {
    error: new TaskError.IdempotencyConflict({ idempotencyKey: "k", taskKey: "tk" }),
    statusCode: 409,
    start: false,
    status: false
  }
]

describe("reelkit errors as APICallError", () => {
  for (const { error, statusCode, start, status } of rows) {
    const label = `${error._tag}${error._tag === "TransportError" ? ` (requestSent ${error.requestSent})` : ""}`
    it(`${label}: status ${statusCode ?? "none"}, retryable on start ${start}, on status ${status}`, () => {
      const onStart = toApiCallError(error, contextFor("start"))
      const onStatus = toApiCallError(error, contextFor("status"))
      expect(APICallError.isInstance(onStart)).toBe(true)
      expect([onStart.statusCode, onStart.isRetryable, onStatus.isRetryable]).toEqual([statusCode, start, status])
      expect(onStart.cause).toBe(error)
      expect(onStart.data).toMatchObject({ error: error._tag })
      expect(onStart.url).toBe(contextFor("start").url)
    })
  }

  it("a 429 carries its Retry-After in the headers the SDK's retry reads", () => {
    const error = toApiCallError(
      new TaskError.RateLimited({ message: "slow down", retryAfterMillis: 1500 }),
      contextFor("start")
    )
    expect(error.responseHeaders).toEqual({ "retry-after": "2", "retry-after-ms": "1500" })
    const withoutHint = toApiCallError(new TaskError.RateLimited({ message: "slow down" }), contextFor("start"))
    expect(withoutHint.responseHeaders).toBeUndefined()
  })

  it("an invalid input names the SDK option, the input field and the rule", () => {
    const error = toApiCallError(
      new TaskError.InvalidInput({ path: "input.aspect_ratio", rule: "is only allowed in text modes" }),
      contextFor("start")
    )
    expect(error.message).toBe(
      "Invalid video option aspectRatio (input.aspect_ratio): is only allowed in text modes; nothing was sent"
    )
    expect(error.data).toEqual({ error: "InvalidInput", path: "input.aspect_ratio", option: "aspectRatio" })
  })
})
