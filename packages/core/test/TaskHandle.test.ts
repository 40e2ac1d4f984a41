import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as TaskHandle from "../src/TaskHandle.js"

describe("TaskHandle", () => {
  const handle = new TaskHandle.TaskHandle({
    providerId: "apixo",
    modelId: "vidu-q3",
    taskKey: "tk_01",
    remoteTaskId: "task_12345678",
    submittedAt: 1767965610929
  })

  it.effect("round-trips through JSON so another process can resume it", () =>
    Effect.gen(function* () {
      const json = TaskHandle.toJson(handle)
      expect(JSON.parse(json)).toEqual({
        providerId: "apixo",
        modelId: "vidu-q3",
        taskKey: "tk_01",
        remoteTaskId: "task_12345678",
        submittedAt: 1767965610929
      })
      const decoded = yield* TaskHandle.fromJson(json)
      expect(decoded).toEqual(handle)
    })
  )

  it.effect("rejects a handle with a missing field as a DecodeError naming it", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(TaskHandle.fromJson(JSON.stringify({ providerId: "apixo", modelId: "m" })))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left._tag).toBe("DecodeError")
        expect(result.left.message).toContain("taskKey")
      }
    })
  )
})
