import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Apixo } from "@reelkit/apixo"
import { TaskError, TaskProvider } from "@reelkit/core"
import { Cause, ConfigError, ConfigProvider, Effect, Exit, Fiber, Layer, Redacted, TestClock } from "effect"
import { type Reply, apiKey, makeServer, recordingTracer, redactedKey, refusedBaseUrl, spanText } from "./utils.js"

const submitRoute = "POST /api/v1/generateTask/some-model"
const statusRoute = "GET /api/v1/statusTask/some-model"

const clientFor = (server: { readonly baseUrl: string }, options: Partial<Apixo.Options> = {}) =>
  Apixo.make({ apiKey: redactedKey, baseUrl: server.baseUrl, ...options })

const input = { mode: "text-to-video", prompt: "a cat" }

/** Submits once against a server answering `reply`; returns the error and the server. */
const submitFailure = (reply: Reply) =>
  Effect.gen(function* () {
    const server = yield* makeServer
    server.script(submitRoute, reply)
    const apixo = yield* clientFor(server)
    const error = yield* Effect.flip(apixo.generateTask("some-model", { input }))
    expect(server.requests()).toHaveLength(1)
    return error
  })

const statusFailure = (reply: Reply) =>
  Effect.gen(function* () {
    const server = yield* makeServer
    server.script(statusRoute, reply)
    const apixo = yield* clientFor(server)
    const error = yield* Effect.flip(apixo.statusTask("some-model", "task_1"))
    expect(server.requests()).toHaveLength(1)
    return error
  })

const expectNoSecret = (error: unknown) => {
  const texts = [JSON.stringify(error), String(error), (error as Error).message, Cause.pretty(Cause.fail(error))]
  for (const text of texts) expect(text).not.toContain(apiKey)
}

