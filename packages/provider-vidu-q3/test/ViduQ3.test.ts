import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { TaskError, TaskProvider, TaskStatus } from "@reelkit/core"
import { ViduQ3 } from "@reelkit/provider-vidu-q3"
import { ScriptedHttpServer } from "@reelkit/testing"
import { ConfigProvider, Duration, Effect, Layer, Redacted } from "effect"
import * as Seed from "./seed.js"

const submitRoute = "POST /api/v1/generateTask/vidu-q3"
const statusRoute = "GET /api/v1/statusTask/vidu-q3"

/** The key used by these tests; asserted absent from what they check. */
const apiKey = "sk-test-5ecret-b5f1e0c2"
const redactedKey = Redacted.make(apiKey)

/** Runs `body` with the Vidu Q3 provider pointed at the scripted server. */
const withProvider = <A, E>(
  server: ScriptedHttpServer.ScriptedServer,
  body: (provider: TaskProvider.Service) => Effect.Effect<A, E>
) =>
  Effect.flatMap(TaskProvider.TaskProvider, body).pipe(
    Effect.provide(
      ViduQ3.layer({ apiKey: redactedKey, baseUrl: server.baseUrl }).pipe(Layer.provide(NodeHttpClient.layerUndici))
    )
  )

/** prepare + submit, as core's TaskClient calls them: the gate, then the wire request it returned. */
const send = (
  provider: TaskProvider.Service,
  input: unknown,
  callbackUrl?: string,
  options?: Record<string, unknown>
) =>
  Effect.gen(function* () {
    const prepared = yield* provider.prepare({ input, callbackUrl, options })
    return yield* provider.submit({ taskKey: "tk_seed", wire: prepared.wire })
  })

const sentBodies = (server: ScriptedHttpServer.ScriptedServer) =>
  server.requests().map((request) => JSON.parse(request.body))

