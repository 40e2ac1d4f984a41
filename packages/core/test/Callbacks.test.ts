// Callbacks over a real socket: the router served by NodeHttpServer on port 0, deliveries sent
// with fetch. A callback is a hint only: each test waits for the handler's own signal that a
// confirmation has finished (onConfirmation), never for time; minConfirmInterval is TestClock time.
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { ScriptedProvider } from "@reelkit/testing"
import { Duration, Effect, Fiber, Layer, Queue, Redacted, TestClock } from "effect"
import { createServer, request as httpRequest } from "node:http"
import * as CallbackUrls from "../src/CallbackUrls.js"
import * as Callbacks from "../src/Callbacks.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskError from "../src/TaskError.js"
import * as TaskLedger from "../src/TaskLedger.js"
import { clientLayer, failureTag, processing, recording } from "./utils.js"

const secret = Redacted.make("a-callback-secret-of-at-least-32-characters")
const config: CallbackUrls.Config = { secret, publicBaseUrl: "https://media.example.com/reelkit/", maxBodyBytes: 1024 }
const input = { mode: "text-to-video", prompt: "waves at night", duration: 4 }
const success = ScriptedProvider.succeededWith("https://results.example/cb.mp4")

type Confirmation = readonly [taskKey: string, outcome: Callbacks.ConfirmationOutcome]

/**
 * The client (first poll only after an hour, so anything sooner is the callback's doing) behind a
 * real socket. Every finished confirmation is put on `confirmations`.
 */
const stack = (
  script: ScriptedProvider.Options["script"],
  confirmations: Queue.Queue<Confirmation>,
  handler: Callbacks.HandlerOptions = {}
) =>
  Layer.unwrapScoped(
    Effect.map(
      Callbacks.makeRouter({
        ...handler,
        onConfirmation: (taskKey, outcome) => {
          confirmations.unsafeOffer([taskKey, outcome])
        }
      }),
      (router) => HttpServer.serve(router)
    )
  ).pipe(
    Layer.provideMerge(
      clientLayer({
        script,
        callbackUrls: Layer.orDie(CallbackUrls.layer(config)),
        client: { pollPlan: { firstPollAfter: Duration.hours(1), interval: Duration.hours(1) } }
      })
    ),
    Layer.provideMerge(Callbacks.layerConfig(config)),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  )

