import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Apixo, ApixoModel } from "@reelkit/apixo"
import { TaskProvider, TaskStatus } from "@reelkit/core"
import { Duration, Effect, Layer, Schema } from "effect"
import { makeServer, redactedKey } from "./utils.js"

// The README's example of a second apixo model: only its schema, rules and hints.
const rule = <A, I>(schema: Schema.Schema<A, I>, text: string) =>
  schema.annotations({ message: () => ({ message: text, override: true }) })

const Kling26Input = Schema.Struct({
  mode: Schema.Literal("text-to-video"),
  prompt: rule(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(2500)), "must be 1 to 2500 characters"),
  duration: Schema.optional(rule(Schema.Literal(5, 10), "must be 5 or 10"))
})

const kling26 = ApixoModel.define({
  modelId: "kling-2-6",
  input: Kling26Input,
  billableSeconds: (input) => input.duration
})

const withModel = <A, E>(
  baseUrl: string,
  body: (provider: TaskProvider.Service) => Effect.Effect<A, E>,
  overrides: ApixoModel.Overrides = {}
) =>
  Effect.flatMap(TaskProvider.TaskProvider, body).pipe(
    Effect.provide(
      ApixoModel.layer(kling26, overrides).pipe(
        Layer.provide(Apixo.layer({ apiKey: redactedKey, baseUrl })),
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
  )

describe("ApixoModel", () => {
  it.effect("prepare checks the model's schema, reports the rule, rejects unknown fields, and drops undefined", () =>
    Effect.gen(function* () {
      const prepare = ApixoModel.prepare(kling26)
      const prepared = yield* prepare({ mode: "text-to-video", prompt: "a fox", duration: 10 })
      expect(prepared).toEqual({ wire: { mode: "text-to-video", prompt: "a fox", duration: 10 }, billableSeconds: 10 })
      const omitted = yield* prepare({ mode: "text-to-video", prompt: "a fox", duration: undefined })
      expect(omitted.wire).toEqual({ mode: "text-to-video", prompt: "a fox" })
      expect(Object.keys(omitted.wire as object)).not.toContain("duration")

      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ mode: "text-to-video", prompt: "" }, "Invalid input at input.prompt: must be 1 to 2500 characters"],
        [{ mode: "text-to-video", prompt: "x", duration: 7 }, "Invalid input at input.duration: must be 5 or 10"],
        [
          { mode: "text-to-video", prompt: "x", extra: 1 },
          "Invalid input at input.extra: is not a field of this model"
        ],
        [{ mode: "text-to-video" }, "Invalid input at input.prompt: is required"],
        [
          { mode: "video-to-video", prompt: "x" },
          'Invalid input at input.mode: must be "text-to-video" (got "video-to-video")'
        ],
        ["a string", "Invalid input at input: must be an object"]
      ]
      for (const [input, message] of cases) {
        const error = yield* Effect.flip(prepare(input))
        expect(error.message).toBe(message)
      }
    })
  )

  it.scoped("submits the prepared input once and reads statuses through the model's endpoints", () =>
    Effect.gen(function* () {
      const server = yield* makeServer
      server.script("POST /api/v1/generateTask/kling-2-6", {
        status: 200,
        body: { code: 200, message: "success", data: { taskId: "task_k" } }
      })
      server.script(
        "GET /api/v1/statusTask/kling-2-6",
        { status: 200, body: { code: 200, message: "success", data: { taskId: "task_k", state: "pending" } } },
        {
          status: 200,
          body: {
            code: 200,
            message: "success",
            data: { taskId: "task_k", state: "success", resultJson: '{"resultUrls":["https://r2.apixo.ai/k.mp4"]}' }
          }
        }
      )
      yield* withModel(server.baseUrl, (provider) =>
        Effect.gen(function* () {
          expect(provider.providerId).toBe("apixo")
          expect(provider.modelId).toBe("kling-2-6")
          const prepared = yield* provider.prepare({ mode: "text-to-video", prompt: "a fox" })
          const accepted = yield* provider.submit({
            taskKey: "tk_1",
            input: prepared.wire,
            options: { provider: "value" }
          })
          expect(accepted).toEqual({ remoteTaskId: "task_k" })
          expect((yield* provider.status("task_k"))._tag).toBe("Pending")
          const done = yield* provider.status("task_k")
          expect(done).toEqual(
            new TaskStatus.Succeeded({ outputs: [new TaskStatus.TaskOutput({ url: "https://r2.apixo.ai/k.mp4" })] })
          )
        })
      )
      const [submit] = server.requests()
      expect(JSON.parse(submit?.body ?? "")).toEqual({
        request_type: "async",
        provider: "value",
        input: { mode: "text-to-video", prompt: "a fox" }
      })
      expect(server.requests()).toHaveLength(3)
    })
  )

  it.scoped("rejects a non-string routing provider before sending", () =>
    Effect.gen(function* () {
      const server = yield* makeServer
      const error = yield* withModel(server.baseUrl, (provider) =>
        Effect.flip(provider.submit({ taskKey: "tk", input: {}, options: { provider: 3 } }))
      )
      expect(error).toMatchObject({ _tag: "InvalidInput", path: "options.provider" })
      expect(server.requests()).toHaveLength(0)
    })
  )

  it.scoped("reports its hints, with per-deployment overrides", () =>
    Effect.gen(function* () {
      const server = yield* makeServer
      const defaults = yield* withModel(server.baseUrl, (provider) => Effect.succeed(provider.hints))
      expect(defaults.pollPlan).toEqual(TaskProvider.defaultPollPlan)
      expect(Duration.toMillis(defaults.resultRetention)).toBe(Duration.toMillis(Duration.days(15)))
      const overridden = yield* withModel(server.baseUrl, (provider) => Effect.succeed(provider.hints), {
        pollPlan: { interval: Duration.seconds(20) },
        resultRetention: "1 day"
      })
      expect(Duration.toMillis(overridden.pollPlan.interval)).toBe(20_000)
      expect(overridden.pollPlan.firstPollAfter).toEqual(TaskProvider.defaultPollPlan.firstPollAfter)
      expect(Duration.toMillis(overridden.resultRetention)).toBe(86_400_000)
    })
  )
})