describe("ViduQ3 (seed document)", () => {
  it.scoped("each request example, turned into provider calls, sends exactly the documented body", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      server.script(submitRoute, { status: 200, body: Seed.submitSuccess })
      yield* withProvider(server, (provider) =>
        Effect.gen(function* () {
          expect(yield* send(provider, Seed.textToVideoRequest.input)).toEqual({ remoteTaskId: "task_12345678" })
          yield* send(provider, Seed.oneImageCallbackRequest.input, Seed.oneImageCallbackRequest.callback_url)
          yield* send(provider, Seed.twoImagesRequest.input)
        })
      )
      expect(sentBodies(server)).toEqual([Seed.textToVideoRequest, Seed.oneImageCallbackRequest, Seed.twoImagesRequest])
      // Byte for byte: the same fields in the same order as the page.
      expect(server.requests().map((request) => request.body)).toEqual(
        [Seed.textToVideoRequest, Seed.oneImageCallbackRequest, Seed.twoImagesRequest].map((body) =>
          JSON.stringify(body)
        )
      )
      for (const request of server.requests()) {
        expect(request.pathname).toBe("/api/v1/generateTask/vidu-q3")
        expect(request.headers.authorization).toBe(`Bearer ${apiKey}`)
        expect(request.headers["content-type"]).toMatch(/^application\/json/)
      }
    })
  )

  it.scoped("the field overview's input and provider are sent exactly; its callback_url makes it a callback", () =>
    // The overview pairs `request_type: "async"` with a placeholder `callback_url`, against its own
    // rule (callback_url exactly when callback). A callback URL here always means `callback`.
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      server.script(submitRoute, { status: 200, body: Seed.submitSuccess })
      yield* withProvider(server, (provider) =>
        send(provider, Seed.overviewRequest.input, Seed.overviewRequest.callback_url, {
          provider: Seed.overviewRequest.provider
        })
      )
      expect(sentBodies(server)).toEqual([{ ...Seed.overviewRequest, request_type: "callback" }])
      expect(server.requests()[0]?.body).toBe(JSON.stringify({ ...Seed.overviewRequest, request_type: "callback" }))
    })
  )

  it.scoped("prepare alone returns each example's exact wire request, and sends nothing", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const prepared = yield* withProvider(server, (provider) =>
        Effect.all([
          provider.prepare({ input: Seed.textToVideoRequest.input }),
          provider.prepare({
            input: Seed.oneImageCallbackRequest.input,
            callbackUrl: Seed.oneImageCallbackRequest.callback_url
          })
        ])
      )
      expect(prepared.map((each) => each.wire)).toEqual([
        new TaskProvider.WireRequest({
          method: "POST",
          path: "/api/v1/generateTask/vidu-q3",
          body: Seed.textToVideoRequest
        }),
        new TaskProvider.WireRequest({
          method: "POST",
          path: "/api/v1/generateTask/vidu-q3",
          body: Seed.oneImageCallbackRequest
        })
      ])
      expect(prepared.map((each) => each.input)).toEqual([
        Seed.textToVideoRequest.input,
        Seed.oneImageCallbackRequest.input
      ])
      expect(prepared.map((each) => each.billableSeconds)).toEqual([8, 4])
      expect(server.requests()).toHaveLength(0)
    })
  )

  it.scoped("every response example decodes", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      server.script(submitRoute, { status: 200, body: Seed.submitSuccess }, { status: 400, body: Seed.submitFailure })
      server.script(statusRoute, { status: 200, body: Seed.statusSuccess }, { status: 200, body: Seed.statusFailed })
      yield* withProvider(server, (provider) =>
        Effect.gen(function* () {
          expect(yield* send(provider, Seed.twoImagesRequest.input)).toEqual({ remoteTaskId: "task_12345678" })
          const rejected = yield* Effect.flip(send(provider, Seed.twoImagesRequest.input))
          expect(rejected).toBeInstanceOf(TaskError.InsufficientCredits)
          expect(rejected.message).toContain("Insufficient credits")

          expect(yield* provider.status("task_12345678")).toEqual(
            new TaskStatus.Succeeded({
              remoteCreatedAt: 1767965610929,
              remoteCompletedAt: 1767965730929,
              outputs: [new TaskStatus.TaskOutput({ url: "https://r2.apixo.ai/video.mp4", contentType: "video/mp4" })]
            })
          )
          expect(yield* provider.status("task_12345678")).toEqual(
            new TaskStatus.Failed({ code: "CONTENT_VIOLATION", message: "Content does not meet safety guidelines" })
          )

          // Callbacks carry the status envelope.
          const parseCallback = provider.parseCallback!
          expect(yield* parseCallback(Seed.statusSuccess)).toMatchObject({
            remoteTaskId: "task_12345678",
            status: { _tag: "Succeeded" }
          })
          expect(yield* parseCallback(JSON.stringify(Seed.statusFailed))).toMatchObject({
            remoteTaskId: "task_12345678",
            status: { _tag: "Failed", code: "CONTENT_VIOLATION" }
          })
        })
      )
      const statusRequests = server.requests().filter((request) => request.method === "GET")
      expect(statusRequests.map((request) => request.query.get("taskId"))).toEqual(["task_12345678", "task_12345678"])
    })
  )
})