/** A test with its own confirmation queue and stack. */
const withStack = <A, E, R>(
  script: ScriptedProvider.Options["script"],
  body: (confirmations: Queue.Queue<Confirmation>) => Effect.Effect<A, E, R>,
  handler?: Callbacks.HandlerOptions
) =>
  Effect.flatMap(Queue.unbounded<Confirmation>(), (confirmations) =>
    body(confirmations).pipe(Effect.provide(stack(script, confirmations, handler)))
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

describe("CallbackUrls", () => {
  it.effect("derives a per-task token and rejects any other in constant time", () =>
    Effect.sync(() => {
      const token = CallbackUrls.tokenFor(secret, "tk_1")
      expect(CallbackUrls.verifyToken(secret, "tk_1", token)).toBe(true)
      expect(CallbackUrls.verifyToken(secret, "tk_2", token)).toBe(false)
      expect(CallbackUrls.verifyToken(secret, "tk_1", `${token}x`)).toBe(false)
      expect(CallbackUrls.verifyToken(Redacted.make("another secret"), "tk_1", token)).toBe(false)
      expect(CallbackUrls.urlFor(config, "tk_1")).toBe(`https://media.example.com/reelkit/callbacks/tk_1/${token}`)
    })
  )

  it.effect("refuses a short secret and a base URL that is not http(s), naming the field", () =>
    Effect.gen(function* () {
      const short = yield* Effect.flip(CallbackUrls.validate({ ...config, secret: Redacted.make("short") }))
      expect(short).toMatchObject({ _tag: "InvalidCallbackConfig", field: "secret" })
      const ftp = yield* Effect.flip(CallbackUrls.validate({ ...config, publicBaseUrl: "ftp://media.example.com" }))
      expect(ftp).toMatchObject({ _tag: "InvalidCallbackConfig", field: "publicBaseUrl" })
    })
  )
})

describe("Callbacks", () => {
  it.scoped("gives each task its own verified callback URL and finishes a wait early on a verified callback", () =>
    withStack(
      () => ({ statuses: [success] }),
      () =>
        Effect.gen(function* () {
          const client = yield* TaskClient.TaskClient
          const handle = yield* client.start(input, { taskKey: "tk_cb" })
          expect((yield* recording).submits[0]!.callbackUrl).toBe(CallbackUrls.urlFor(config, "tk_cb"))
          const waiting = yield* Effect.fork(client.wait(handle))
          const response = yield* post("tk_cb", { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } })
          expect(response).toEqual({ status: 200, body: { outcome: "accepted" } })
          // No clock moves: the wait ends because the confirmation's status said so.
          const record = yield* Fiber.join(waiting)
          expect(record.state).toBe("completed")
          // Exactly one status request: the confirmation. No poll was due for an hour.
          expect((yield* recording).statusCalls).toHaveLength(1)
        })
    )
  )

  it.scoped("changes nothing on a forged callback (wrong token)", () =>
    withStack(
      () => ({ statuses: [success] }),
      (confirmations) =>
        Effect.gen(function* () {
          const client = yield* TaskClient.TaskClient
          yield* client.start(input, { taskKey: "tk_forged" })
          const response = yield* post(
            "tk_forged",
            { status: { _tag: "Succeeded" } },
            CallbackUrls.tokenFor(secret, "tk_other")
          )
          expect(response).toEqual({ status: 401, body: { outcome: "unauthorized" } })
          // A 401 is answered before anything is started: there is no confirmation to wait for.
          expect(yield* Queue.size(confirmations)).toBe(0)
          expect((yield* recording).statusCalls).toHaveLength(0)
          expect((yield* client.lookup("tk_forged")).state).toBe("submitted")
        })
    )
  )

  it.scoped("trusts the provider's status, not a callback body that lies", () =>
    withStack(
      () => ({ statuses: [processing] }),
      (confirmations) =>
        Effect.gen(function* () {
          const client = yield* TaskClient.TaskClient
          const handle = yield* client.start(input, { taskKey: "tk_liar" })
          const response = yield* post("tk_liar", { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } })
          expect(response.status).toBe(200)
          expect(yield* Queue.take(confirmations)).toEqual(["tk_liar", "confirmed"])
          expect((yield* recording).statusCalls).toHaveLength(1)
          const row = yield* client.lookup("tk_liar")
          expect([row.state, row.resultUrls]).toEqual(["processing", []])
        })
    )
  )

  it.scoped("answers repeated deliveries for a finished task as duplicates, with no status request", () =>
    withStack(
      () => ({ statuses: [success] }),
      (confirmations) =>
        Effect.gen(function* () {
          const client = yield* TaskClient.TaskClient
          const handle = yield* client.start(input, { taskKey: "tk_dup" })
          const body = { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } }
          const first = yield* post("tk_dup", body)
          expect(yield* Queue.take(confirmations)).toEqual(["tk_dup", "confirmed"])
          const second = yield* post("tk_dup", body)
          const third = yield* post("tk_dup", body)
          expect([first.body.outcome, second.body.outcome, third.body.outcome]).toEqual([
            "accepted",
            "duplicate",
            "duplicate"
          ])
          expect([second.status, third.status]).toEqual([200, 200])
          expect((yield* recording).statusCalls).toHaveLength(1)
          expect((yield* client.lookup("tk_dup")).state).toBe("completed")
        })
    )
  )

  it.scoped("acts on a later delivery when an earlier one was not borne out, after minConfirmInterval", () =>
    withStack(
      () => ({ statuses: [processing, success] }),
      (confirmations) =>
        Effect.gen(function* () {
          const client = yield* TaskClient.TaskClient
          const handle = yield* client.start(input, { taskKey: "tk_early" })
          const body = { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } }
          // The first callback arrives before the status endpoint agrees: nothing changes.
          expect((yield* post("tk_early", body)).body.outcome).toBe("accepted")
          expect(yield* Queue.take(confirmations)).toEqual(["tk_early", "confirmed"])
          expect((yield* client.lookup("tk_early")).state).toBe("processing")
          // The provider's retry of the same callback is acted on, not dropped, but only once
          // the task's confirmation interval has passed.
          expect((yield* post("tk_early", body)).body.outcome).toBe("accepted")
          yield* TestClock.adjust("4 seconds")
          expect((yield* recording).statusCalls).toHaveLength(1)
          yield* TestClock.adjust("1 second")
          expect(yield* Queue.take(confirmations)).toEqual(["tk_early", "confirmed"])
          expect((yield* client.lookup("tk_early")).state).toBe("completed")
          expect((yield* recording).statusCalls).toHaveLength(2)
        })
    )
  )

  it.scoped("refuses an oversized body with 413 and an unknown task with 404", () =>
    withStack(
      () => ({ statuses: [success] }),
      () =>
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
          expect((yield* recording).statusCalls).toHaveLength(0)
        })
    )
  )

  it.scoped("refuses a body that is not JSON with 400, before the ledger or the provider are asked", () =>
    withStack(
      () => ({ statuses: [success] }),
      (confirmations) =>
        Effect.gen(function* () {
          const client = yield* TaskClient.TaskClient
          yield* client.start(input, { taskKey: "tk_garbled" })
          // Refused before the task is looked up: an unknown task's garbled body is a 400 too, not a 404.
          const garbled = yield* post("tk_garbled", "{not json")
          const unknown = yield* post("tk_nobody", "{not json")
          expect([garbled, unknown]).toEqual([
            { status: 400, body: { outcome: "unreadable" } },
            { status: 400, body: { outcome: "unreadable" } }
          ])
          expect(yield* Queue.size(confirmations)).toBe(0)
          expect((yield* recording).statusCalls).toHaveLength(0)
          expect((yield* client.lookup("tk_garbled")).state).toBe("submitted")
        })
    )
  )

  it.scoped("600 replays of one callback URL cost at most one status request per minConfirmInterval", () =>
    withStack(
      () => ({ statuses: [processing] }),
      () =>
        Effect.gen(function* () {
          const client = yield* TaskClient.TaskClient
          const handle = yield* client.start(input, { taskKey: "tk_replayed" })
          const body = { remoteTaskId: handle.remoteTaskId, status: { _tag: "Succeeded" } }
          const outcomes: Record<string, number> = {}
          // 600 deliveries, 10 at a time, one round per TestClock second: a minute of replays.
          for (let round = 0; round < 60; round++) {
            const answers = yield* Effect.all(
              Array.from({ length: 10 }, () => post("tk_replayed", body)),
              { concurrency: "unbounded" }
            )
            for (const answer of answers) outcomes[answer.body.outcome] = (outcomes[answer.body.outcome] ?? 0) + 1
            yield* TestClock.adjust("1 second")
          }
          expect((outcomes.accepted ?? 0) + (outcomes.duplicate ?? 0)).toBe(600)
          // One at once, then at most one per 10 s over 60 s: 7 at most; and the replays keep
          // being confirmed (coalesced, not dropped for good).
          const statusCalls = (yield* recording).statusCalls.length
          expect(statusCalls).toBeLessThanOrEqual(7)
          expect(statusCalls).toBeGreaterThanOrEqual(6)
        }),
      { minConfirmInterval: "10 seconds" }
    )
  )
})

