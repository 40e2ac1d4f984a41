import { describe, expect, it } from "@effect/vitest"
import { ApixoProtocol } from "@reelkit/apixo"
import { TaskStatus } from "@reelkit/core"
import { Effect, Schema } from "effect"

const statusEnvelope = (data: unknown) => ({ code: 200, message: "success", data })

describe("ApixoProtocol", () => {
  it("builds the submit body: request_type always, callback_url exactly with callback, provider only when given", () => {
    expect(ApixoProtocol.makeGenerateTaskBody({ input: { a: 1 } })).toEqual({ request_type: "async", input: { a: 1 } })
    expect(
      ApixoProtocol.makeGenerateTaskBody({ input: {}, callbackUrl: "https://x.example/cb", provider: "auto" })
    ).toEqual({ request_type: "callback", callback_url: "https://x.example/cb", provider: "auto", input: {} })
    const decode = Schema.decodeUnknownEither(ApixoProtocol.GenerateTaskBody)
    expect(decode({ request_type: "callback", input: {} })._tag).toBe("Left")
    expect(decode({ request_type: "callback", callback_url: "not a url", input: {} })._tag).toBe("Left")
    expect(decode({ input: {} })._tag).toBe("Right")
    expect(decode({ request_type: "async", provider: "my-channel", input: {} })._tag).toBe("Right")
    expect(decode({ request_type: "async", provider: "", input: {} })._tag).toBe("Left")
  })

  it.effect("maps the four states, with times in milliseconds", () =>
    Effect.gen(function* () {
      const pending = yield* ApixoProtocol.toTaskStatus({ taskId: "t", state: "pending", createTime: 1 })
      expect(pending).toEqual(new TaskStatus.Pending({ remoteCreatedAt: 1 }))
      const processing = yield* ApixoProtocol.toTaskStatus({ taskId: "t", state: "processing" })
      expect(processing._tag).toBe("Processing")
      const succeeded = yield* ApixoProtocol.toTaskStatus(
        {
          taskId: "t",
          state: "success",
          resultJson: '{"resultUrls":["https://r2.apixo.ai/a.mp4","https://r2.apixo.ai/b.mp4"]}',
          createTime: 1767965610929,
          completeTime: 1767965730929,
          costTime: 120000
        },
        { outputContentType: "video/mp4" }
      )
      expect(succeeded).toEqual(
        new TaskStatus.Succeeded({
          remoteCreatedAt: 1767965610929,
          remoteCompletedAt: 1767965730929,
          outputs: [
            new TaskStatus.TaskOutput({ url: "https://r2.apixo.ai/a.mp4", contentType: "video/mp4" }),
            new TaskStatus.TaskOutput({ url: "https://r2.apixo.ai/b.mp4", contentType: "video/mp4" })
          ]
        })
      )
      const failed = yield* ApixoProtocol.toTaskStatus({ taskId: "t", state: "failed", failCode: "NSFW_DETECTED" })
      expect(failed).toEqual(new TaskStatus.Failed({ code: "NSFW_DETECTED", message: "" }))
      const noCode = yield* ApixoProtocol.toTaskStatus({ taskId: "t", state: "failed" })
      expect(noCode).toMatchObject({ code: "UNKNOWN" })
    })
  )

  it.effect("rejects an undocumented state and a malformed or missing resultJson with typed errors", () =>
    Effect.gen(function* () {
      const unknown = yield* Effect.flip(ApixoProtocol.toTaskStatus({ taskId: "t", state: "queued" }))
      expect(unknown).toMatchObject({ _tag: "UnknownRemoteState", state: "queued" })
      for (const resultJson of ["{not json", '{"resultUrls":"one"}', '{"urls":[]}', 42, undefined]) {
        const error = yield* Effect.flip(ApixoProtocol.toTaskStatus({ taskId: "t", state: "success", resultJson }))
        expect(error._tag, String(resultJson)).toBe("DecodeError")
      }
    })
  )

  it("keeps fail codes open while naming the documented ones", () => {
    expect(ApixoProtocol.isKnownFailCode("CONTENT_VIOLATION")).toBe(true)
    expect(ApixoProtocol.isKnownFailCode("SensitiveContentDetected")).toBe(true)
    expect(ApixoProtocol.isKnownFailCode("SOMETHING_NEW")).toBe(false)
    expect(Schema.decodeUnknownSync(ApixoProtocol.FailCode)("SOMETHING_NEW")).toBe("SOMETHING_NEW")
  })

  it.effect("parses a callback body, as an object or as text, into a status hint", () =>
    Effect.gen(function* () {
      const body = statusEnvelope({
        taskId: "task_12345678",
        state: "failed",
        failCode: "CONTENT_VIOLATION",
        failMsg: "Content does not meet safety guidelines"
      })
      const hint = yield* ApixoProtocol.parseCallback(body)
      expect(hint).toEqual({
        remoteTaskId: "task_12345678",
        status: new TaskStatus.Failed({ code: "CONTENT_VIOLATION", message: "Content does not meet safety guidelines" })
      })
      const fromText = yield* ApixoProtocol.parseCallback(JSON.stringify(body))
      expect(fromText).toEqual(hint)
    })
  )

  it.effect("rejects callback bodies that are not a task status", () =>
    Effect.gen(function* () {
      for (const body of [
        "not json",
        null,
        { code: 500, message: "error", data: null },
        statusEnvelope({ taskId: "t", state: "weird" }),
        statusEnvelope({ state: "success" })
      ]) {
        const error = yield* Effect.flip(ApixoProtocol.parseCallback(body))
        expect(error._tag, JSON.stringify(body)).toBe("DecodeError")
      }
    })
  )
})
