// The seed's request examples through the official Vidu transport: each becomes the documented
// Vidu request (endpoint, model, body, Token auth), fields Vidu cannot carry become warnings, and
// Vidu's answers decode into core's statuses and typed errors. Over a scripted server on a real socket.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { TaskError, TaskProvider, TaskStatus } from "@reelkit/core"
import { ScriptedHttpServer } from "@reelkit/testing"
import { Effect, Either, Layer, Redacted } from "effect"
import * as ViduQ3 from "../src/ViduQ3.js"
import type * as ViduQ3Vidu from "../src/ViduQ3Vidu.js"
import * as Seed from "./seed.js"

const apiKey = "vidu-sk-5ecret-0b1c2d3e"

const withProvider = <A, E>(
  server: ScriptedHttpServer.ScriptedServer,
  body: (provider: TaskProvider.Service) => Effect.Effect<A, E>,
  options: Partial<ViduQ3Vidu.Options> = {}
) =>
  Effect.flatMap(TaskProvider.TaskProvider, body).pipe(
    Effect.provide(
      ViduQ3.layerVidu({ apiKey: Redacted.make(apiKey), baseUrl: `${server.baseUrl}/ent/v2`, ...options }).pipe(
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
  )

/** A submit answer as Vidu documents it: the task id, its state and an echo of the request. */
const submitAnswer = (taskId: string) => ({
  task_id: taskId,
  state: "created",
  model: "viduq3-pro",
  prompt: "a cinematic flyover of a futuristic city at sunrise",
  images: [],
  duration: 8,
  seed: 1234,
  resolution: "720p",
  credits: 8,
  created_at: "2026-01-09T13:33:30.929Z"
})

const prepareAndSubmit = (provider: TaskProvider.Service, input: unknown, callbackUrl?: string) =>
  Effect.gen(function* () {
    const prepared = yield* provider.prepare({ input, callbackUrl })
    const accepted = yield* provider.submit({ taskKey: "tk_vidu", wire: prepared.wire })
    return { prepared, accepted }
  })

describe("ViduQ3 on the official Vidu API (seed examples)", () => {
  it.scoped("each seed request becomes the documented Vidu request: endpoint, model, body and Token auth", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      for (const endpoint of ["text2video", "img2video", "start-end2video"]) {
        server.script(`POST /ent/v2/${endpoint}`, { status: 200, body: submitAnswer(`task_${endpoint}`) })
      }
      const results = yield* withProvider(server, (provider) =>
        Effect.all([
          prepareAndSubmit(provider, Seed.textToVideoRequest.input),
          prepareAndSubmit(provider, Seed.oneImageCallbackRequest.input, Seed.oneImageCallbackRequest.callback_url),
          prepareAndSubmit(provider, Seed.twoImagesRequest.input)
        ])
      )
      const sent = server.requests()
      expect(sent.map((request) => `${request.method} ${request.pathname}`)).toEqual([
        "POST /ent/v2/text2video",
        "POST /ent/v2/img2video",
        "POST /ent/v2/start-end2video"
      ])
      // Byte for byte, in this order: model, images, prompt, duration, seed, resolution, aspect_ratio, audio.
      expect(sent.map((request) => request.body)).toEqual([
        JSON.stringify({
          model: "viduq3-pro",
          prompt: "a cinematic flyover of a futuristic city at sunrise",
          duration: 8,
          resolution: "720p",
          aspect_ratio: "16:9",
          audio: true
        }),
        JSON.stringify({
          model: "viduq3-pro",
          images: ["https://example.com/start.jpg"],
          prompt: "make this image come alive with subtle motion",
          duration: 4,
          resolution: "1080p",
          callback_url: "https://your-server.com/callback"
        }),
        JSON.stringify({
          model: "viduq3-pro",
          images: ["https://example.com/start.jpg", "https://example.com/end.jpg"],
          prompt: "transition from start to end smoothly",
          duration: 8,
          resolution: "720p"
        })
      ])
      for (const request of sent) {
        expect(request.headers.authorization).toBe(`Token ${apiKey}`)
        expect(request.headers["content-type"]).toMatch(/^application\/json/)
      }
      expect(results.map(({ accepted }) => accepted.remoteTaskId)).toEqual([
        "task_text2video",
        "task_img2video",
        "task_start-end2video"
      ])
      // The text example sets style, movement and bgm, which Vidu's Q3 does not take: reported, never silent.
      expect(results[0]!.prepared.warnings?.map((warning) => warning.field)).toEqual([
        "input.style",
        "input.movement",
        "input.bgm"
      ])
      expect(results[1]!.prepared.warnings).toBeUndefined()
      expect(results[2]!.prepared.warnings).toBeUndefined()
      // The ledger stores the caller's input, the same on either transport.
      expect(results[2]!.prepared.input).toEqual(Seed.twoImagesRequest.input)
      expect(results.map(({ prepared }) => prepared.billableSeconds)).toEqual([8, 4, 8])
    })
  )

  it.scoped("the turbo tier is viduq3-turbo; seed -1 (random) is left to Vidu; an omitted duration bills 5 s", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const prepared = yield* withProvider(server, (provider) =>
        provider.prepare({ input: { mode: "turbo-text-to-video", prompt: "a fox", seed: -1, sound: false } })
      )
      expect(prepared.wire.path).toBe("/text2video")
      expect(prepared.wire.body).toEqual({ model: "viduq3-turbo", prompt: "a fox", audio: false })
      expect(prepared.billableSeconds).toBe(5)
      const images = yield* withProvider(server, (provider) =>
        provider.prepare({
          input: { mode: "turbo-image-to-video", prompt: "go", image_urls: ["https://x.example/a.png"], seed: 7 }
        })
      )
      expect([images.wire.path, images.wire.body]).toEqual([
        "/img2video",
        { model: "viduq3-turbo", images: ["https://x.example/a.png"], prompt: "go", seed: 7 }
      ])
    })
  )

  it.scoped("unsupportedFields: reject refuses a field Vidu cannot carry before any request", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const refused = yield* withProvider(
        server,
        (provider) => Effect.flip(provider.prepare({ input: Seed.textToVideoRequest.input })),
        { unsupportedFields: "reject" }
      )
      expect(refused).toBeInstanceOf(TaskError.InvalidInput)
      expect([refused.path, refused.rule]).toEqual(["input.style", expect.stringContaining("no style for Q3")])
      expect(server.requests()).toHaveLength(0)
    })
  )

  it.scoped("transport options are checked and sent; unknown ones are refused at options.<key>", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const input = { mode: "text-to-video", prompt: "x" }
      const { bad, wrongType, good } = yield* withProvider(server, (provider) =>
        Effect.all({
          bad: Effect.flip(provider.prepare({ input, options: { provider: "auto" } })),
          wrongType: Effect.flip(provider.prepare({ input, options: { off_peak: "yes" } })),
          good: provider.prepare({ input, options: { off_peak: true, payload: "order-17" } })
        })
      )
      expect(bad.path).toBe("options.provider")
      expect(wrongType.path).toBe("options.off_peak")
      expect(good.wire.body).toEqual({ model: "viduq3-pro", prompt: "x", off_peak: true, payload: "order-17" })
    })
  )

  it.scoped(
    "query answers decode: created/queueing, processing, success with creations, failed, cancelled, unknown",
    () =>
      Effect.gen(function* () {
        const server = yield* ScriptedHttpServer.make
        const route = (id: string) => `GET /ent/v2/tasks/${id}/creations`
        server.script(route("t1"), { status: 200, body: { id: "t1", state: "created", err_code: "", creations: [] } })
        server.script(route("t2"), { status: 200, body: { id: "t2", state: "queueing", err_code: "" } })
        server.script(route("t3"), { status: 200, body: { id: "t3", state: "processing", err_code: "", credits: 8 } })
        server.script(route("t4"), {
          status: 200,
          body: {
            id: "t4",
            state: "success",
            err_code: "",
            credits: 8,
            payload: "",
            creations: [
              { id: "c1", url: "https://cdn.vidu.example/v.mp4", cover_url: "https://cdn.vidu.example/v.jpg" }
            ]
          }
        })
        server.script(route("t5"), { status: 200, body: { id: "t5", state: "failed", err_code: "AuditSubmitIllegal" } })
        server.script(route("t6"), { status: 200, body: { id: "t6", state: "failed", err_code: "UserCancelled" } })
        server.script(route("t7"), { status: 200, body: { id: "t7", state: "scheduled", err_code: "" } })
        const statuses = yield* withProvider(server, (provider) =>
          Effect.forEach(["t1", "t2", "t3", "t4", "t5", "t6", "t7"], (id) => Effect.either(provider.status(id)))
        )
        const values = statuses.map((result) => (Either.isRight(result) ? result.right : result.left))
        expect(values.slice(0, 3).map((value) => value._tag)).toEqual(["Pending", "Pending", "Processing"])
        expect(values[3]).toEqual(
          new TaskStatus.Succeeded({
            outputs: [new TaskStatus.TaskOutput({ url: "https://cdn.vidu.example/v.mp4", contentType: "video/mp4" })]
          })
        )
        expect(values[4]).toMatchObject({ _tag: "Failed", code: "AuditSubmitIllegal" })
        expect(values[5]).toEqual(new TaskStatus.Cancelled({ code: "UserCancelled" }))
        expect(values[6]).toEqual(new TaskError.UnknownRemoteState({ state: "scheduled" }))
        expect(server.requests().every((request) => request.headers.authorization === `Token ${apiKey}`)).toBe(true)
      })
  )

  it.scoped("error answers map to core's typed errors, with truthful retry flags and the key cut out", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const error = (code: number, reason: string, message: string) => ({
        code,
        reason,
        message,
        metadata: { trace_id: "04e5c2fe159ff7c574acd0424e78c35f" }
      })
      server.script(
        "POST /ent/v2/text2video",
        { status: 401, body: error(401, "Unauthorized", `unauthorized key ${apiKey}`) },
        { status: 400, body: error(400, "CreditInsufficient", "insufficient credits") },
        { status: 429, headers: { "retry-after": "7" }, body: error(429, "TooManyRequests", "too many requests") },
        { status: 400, body: error(400, "FieldInvalid", "invalid field: duration") },
        { status: 500, body: error(500, "InternalServiceFailure", "internal service failure") }
      )
      server.script("GET /ent/v2/tasks/nope/creations", {
        status: 404,
        body: error(404, "TaskNotFound", "task not found")
      })
      server.script("POST /ent/v2/tasks/busy/cancel", {
        status: 400,
        body: error(400, "BadRequest", "task state is scheduled, can not cancel")
      })
      const errors = yield* withProvider(server, (provider) =>
        Effect.gen(function* () {
          const prepared = yield* provider.prepare({ input: { mode: "text-to-video", prompt: "x", duration: 4 } })
          const submit = Effect.flip(provider.submit({ taskKey: "k", wire: prepared.wire }))
          return [
            yield* submit,
            yield* submit,
            yield* submit,
            yield* submit,
            yield* submit,
            yield* Effect.flip(provider.status("nope")),
            yield* Effect.flip(provider.cancel!("busy"))
          ]
        })
      )
      expect(errors.map((error) => error._tag)).toEqual([
        "Unauthorized",
        "InsufficientCredits",
        "RateLimited",
        "InvalidInput",
        "ServerError",
        "TaskNotFound",
        "RequestRejected"
      ])
      expect(errors.map((error) => [error.retryable, error.provesNotCreated])).toEqual([
        [false, true],
        [false, true],
        [true, true],
        [false, true],
        [true, false],
        [false, false],
        [false, true]
      ])
      expect(errors[2]).toMatchObject({ retryAfterMillis: 7000 })
      expect(errors[0]!.message).toContain("[redacted]")
      expect(errors.map((error) => `${error.message} ${JSON.stringify(error)}`).join("\n")).not.toContain(apiKey)
      // The cancel was sent as Vidu documents it: POST with the id in the body.
      const cancel = server.requests().find((request) => request.pathname === "/ent/v2/tasks/busy/cancel")!
      expect(JSON.parse(cancel.body)).toEqual({ id: "busy" })
    })
  )

  it.scoped("a connection that never opens is TransportError { requestSent: false }", () =>
    Effect.gen(function* () {
      const baseUrl = yield* ScriptedHttpServer.refusedBaseUrl
      const error = yield* Effect.flatMap(TaskProvider.TaskProvider, (provider) =>
        Effect.flip(
          Effect.flatMap(provider.prepare({ input: { mode: "text-to-video", prompt: "x" } }), (prepared) =>
            provider.submit({ taskKey: "k", wire: prepared.wire })
          )
        )
      ).pipe(
        Effect.provide(
          ViduQ3.layerVidu({ apiKey: Redacted.make(apiKey), baseUrl }).pipe(Layer.provide(NodeHttpClient.layerUndici))
        )
      )
      expect(error).toMatchObject({ _tag: "TransportError", requestSent: false })
      expect(error.provesNotCreated).toBe(true)
    })
  )
})