describe("Callbacks on an ambiguous task", () => {
  // tk_other is submitted normally; tk_lost's submit got a 504, yet the server created it.
  const script: ScriptedProvider.Options["script"] = (_input, taskKey) =>
    taskKey === "tk_lost"
      ? {
          submitFailures: [new TaskError.ServerError({ status: 504, message: "Gateway Timeout" })],
          statuses: [success]
        }
      : { statuses: [processing] }

  const setUp = Effect.gen(function* () {
    const client = yield* TaskClient.TaskClient
    const other = yield* client.start(input, { taskKey: "tk_other" })
    expect(failureTag(yield* Effect.exit(client.start({ ...input, prompt: "lost" }, { taskKey: "tk_lost" })))).toBe(
      "SubmitOutcomeUnknown"
    )
    const created = [...(yield* recording).created].find(([, task]) => task.taskKey === "tk_lost")![0]
    return { client, other, created }
  })

  it.scoped("a callback on its URL naming another row's remote id changes nothing", () =>
    withStack(script, (confirmations) =>
      Effect.gen(function* () {
        const { client, other } = yield* setUp
        const before = yield* client.lookup("tk_other")
        const response = yield* post("tk_lost", { remoteTaskId: other.remoteTaskId, status: { _tag: "Succeeded" } })
        expect(response.body.outcome).toBe("accepted")
        expect(yield* Queue.take(confirmations)).toEqual(["tk_lost", "refused"])
        const lost = yield* client.lookup("tk_lost")
        expect([lost.state, lost.remoteTaskId]).toEqual(["ambiguous", undefined])
        expect(yield* client.lookup("tk_other")).toEqual(before)
        expect((yield* recording).statusCalls).toHaveLength(0)
      })
    )
  )

  it.scoped("a callback naming no remote id, or one the provider does not know, changes nothing", () =>
    withStack(
      script,
      (confirmations) =>
        Effect.gen(function* () {
          const { client } = yield* setUp
          yield* post("tk_lost", { status: { _tag: "Succeeded" } })
          expect(yield* Queue.take(confirmations)).toEqual(["tk_lost", "refused"])
          yield* post("tk_lost", { remoteTaskId: "task_999999", status: { _tag: "Succeeded" } })
          yield* TestClock.adjust("1 second")
          const [, outcome] = yield* Queue.take(confirmations)
          expect(outcome).not.toBe("confirmed")
          const lost = yield* client.lookup("tk_lost")
          expect([lost.state, lost.remoteTaskId]).toEqual(["ambiguous", undefined])
          expect(
            Array.from(yield* (yield* TaskLedger.TaskLedger).list(), (row) => row.remoteTaskId).filter(Boolean)
          ).toHaveLength(1)
        }),
      { minConfirmInterval: "1 second" }
    )
  )

  it.scoped("a genuine callback, borne out by the provider's status for that id, resolves it", () =>
    withStack(script, (confirmations) =>
      Effect.gen(function* () {
        const { client, created } = yield* setUp
        const response = yield* post("tk_lost", { remoteTaskId: created, status: { _tag: "Succeeded" } })
        expect(response.body.outcome).toBe("accepted")
        expect(yield* Queue.take(confirmations)).toEqual(["tk_lost", "confirmed"])
        const row = yield* client.lookup("tk_lost")
        expect([row.state, row.remoteTaskId]).toEqual(["completed", created])
        // It was resolved, never sent again.
        expect((yield* recording).submits.filter((call) => call.taskKey === "tk_lost")).toHaveLength(1)
      })
    )
  )
})
