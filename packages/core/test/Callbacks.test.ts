import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { ScriptedProvider } from "@reelkit/testing"
import { Duration, Effect, Fiber, Layer, Redacted } from "effect"
import { createServer, request as httpRequest } from "node:http"
import * as CallbackUrls from "../src/CallbackUrls.js"
import * as Callbacks from "../src/Callbacks.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskError from "../src/TaskError.js"
import * as TaskStatus from "../src/TaskStatus.js"
import { clientLayer } from "./utils.js"

const secret = Redacted.make("a-callback-secret-of-at-least-32-characters")
const config: CallbackUrls.Config = { secret, publicBaseUrl: "https://media.example.com/reelkit/", maxBodyBytes: 1024 }
const input = { mode: "text-to-video", prompt: "waves at night", duration: 4 }
const success = ScriptedProvider.succeededWith("https://results.example/cb.mp4")

/** The client (first poll only after an hour, so anything sooner is the callback's doing) behind a real socket. */
const stack = (script: ScriptedProvider.Options["script"], onDelivery?: Callbacks.HandlerOptions["onDelivery"]) =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const router = yield* Callbacks.makeRouter({ onDelivery })
      return HttpServer.serve(router)
    })
  ).pipe(
    Layer.provideMerge(
      clientLayer({ script, client: { pollPlan: { firstPollAfter: Duration.hours(1), interval: Duration.hours(1) } } })
    ),
    Layer.provideMerge(Callbacks.layerConfig(config)),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  )