describe("Apixo", () => {
  describe("requests", () => {
    it.scoped("submits one POST with Bearer auth and the exact JSON body, and returns the taskId", () =>
      Effect.gen(function* () {
        const server = yield* makeServer
        server.script(submitRoute, { status: 200, body: { code: 200, message: "success", data: { taskId: "task_1" } } })
        const apixo = yield* clientFor(server)
        const accepted = yield* apixo.generateTask("some-model", { input })
        expect(accepted).toEqual({ taskId: "task_1" })
        const [request] = server.requests()
        expect(server.requests()).toHaveLength(1)
        expect(request?.method).toBe("POST")
        expect(request?.pathname).toBe("/api/v1/generateTask/some-model")
        expect(request?.headers.authorization).toBe(`Bearer ${apiKey}`)
        expect(request?.headers["content-type"]).toMatch(/^application\/json/)
        expect(JSON.parse(request?.body ?? "")).toEqual({ request_type: "async", input })
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.scoped("sends request_type callback with callback_url, and the routing provider from config or request", () =>
      Effect.gen(function* () {
        const server = yield* makeServer
        server.script(submitRoute, { status: 200, body: { code: 200, message: "success", data: { taskId: "t" } } })
        const apixo = yield* clientFor(server, { provider: "official" })
        yield* apixo.generateTask("some-model", { input, callbackUrl: "https://hooks.example/cb?token=abc" })
        yield* apixo.generateTask("some-model", { input, provider: "my-channel" })
        const bodies = server.requests().map((request) => JSON.parse(request.body))
        expect(bodies).toEqual([
          {
            request_type: "callback",
            callback_url: "https://hooks.example/cb?token=abc",
            provider: "official",
            input
          },
          { request_type: "async", provider: "my-channel", input }
        ])
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.scoped("rejects a callback URL that is not http(s) before sending anything", () =>
      Effect.gen(function* () {
        const server = yield* makeServer
        const apixo = yield* clientFor(server)
        const error = yield* Effect.flip(apixo.generateTask("some-model", { input, callbackUrl: "ftp://x" }))
        expect(error).toBeInstanceOf(TaskError.InvalidInput)
        expect(error.message).toBe("Invalid input at callbackUrl: must be an absolute http(s) URL")
        expect(server.requests()).toHaveLength(0)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.scoped("send POSTs a stored request's exact body to its path, and only to a submit endpoint", () =>
      Effect.gen(function* () {
        const server = yield* makeServer
        server.script("POST /api/v1/generateTask/other-model", {
          status: 200,
          body: { code: 200, message: "success", data: { taskId: "task_w" } }
        })
        const apixo = yield* clientFor(server)
        const body = { request_type: "async", provider: "value", input: { prompt: "déjà vu", n: [1, 2] } }
        const wire = new TaskProvider.WireRequest({ method: "POST", path: "/api/v1/generateTask/other-model", body })
        expect(yield* apixo.send(wire)).toEqual({ taskId: "task_w" })
        const [request] = server.requests()
        expect(request?.body).toBe(JSON.stringify(body))
        expect(request?.headers.authorization).toBe(`Bearer ${apiKey}`)
        for (const path of ["/api/v1/statusTask/other-model", "/api/v1/generateTask/a/b", "https://evil.example/x"]) {
          const error = yield* Effect.flip(apixo.send(new TaskProvider.WireRequest({ ...wire, path })))
          expect(error).toMatchObject({ _tag: "InvalidInput", path: "wire.path" })
        }
        expect(server.requests()).toHaveLength(1)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.effect("a client whose default routing provider breaks the rule does not start", () =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(
          Apixo.make({ apiKey: redactedKey, provider: "two words" }).pipe(Effect.provide(NodeHttpClient.layerUndici))
        )
        expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain("apixo provider must be")
      })
    )

    it.scoped("asks statusTask with the taskId query and Bearer auth, and decodes its data", () =>
      Effect.gen(function* () {
        const server = yield* makeServer
        server.script(statusRoute, {
          status: 200,
          body: { code: 200, message: "success", data: { taskId: "task 1/2", state: "processing", failCode: null } }
        })
        const apixo = yield* clientFor(server, { baseUrl: `${server.baseUrl}/` })
        const data = yield* apixo.statusTask("some-model", "task 1/2")
        expect(data).toEqual({ taskId: "task 1/2", state: "processing" })
        const [request] = server.requests()
        expect(request?.method).toBe("GET")
        expect(request?.query.get("taskId")).toBe("task 1/2")
        expect(request?.headers.authorization).toBe(`Bearer ${apiKey}`)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )
  })

  describe("error mapping", () => {
    it.scoped("seed: 400 'Insufficient credits' with data null is InsufficientCredits", () =>
      Effect.gen(function* () {
        const error = yield* submitFailure({
          status: 400,
          body: { code: 400, message: "Insufficient credits", data: null }
        })
        expect(error).toBeInstanceOf(TaskError.InsufficientCredits)
        expect(error.message).toContain("Insufficient credits")
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.scoped("maps each HTTP status and body code to its typed error", () =>
      Effect.gen(function* () {
        const envelope = (code: number, message: string, data: unknown = null) => ({ code, message, data })
        const badRequest = yield* submitFailure({
          status: 400,
          body: envelope(400, "invalid request", { error: "prompt is required" })
        })
        expect(badRequest).toMatchObject({ _tag: "InvalidInput", path: "input" })
        expect(badRequest.message).toBe("Invalid input at input: rejected by apixo: prompt is required")

        expect(yield* submitFailure({ status: 401, body: envelope(401, "Unauthorized") })).toBeInstanceOf(
          TaskError.Unauthorized
        )
        expect(yield* submitFailure({ status: 402, body: envelope(402, "Payment required") })).toBeInstanceOf(
          TaskError.InsufficientCredits
        )
        expect(yield* submitFailure({ status: 403, body: envelope(403, "Content policy") })).toBeInstanceOf(
          TaskError.Forbidden
        )
        expect(yield* submitFailure({ status: 404, body: envelope(404, "Model not found") })).toMatchObject({
          _tag: "RequestRejected",
          status: 404
        })
        expect(yield* statusFailure({ status: 404, body: envelope(404, "Task not found") })).toMatchObject({
          _tag: "TaskNotFound",
          remoteTaskId: "task_1"
        })
        expect(yield* statusFailure({ status: 400, body: envelope(400, "bad taskId") })).toMatchObject({
          _tag: "RequestRejected",
          status: 400
        })
        expect(yield* submitFailure({ status: 500, body: envelope(500, "Internal error") })).toMatchObject({
          _tag: "ServerError",
          status: 500
        })
        expect(yield* submitFailure({ status: 503, body: "<html>Service Unavailable</html>" })).toMatchObject({
          _tag: "ServerError",
          status: 503
        })
        expect(yield* submitFailure({ status: 418, body: envelope(418, "teapot") })).toMatchObject({
          _tag: "RequestRejected",
          status: 418
        })
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.scoped("when the HTTP status and the body code disagree, the body's error code or a 5xx wins", () =>
      Effect.gen(function* () {
        // A 200 whose body says 402 is a 402.
        expect(
          yield* submitFailure({ status: 200, body: { code: 402, message: "Insufficient balance", data: null } })
        ).toBeInstanceOf(TaskError.InsufficientCredits)
        // A 200 whose body says 500: the outcome is unknown, never "rejected".
        const hidden = yield* submitFailure({ status: 200, body: { code: 500, message: "oops", data: null } })
        expect(hidden).toMatchObject({ _tag: "ServerError", status: 500 })
        expect(hidden.provesNotCreated).toBe(false)
        // A 400 whose body says 500 is just as unknown.
        expect(yield* submitFailure({ status: 400, body: { code: 500, message: "oops", data: null } })).toMatchObject({
          _tag: "ServerError"
        })
        // A 429 whose body says 200 is still a 429.
        expect(
          yield* submitFailure({ status: 429, body: { code: 200, message: "success", data: null } })
        ).toMatchObject({ _tag: "RateLimited" })
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.scoped("reads Retry-After as seconds or as an HTTP date against the Clock", () =>
      Effect.gen(function* () {
        const limited = { code: 429, message: "Too many requests", data: null }
        const seconds = yield* submitFailure({ status: 429, headers: { "retry-after": "7" }, body: limited })
        expect(seconds).toMatchObject({ _tag: "RateLimited", retryAfterMillis: 7000 })

        const date = "Wed, 21 Oct 2026 07:28:00 GMT"
        yield* TestClock.setTime(Date.parse(date) - 90_000)
        const dated = yield* submitFailure({ status: 429, headers: { "retry-after": date }, body: limited })
        expect(dated).toMatchObject({ _tag: "RateLimited", retryAfterMillis: 90_000 })

        const none = yield* submitFailure({ status: 429, body: limited })
        expect(none._tag).toBe("RateLimited")
        expect((none as TaskError.RateLimited).retryAfterMillis).toBeUndefined()
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.scoped("an accepted submit without a taskId, or a body that is not JSON, is a DecodeError", () =>
      Effect.gen(function* () {
        const noTask = yield* submitFailure({ status: 200, body: { code: 200, message: "success", data: null } })
        expect(noTask._tag).toBe("DecodeError")
        expect(noTask.message).toContain("sent no taskId")
        expect(noTask.provesNotCreated).toBe(false)
        const notJson = yield* submitFailure({ status: 200, body: "<html>ok</html>" })
        expect(notJson._tag).toBe("DecodeError")
        const badStatus = yield* statusFailure({ status: 200, body: { code: 200, message: "success", data: {} } })
        expect(badStatus._tag).toBe("DecodeError")
        const otherTask = yield* statusFailure({
          status: 200,
          body: { code: 200, message: "success", data: { taskId: "task_2", state: "pending" } }
        })
        expect(otherTask.message).toContain("with task task_2")
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )
  })

  describe("transport failures", () => {
    const clients = [
      ["undici", NodeHttpClient.layerUndici],
      ["node:http", NodeHttpClient.layer],
      ["fetch", FetchHttpClient.layer]
    ] as const

    for (const [name, clientLayer] of clients) {
      it.scoped(`${name}: a refused connection proves nothing was sent`, () =>
        Effect.gen(function* () {
          const apixo = yield* clientFor({ baseUrl: yield* refusedBaseUrl })
          const error = yield* Effect.flip(apixo.generateTask("some-model", { input }))
          expect(error).toBeInstanceOf(TaskError.TransportError)
          expect(error).toMatchObject({ requestSent: false })
          expect(error.message).toContain("ECONNREFUSED")
          expect(TaskError.isSafeToResubmit(error)).toBe(true)
          expectNoSecret(error)
        }).pipe(Effect.provide(clientLayer))
      )

      it.scoped(`${name}: a connection reset after the request arrived may have created the task`, () =>
        Effect.gen(function* () {
          const server = yield* makeServer
          server.script(submitRoute, { fault: "destroy" })
          const apixo = yield* clientFor(server)
          const error = yield* Effect.flip(apixo.generateTask("some-model", { input }))
          expect(server.requests()).toHaveLength(1)
          expect(error).toBeInstanceOf(TaskError.TransportError)
          expect(error).toMatchObject({ requestSent: true })
          expect(TaskError.isSafeToResubmit(error)).toBe(false)
          expectNoSecret(error)
        }).pipe(Effect.provide(clientLayer))
      )
    }

    it.scoped("a submit unanswered within the timeout counts as sent (TestClock)", () =>
      Effect.gen(function* () {
        const server = yield* makeServer
        server.script(submitRoute, { fault: "hang" })
        const apixo = yield* clientFor(server, { submitTimeout: "10 seconds" })
        const fiber = yield* Effect.fork(Effect.flip(apixo.generateTask("some-model", { input })))
        yield* server.received(1)
        yield* TestClock.adjust("9 seconds")
        expect(fiber.unsafePoll()).toBeNull()
        yield* TestClock.adjust("1 second")
        const error = yield* Fiber.join(fiber)
        expect(error).toMatchObject({ _tag: "TransportError", requestSent: true })
        expect(error.message).toContain("10s")
        expect(server.requests()).toHaveLength(1)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )
  })

  describe("secrets", () => {
    it.scoped("the API key never appears in an error, even when the server echoes it", () =>
      Effect.gen(function* () {
        const unauthorized = yield* submitFailure({
          status: 401,
          body: { code: 401, message: `Invalid API key ${apiKey}`, data: { error: `key ${apiKey} unknown` } }
        })
        expect(unauthorized).toBeInstanceOf(TaskError.Unauthorized)
        expect(unauthorized.message).toContain("[redacted]")
        expectNoSecret(unauthorized)
        const garbled = yield* submitFailure({ status: 200, body: `not json ${apiKey}` })
        expectNoSecret(garbled)
        // Errors carry no request either: no headers, no body.
        expect(JSON.stringify(unauthorized)).not.toContain("authorization")
        expect(JSON.stringify(unauthorized)).not.toContain("a cat")
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    )

    it.scoped("spans name the model and task but never carry the key", () => {
      const { spans, tracer } = recordingTracer()
      return Effect.gen(function* () {
        const server = yield* makeServer
        server.script(submitRoute, { status: 401, body: { code: 401, message: "no", data: null } })
        server.script(statusRoute, {
          status: 200,
          body: { code: 200, message: "success", data: { taskId: "task_9", state: "pending" } }
        })
        const apixo = yield* clientFor(server)
        yield* Effect.flip(apixo.generateTask("some-model", { input }))
        yield* apixo.statusTask("some-model", "task_9")
        expect(spans.map((span) => span.name)).toEqual(
          expect.arrayContaining(["Apixo.generateTask", "Apixo.statusTask"])
        )
        expect(spans.find((span) => span.name === "Apixo.statusTask")?.attributes.get("apixo.task_id")).toBe("task_9")
        expect(spans.find((span) => span.name === "Apixo.generateTask")?.attributes.get("apixo.model")).toBe(
          "some-model"
        )
        // The platform's HTTP span records request headers; Authorization must be redacted there.
        expect(spans.some((span) => span.attributes.has("http.request.header.authorization"))).toBe(true)
        expect(spanText(spans)).not.toContain(apiKey)
      }).pipe(Effect.withTracer(tracer), Effect.provide(NodeHttpClient.layerUndici))
    })
  })

  describe("layers", () => {
    it.scoped("layerConfig reads APIXO_API_KEY and APIXO_BASE_URL", () =>
      Effect.gen(function* () {
        const server = yield* makeServer
        server.script(submitRoute, { status: 200, body: { code: 200, message: "success", data: { taskId: "t" } } })
        const provider = ConfigProvider.fromMap(
          new Map([
            ["APIXO_API_KEY", apiKey],
            ["APIXO_BASE_URL", server.baseUrl]
          ])
        )
        const accepted = yield* Effect.flatMap(Apixo.Apixo, (apixo) =>
          apixo.generateTask("some-model", { input })
        ).pipe(
          Effect.provide(Apixo.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))),
          Effect.withConfigProvider(provider)
        )
        expect(accepted.taskId).toBe("t")
        expect(server.requests()[0]?.headers.authorization).toBe(`Bearer ${apiKey}`)
      })
    )

    it.effect("layerConfig defaults the base URL and keeps the key redacted; a missing key is a ConfigError", () =>
      Effect.gen(function* () {
        const provider = ConfigProvider.fromMap(new Map([["APIXO_API_KEY", apiKey]]))
        const apixo = yield* Apixo.Apixo.pipe(
          Effect.provide(Apixo.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))),
          Effect.withConfigProvider(provider)
        )
        expect(apixo.baseUrl).toBe("https://api.apixo.ai")
        const options = yield* Effect.withConfigProvider(Apixo.config, provider)
        expect(Redacted.isRedacted(options.apiKey)).toBe(true)
        expect(String(options.apiKey)).not.toContain(apiKey)
        const missing = yield* Effect.flip(
          Apixo.Apixo.pipe(
            Effect.provide(Apixo.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))),
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
          )
        )
        expect(ConfigError.isConfigError(missing)).toBe(true)
        expect(String(missing)).toContain("APIXO_API_KEY")
        const badUrl = yield* Effect.flip(
          Apixo.Apixo.pipe(
            Effect.provide(Apixo.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))),
            Effect.withConfigProvider(
              ConfigProvider.fromMap(
                new Map([
                  ["APIXO_API_KEY", apiKey],
                  ["APIXO_BASE_URL", "api.apixo.ai"]
                ])
              )
            )
          )
        )
        expect(String(badUrl)).toContain("must be an absolute http(s) URL")
      })
    )
  })
})
