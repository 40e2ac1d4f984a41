import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as TaskError from "../src/TaskError.js"

describe("TaskError", () => {
  it.effect("allows a resubmit only when the failure proves no task was created", () =>
    Effect.sync(() => {
      expect(TaskError.isSafeToResubmit(new TaskError.RateLimited({ message: "slow down" }))).toBe(true)
      expect(
        TaskError.isSafeToResubmit(
          new TaskError.TransportError({ message: "connect ECONNREFUSED", requestSent: false })
        )
      ).toBe(true)
      expect(
        TaskError.isSafeToResubmit(new TaskError.TransportError({ message: "socket hang up", requestSent: true }))
      ).toBe(false)
      expect(TaskError.isSafeToResubmit(new TaskError.ServerError({ status: 502, message: "Bad Gateway" }))).toBe(false)
      expect(TaskError.isSafeToResubmit(new TaskError.DecodeError({ message: "not JSON" }))).toBe(false)
      // Explicit rejections prove nothing was created, but sending them again cannot succeed.
      expect(TaskError.isSafeToResubmit(new TaskError.InsufficientCredits({ message: "Insufficient credits" }))).toBe(
        false
      )
    })
  )

  it.effect("names the field and the rule in an input error's message", () =>
    Effect.sync(() => {
      const error = new TaskError.InvalidInput({ path: "input.image_urls", rule: "required in image modes" })
      expect(error.message).toBe("Invalid input at input.image_urls: required in image modes")
      expect(error._tag).toBe("InvalidInput")
    })
  )

  it.effect("is a yieldable typed failure", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(new TaskError.SubmitOutcomeUnknown({ taskKey: "tk_1", reason: "HTTP 502" }))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left.message).toContain("tk_1")
        expect(result.left.message).toContain("was not re-sent")
      }
    })
  )

  it.effect("recognises provider errors and nothing else", () =>
    Effect.sync(() => {
      expect(TaskError.isProviderError(new TaskError.ServerError({ status: 500, message: "boom" }))).toBe(true)
      expect(TaskError.isProviderError(new TaskError.DeadlineExceeded({ taskKey: "k", waitedMillis: 1 }))).toBe(false)
      expect(TaskError.isProviderError({ _tag: "Pending" })).toBe(false)
      expect(TaskError.isProviderError(null)).toBe(false)
    })
  )
})
