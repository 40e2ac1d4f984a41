// HttpTransport over a real socket: what one request becomes (an answer, a TransportError that
// says whether the request may have arrived, a timeout) and how secrets leave every text.
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Schema, TestClock } from "effect"
import { HttpTransport, TaskError } from "../src/index.js"

const secret = "sk-http-transport-secret"
const redact = HttpTransport.redactorFor(secret)
const names: HttpTransport.CallNames = { connect: "demo submit", build: "demo submit request", timeout: "demo call" }
const options = { names, timeout: Duration.seconds(10), redact }

/** A server on a real port; `arrived` completes when the first request has reached it. */
const serve = (handler: (request: Http.IncomingMessage, response: Http.ServerResponse) => void) =>
  Effect.gen(function* () {
    const arrived = yield* Deferred.make<void>()
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer((request, response) => {
          Deferred.unsafeDone(arrived, Effect.void)
          handler(request, response)
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const { port } = server.address() as AddressInfo
    return { url: `http://127.0.0.1:${port}/x`, arrived }
  })

/** A port nothing listens on: opened, then closed. */
const refusedUrl = Effect.gen(function* () {
  const { url } = yield* Effect.scoped(serve(() => {}))
  return url
})

const passThrough = (received: HttpTransport.Received) => Effect.succeed(received)

describe("HttpTransport", () => {
  it.scoped("hands the whole answer to the classifier: status, Retry-After and body", () =>
    Effect.gen(function* () {
      const server = yield* serve((_, response) => {
        response.writeHead(429, { "retry-after": "7" }).end('{"message":"slow down"}')
      })
      const client = yield* HttpClient.HttpClient
      const received = yield* HttpTransport.execute(client, HttpClientRequest.get(server.url), options, passThrough)
      expect(received).toMatchObject({ httpStatus: 429, retryAfter: "7", bodyText: '{"message":"slow down"}' })
      expect(HttpTransport.parseRetryAfter(received.retryAfter, received.now)).toBe(7000)
      const failed = yield* Effect.flip(
        HttpTransport.execute(client, HttpClientRequest.get(server.url), options, () => Effect.fail("classified"))
      )
      expect(failed).toBe("classified")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.scoped("baseClient sends every request under the base URL, authorised, asking for JSON", () =>
    Effect.gen(function* () {
      const seen: Array<Http.IncomingHttpHeaders & { url: string | undefined }> = []
      const server = yield* serve((request, response) => {
        seen.push({ ...request.headers, url: request.url })
        response.end("{}")
      })
      const client = HttpTransport.baseClient(yield* HttpClient.HttpClient, server.url, (request) =>
        HttpClientRequest.setHeader(request, "authorization", `Token ${secret}`)
      )
      const received = yield* HttpTransport.execute(client, HttpClientRequest.get("/tasks/1"), options, passThrough)
      expect(received.httpStatus).toBe(200)
      expect(seen).toMatchObject([{ url: "/x/tasks/1", authorization: `Token ${secret}`, accept: "application/json" }])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.scoped("a refused connection proves nothing was sent", () =>
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const error = yield* Effect.flip(
        HttpTransport.execute(client, HttpClientRequest.get(yield* refusedUrl), options, passThrough)
      )
      expect(error).toBeInstanceOf(TaskError.TransportError)
      expect(error).toMatchObject({ requestSent: false })
      expect(error.message).toMatch(/^The demo submit could not connect \(ECONNREFUSED\); nothing was sent: /)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.scoped("a connection dropped after the request arrived may have reached the server", () =>
    Effect.gen(function* () {
      const server = yield* serve((request) => request.socket.destroy())
      const client = yield* HttpClient.HttpClient
      const error = yield* Effect.flip(
        HttpTransport.execute(client, HttpClientRequest.get(server.url), options, passThrough)
      )
      expect(error).toMatchObject({ _tag: "TransportError", requestSent: true })
      expect(error.message).toMatch(/^The demo submit failed after the connection opened/)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.scoped("a request the platform cannot build fails before anything is sent", () =>
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const error = yield* Effect.flip(
        HttpTransport.execute(client, HttpClientRequest.get(`http://[${secret}`), options, passThrough)
      )
      expect(error).toMatchObject({ _tag: "TransportError", requestSent: false })
      expect(error.message).toBe("The demo submit request could not be built (InvalidUrl)")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.scoped("no answer within the timeout counts as sent (TestClock)", () =>
    Effect.gen(function* () {
      const server = yield* serve(() => {})
      const client = yield* HttpClient.HttpClient
      const fiber = yield* Effect.fork(
        Effect.flip(HttpTransport.execute(client, HttpClientRequest.get(server.url), options, passThrough))
      )
      yield* Deferred.await(server.arrived)
      yield* TestClock.adjust("9 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "TransportError", requestSent: true })
      expect(error.message).toBe("The demo call got no answer within 10s; it may have reached the server")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))
  )

  it.effect("a body that does not decode is a DecodeError without the secret", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        HttpTransport.decodeBody(Schema.Struct({ id: Schema.Number }), { id: secret }, "no id", redact)
      )
      expect(error).toBeInstanceOf(TaskError.DecodeError)
      expect(error.message).toMatch(/^no id: /)
      expect(error.message).toContain("[redacted]")
      expect(error.message).not.toContain(secret)
    })
  )

  it("removes secrets from texts and JSON values, and bounds texts", () => {
    expect(HttpTransport.redactValue({ [secret]: [`a ${secret}`, 1, null] }, redact)).toEqual({
      "[redacted]": ["a [redacted]", 1, null]
    })
    expect(HttpTransport.scrub(`${secret}${"x".repeat(400)}`, redact)).toBe(`[redacted]${"x".repeat(290)}...`)
  })

  it("parses JSON bodies and says when a body is not JSON", () => {
    expect(HttpTransport.parseJson('{"a":[1]}')).toEqual({ ok: true, value: { a: [1] } })
    expect(HttpTransport.parseJson("<html>bad gateway</html>")).toEqual({ ok: false })
  })

  it("accepts only absolute http(s) URLs with a host", () => {
    expect(HttpTransport.isHttpUrl("https://api.example.com/v1")).toBe(true)
    expect(HttpTransport.isHttpUrl("http://127.0.0.1:8080")).toBe(true)
    for (const bad of ["ftp://example.com", "/relative", "not a url", "file:///etc/passwd"]) {
      expect(HttpTransport.isHttpUrl(bad), bad).toBe(false)
    }
  })
})
