import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Apixo, ApixoModel, ApixoProtocol } from "@reelkit/apixo"
import { TaskError, TaskProvider, TaskStatus } from "@reelkit/core"
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
  overrides: ApixoModel.Overrides = {},
  client: Partial<Apixo.Options> = {}
) =>
  Effect.flatMap(TaskProvider.TaskProvider, body).pipe(
    Effect.provide(
      ApixoModel.layer(kling26, overrides).pipe(
        Layer.provide(Apixo.layer({ apiKey: redactedKey, baseUrl, ...client })),
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
  )

describe("ApixoModel", () => {
  it.effect("prepare checks the model's schema, reports the rule, rejects unknown fields, and drops undefined", () =>
    Effect.gen(function* () {
      const prepare = (input: unknown) => ApixoModel.prepare(kling26)({ input })
      const prepared = yield* prepare({ mode: "text-to-video", prompt: "a fox", duration: 10 })
      expect(prepared).toEqual({
        input: { mode: "text-to-video", prompt: "a fox", duration: 10 },
        wire: new TaskProvider.WireRequest({
          method: "POST",
          path: "/api/v1/generateTask/kling-2-6",
          body: { request_type: "async", input: { mode: "text-to-video", prompt: "a fox", duration: 10 } }
        }),
        billableSeconds: 10
      })
      const omitted = yield* prepare({ mode: "text-to-video", prompt: "a fox", duration: undefined })
      expect(omitted.input).toEqual({ mode: "text-to-video", prompt: "a fox" })
      expect(Object.keys(omitted.input as object)).not.toContain("duration")
      // The caller's field order is kept on the wire (the schema's encoding would reorder it).
      const reordered = yield* prepare({ duration: 5, prompt: "a fox", mode: "text-to-video" })
      expect(JSON.stringify(reordered.wire.body)).toBe(
        '{"request_type":"async","input":{"duration":5,"prompt":"a fox","mode":"text-to-video"}}'
      )
      expect(yield* ApixoModel.prepareInput(kling26)({ mode: "text-to-video", prompt: "a fox" })).toEqual({
        input: { mode: "text-to-video", prompt: "a fox" },
        billableSeconds: undefined
      })

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
          const prepared = yield* provider.prepare({
            input: { mode: "text-to-video", prompt: "a fox" },
            options: { provider: "value" }
          })
          const accepted = yield* provider.submit({ taskKey: "tk_1", wire: prepared.wire })
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

  it.scoped("the gate checks the callback URL and the transport options, naming the field and the rule", () =>
    Effect.gen(function* () {
      const server = yield* makeServer
      const input = { mode: "text-to-video", prompt: "a fox" }
      const cases: ReadonlyArray<readonly [Partial<TaskProvider.StartRequest>, string, string]> = [
        [{ callbackUrl: "ftp://hooks.example/cb" }, "callbackUrl", "must be an absolute http(s) URL"],
        [{ callbackUrl: "/relative/cb" }, "callbackUrl", "must be an absolute http(s) URL"],
        [
          { callbackUrl: "https://hooks.example/a b" },
          "callbackUrl",
          "must not contain whitespace or control characters"
        ],
        [
          { callbackUrl: " https://hooks.example/cb" },
          "callbackUrl",
          "must not contain whitespace or control characters"
        ],
        [
          { callbackUrl: "https://hooks.example/\u007fcb" },
          "callbackUrl",
          "must not contain whitespace or control characters"
        ],
        [
          { callbackUrl: `https://hooks.example/${"x".repeat(2048)}` },
          "callbackUrl",
          "must be at most 2048 characters"
        ],
        [{ callbackUrl: 42 as unknown as string }, "callbackUrl", "must be a string"],
        [{ options: { provider: 3 } }, "options.provider", ApixoProtocol.routingProviderRule],
        [{ options: { provider: "" } }, "options.provider", ApixoProtocol.routingProviderRule],
        [{ options: { provider: "my channel" } }, "options.provider", ApixoProtocol.routingProviderRule],
        [{ options: { provider: "../admin" } }, "options.provider", ApixoProtocol.routingProviderRule],
        [{ options: { provider: "c".repeat(65) } }, "options.provider", ApixoProtocol.routingProviderRule],
        [
          { options: { provider: "auto", requestType: "callback" } },
          "options.requestType",
          "is not an option of the apixo transport (known: provider)"
        ],
        // The input is checked first: a request wrong everywhere names its input.
        [{ input: { mode: "text-to-video" }, callbackUrl: "ftp://x" }, "input.prompt", "is required"]
      ]
      yield* withModel(server.baseUrl, (provider) =>
        Effect.gen(function* () {
          for (const [request, path, rule] of cases) {
            const error = yield* Effect.flip(provider.prepare({ input, ...request }))
            expect(error, JSON.stringify(request).slice(0, 80)).toBeInstanceOf(TaskError.InvalidInput)
            expect({ path: error.path, rule: error.rule }).toEqual({ path, rule })
          }
          for (const routing of ["auto", "value", "official", "my-channel_2.eu", "c".repeat(64)]) {
            const prepared = yield* provider.prepare({ input, options: { provider: routing } })
            expect(prepared.wire.body).toEqual({ request_type: "async", provider: routing, input })
          }
          const withCallback = yield* provider.prepare({ input, callbackUrl: "http://127.0.0.1:9/cb?k=v", options: {} })
          expect(withCallback.wire.body).toEqual({
            request_type: "callback",
            callback_url: "http://127.0.0.1:9/cb?k=v",
            input
          })
        })
      )
      expect(server.requests()).toHaveLength(0)
    })
  )

  it.scoped("the client's routing provider is the default; the request's options.provider wins", () =>
    Effect.gen(function* () {
      const server = yield* makeServer
      const input = { mode: "text-to-video", prompt: "a fox" }
      const bodies = yield* withModel(
        server.baseUrl,
        (provider) =>
          Effect.all([
            Effect.map(provider.prepare({ input }), (prepared) => prepared.wire.body),
            Effect.map(provider.prepare({ input, options: { provider: "value" } }), (prepared) => prepared.wire.body)
          ]),
        {},
        { provider: "official" }
      )
      expect(bodies).toEqual([
        { request_type: "async", provider: "official", input },
        { request_type: "async", provider: "value", input }
      ])
    })
  )

  it.scoped("submit sends the prepared request's exact bytes, and refuses a request of another model", () =>
    Effect.gen(function* () {
      const server = yield* makeServer
      server.script("POST /api/v1/generateTask/kling-2-6", {
        status: 200,
        body: { code: 200, message: "success", data: { taskId: "task_k" } }
      })
      const { prepared, foreign } = yield* withModel(server.baseUrl, (provider) =>
        Effect.gen(function* () {
          const prepared = yield* provider.prepare({
            input: { mode: "text-to-video", prompt: 'ünïcode & "quotes"', duration: 5 },
            callbackUrl: "https://hooks.example/cb/tk_1?sig=abc",
            options: { provider: "official" }
          })
          // The row stores the wire; a recovery decodes it and must send the same bytes.
          const stored = Schema.decodeUnknownSync(TaskProvider.WireRequest)(JSON.parse(JSON.stringify(prepared.wire)))
          yield* provider.submit({ taskKey: "tk_1", wire: stored })
          const foreign = yield* Effect.flip(
            provider.submit({
              taskKey: "tk_2",
              wire: new TaskProvider.WireRequest({ ...prepared.wire, path: "/api/v1/generateTask/sora-2" })
            })
          )
          return { prepared, foreign }
        })
      )
      expect(server.requests()).toHaveLength(1)
      const [request] = server.requests()
      expect(request?.pathname).toBe(prepared.wire.path)
      expect(request?.body).toBe(JSON.stringify(prepared.wire.body))
      expect(foreign).toMatchObject({ _tag: "InvalidInput", path: "wire.path" })
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