const post = (taskKey: string, body: unknown, token = CallbackUrls.tokenFor(secret, taskKey)) =>
  Effect.gen(function* () {
    const server = yield* HttpServer.HttpServer
    const address = server.address as HttpServer.TcpAddress
    const response = yield* Effect.promise(() =>
      fetch(`http://127.0.0.1:${address.port}/callbacks/${taskKey}/${token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body)
      })
    )
    return { status: response.status, body: (yield* Effect.promise(() => response.json())) as { outcome: string } }
  })

/** Lets background fibers (the confirmation, the poll) run on the live event loop. */
const settle = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))

describe("Callbacks", () => {
  it("derives a per-task token and rejects any other in constant time", () => {
    const token = CallbackUrls.tokenFor(secret, "tk_1")
    expect(CallbackUrls.verifyToken(secret, "tk_1", token)).toBe(true)
    expect(CallbackUrls.verifyToken(secret, "tk_2", token)).toBe(false)
    expect(CallbackUrls.verifyToken(secret, "tk_1", `${token}x`)).toBe(false)
    expect(CallbackUrls.verifyToken(Redacted.make("another secret"), "tk_1", token)).toBe(false)
    expect(CallbackUrls.urlFor(config, "tk_1")).toBe(`https://media.example.com/reelkit/callbacks/tk_1/${token}`)
  })

  it.scoped("gives each task its own verified callback URL and finishes a wait early on a verified callback", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const handle = yield* client.start(input, { taskKey: "tk_cb" })
      expect((yield* scripted.recording).submits[0]!.callbackUrl).toBe(CallbackUrls.urlFor(config, "tk_cb"))
      const waiting = yield* Effect.fork(client.wait(handle))
      const response = yield* post("tk_cb", { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } })
      expect(response).toEqual({ status: 200, body: { outcome: "accepted" } })
      const record = yield* Fiber.join(waiting)
      expect(record.state).toBe("completed")
      // Exactly one status request: the confirmation. No poll was due for an hour.
      expect((yield* scripted.recording).statusCalls).toHaveLength(1)
    }).pipe(Effect.provide(stack(() => ({ statuses: [success] }))))
  )

  it.scoped("changes nothing on a forged callback (wrong token)", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      yield* client.start(input, { taskKey: "tk_forged" })
      const response = yield* post(
        "tk_forged",
        { status: { _tag: "Succeeded" } },
        CallbackUrls.tokenFor(secret, "tk_other")
      )
      yield* settle
      expect(response.status).toBe(401)
      expect((yield* scripted.recording).statusCalls).toHaveLength(0)
      expect((yield* client.lookup("tk_forged")).state).toBe("submitted")
    }).pipe(Effect.provide(stack(() => ({ statuses: [success] }))))
  )

  it.scoped("trusts the provider's status, not a callback body that lies", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const handle = yield* client.start(input, { taskKey: "tk_liar" })
      const response = yield* post("tk_liar", { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } })
      yield* settle
      expect(response.status).toBe(200)
      expect((yield* scripted.recording).statusCalls).toHaveLength(1)
      const row = yield* client.lookup("tk_liar")
      expect([row.state, row.resultUrls]).toEqual(["processing", []])
    }).pipe(Effect.provide(stack(() => ({ statuses: [new TaskStatus.Processing({})] }))))
  )

  it.scoped("de-duplicates repeated deliveries", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const handle = yield* client.start(input, { taskKey: "tk_dup" })
      const body = { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } }
      const first = yield* post("tk_dup", body)
      yield* settle
      const second = yield* post("tk_dup", body)
      const third = yield* post("tk_dup", body)
      yield* settle
      expect([first.body.outcome, second.body.outcome, third.body.outcome]).toEqual([
        "accepted",
        "duplicate",
        "duplicate"
      ])
      expect([second.status, third.status]).toEqual([200, 200])
      expect((yield* scripted.recording).statusCalls).toHaveLength(1)
      expect((yield* client.lookup("tk_dup")).state).toBe("completed")
    }).pipe(Effect.provide(stack(() => ({ statuses: [success] }))))
  )

  it.scoped("acts on a later delivery when an earlier one was not borne out by the status", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const handle = yield* client.start(input, { taskKey: "tk_early" })
      const body = { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } }
      // The first callback arrives before the status endpoint agrees: nothing changes.
      const early = yield* post("tk_early", body)
      yield* settle
      expect(early.body.outcome).toBe("accepted")
      expect((yield* client.lookup("tk_early")).state).toBe("processing")
      // The provider's retry of the same callback is acted on, not dropped as a duplicate.
      const retried = yield* post("tk_early", body)
      yield* settle
      expect(retried.body.outcome).toBe("accepted")
      expect((yield* client.lookup("tk_early")).state).toBe("completed")
      expect((yield* scripted.recording).statusCalls).toHaveLength(2)
    }).pipe(Effect.provide(stack(() => ({ statuses: [new TaskStatus.Processing({}), success] }))))
  )

  it.scoped("refuses an oversized body with 413 and an unknown task with 404", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      yield* client.start(input, { taskKey: "tk_big" })
      const big = yield* post("tk_big", JSON.stringify({ padding: "x".repeat(4096) }))
      const unknown = yield* post("tk_nobody", {})
      // A chunked body (no Content-Length) over the cap is cut off while reading.
      const server = yield* HttpServer.HttpServer
      const { port } = server.address as HttpServer.TcpAddress
      const chunked = yield* Effect.promise(
        () =>
          new Promise<{ status: number }>((resolve, reject) => {
            const request = httpRequest(
              {
                host: "127.0.0.1",
                port,
                method: "POST",
                path: `/callbacks/tk_big/${CallbackUrls.tokenFor(secret, "tk_big")}`,
                headers: { "transfer-encoding": "chunked" }
              },
              (response) => {
                response.resume()
                resolve({ status: response.statusCode ?? 0 })
              }
            )
            request.on("error", reject)
            for (let index = 0; index < 8; index++) request.write("x".repeat(512))
            request.end()
          })
      )
      expect([big.status, unknown.status, chunked.status]).toEqual([413, 404, 413])
      expect((yield* (yield* ScriptedProvider.ScriptedProvider).recording).statusCalls).toHaveLength(0)
    }).pipe(Effect.provide(stack(() => ({ statuses: [success] }))))
  )

  it.scoped("resolves an ambiguous submit with the remote task id the callback names", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const started = yield* Effect.either(client.start(input, { taskKey: "tk_lost" }))
      expect(started._tag).toBe("Left")
      expect((yield* client.lookup("tk_lost")).state).toBe("ambiguous")
      const [remoteTaskId] = [...(yield* scripted.recording).created.keys()]
      const response = yield* post("tk_lost", { remoteTaskId, status: { _tag: "Succeeded" } })
      expect(response.status).toBe(200)
      yield* settle
      yield* settle
      const row = yield* client.lookup("tk_lost")
      expect([row.state, row.remoteTaskId]).toEqual(["completed", remoteTaskId])
      expect((yield* scripted.recording).submits).toHaveLength(1)
    }).pipe(
      Effect.provide(
        stack(() => ({
          submitFailures: [new TaskError.ServerError({ status: 504, message: "Gateway Timeout" })],
          statuses: [success]
        }))
      )
    )
  )
})