describe("ViduQ3", () => {
  it.scoped("declares its hints: first poll at 75 s, then every 5 s, 15-day retention, billed by duration", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const provider = yield* withProvider(server, Effect.succeed)
      expect(provider.providerId).toBe("apixo")
      expect(provider.modelId).toBe("vidu-q3")
      const seconds = (duration: Duration.Duration) => Duration.toSeconds(duration)
      expect(seconds(provider.hints.pollPlan.firstPollAfter)).toBe(75)
      expect(seconds(provider.hints.pollPlan.firstPollAfter)).toBeGreaterThanOrEqual(60)
      expect(seconds(provider.hints.pollPlan.firstPollAfter)).toBeLessThanOrEqual(90)
      expect(seconds(provider.hints.pollPlan.interval)).toBe(5)
      expect(seconds(provider.hints.resultRetention)).toBe(15 * 24 * 3600)
      expect((yield* provider.prepare({ input: Seed.textToVideoRequest.input })).billableSeconds).toBe(8)
      expect(
        (yield* provider.prepare({ input: { mode: "text-to-video", prompt: "x" } })).billableSeconds
      ).toBeUndefined()
      expect(server.requests()).toHaveLength(0)
    })
  )

  it.scoped("takes hint overrides", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const hints = yield* Effect.map(TaskProvider.TaskProvider, (provider) => provider.hints).pipe(
        Effect.provide(
          ViduQ3.layer({
            apiKey: redactedKey,
            baseUrl: server.baseUrl,
            pollPlan: { firstPollAfter: Duration.seconds(60) }
          }).pipe(Layer.provide(NodeHttpClient.layerUndici))
        )
      )
      expect(Duration.toSeconds(hints.pollPlan.firstPollAfter)).toBe(60)
      expect(Duration.toSeconds(hints.pollPlan.interval)).toBe(5)
    })
  )

  it.scoped("layerConfig reads APIXO_API_KEY and APIXO_BASE_URL", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      server.script(submitRoute, { status: 200, body: Seed.submitSuccess })
      const accepted = yield* Effect.flatMap(TaskProvider.TaskProvider, (provider) =>
        send(provider, Seed.textToVideoRequest.input)
      ).pipe(
        Effect.provide(ViduQ3.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["APIXO_API_KEY", apiKey],
              ["APIXO_BASE_URL", server.baseUrl]
            ])
          )
        )
      )
      expect(accepted.remoteTaskId).toBe("task_12345678")
      expect(server.requests()[0]?.headers.authorization).toBe(`Bearer ${apiKey}`)
    })
  )

  it.scoped("an invalid input is rejected by prepare and never sent", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const error = yield* withProvider(server, (provider) =>
        Effect.flip(send(provider, { ...Seed.twoImagesRequest.input, style: "anime" }))
      )
      expect(error.message).toBe("Invalid input at input.style: is only allowed in text modes")
      expect(server.requests()).toHaveLength(0)
    })
  )

  it.scoped("a bad callback URL or routing option is rejected by prepare, naming the field, and never sent", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const input = Seed.textToVideoRequest.input
      const errors = yield* withProvider(server, (provider) =>
        Effect.all([
          Effect.flip(send(provider, input, "your-server.com/callback")),
          Effect.flip(send(provider, input, undefined, { provider: "official channel" })),
          Effect.flip(send(provider, input, undefined, { provider: "auto", callback: "https://x.example" }))
        ])
      )
      expect(errors.map((error) => error.message)).toEqual([
        "Invalid input at callbackUrl: must be an absolute http(s) URL",
        'Invalid input at options.provider: must be "auto", "value", "official" or a channel name (letters, digits, ".", "_", "-"; at most 64)',
        "Invalid input at options.callback: is not an option of the apixo transport (known: provider)"
      ])
      expect(server.requests()).toHaveLength(0)
    })
  )

  it.scoped("a failed status echoing the API key keeps the seed's fail code and text, without the key", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      const echoed = {
        ...Seed.statusFailed,
        data: { ...Seed.statusFailed.data, failMsg: `${Seed.statusFailed.data.failMsg} (key ${apiKey})` }
      }
      server.script(statusRoute, { status: 200, body: echoed })
      const status = yield* withProvider(server, (provider) => provider.status("task_12345678"))
      expect(status).toEqual(
        new TaskStatus.Failed({
          code: "CONTENT_VIOLATION",
          message: "Content does not meet safety guidelines (key [redacted])"
        })
      )
      expect(server.requests()[0]?.headers.authorization).toBe(`Bearer ${apiKey}`)
    })
  )
})
