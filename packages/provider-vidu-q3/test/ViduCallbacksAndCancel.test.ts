// What only the official Vidu transport has: signed callbacks (checked by core's callback router
// through the provider's verifier, still confirmed by a status request) and cancel. Apixo, which
// documents no cancel, refuses with CancelNotSupported. Real sockets; TestClock; waiting is on the
// router's delivery and confirmation signals and the fakes' recordings.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import { AccountLimits, CallbackUrls, Callbacks, ResultStorage, TaskClient, TaskError, TaskLedger } from "@reelkit/core"
import { FakeApixo, FakeVidu } from "@reelkit/testing"
import { Clock, Context, Duration, Effect, Exit, Fiber, Layer, Option, Queue, Redacted, TestClock } from "effect"
import { createServer as createHttpServer } from "node:http"
import { createServer } from "node:net"
import * as ViduQ3 from "../src/ViduQ3.js"

const callbackSecret = Redacted.make("vidu-callback-secret-0123456789abcdef0123")
const input = { mode: "text-to-video", prompt: "a kite over dunes", duration: 4 } as const

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number }
    server.close(() => resume(Effect.succeed(port)))
  })
})

type Signal = { readonly taskKey: string; readonly outcome: string }

/** FakeVidu, a client on it, and our callback router serving the tasks' verified URLs. */
const setup = (fakeOptions: FakeVidu.Options = {}, firstPollAfter: Duration.DurationInput = Duration.minutes(10)) =>
  Effect.gen(function* () {
    const fake = yield* FakeVidu.make({
      timings: { processingAfter: Duration.seconds(5), completeAfter: Duration.seconds(30) },
      ...fakeOptions
    })
    const ledger = yield* TaskLedger.makeMemory
    const deliveries = yield* Queue.unbounded<Signal>()
    const confirmations = yield* Queue.unbounded<Signal>()
    const port = yield* freePort
    const config = { secret: callbackSecret, publicBaseUrl: `http://127.0.0.1:${port}/hooks` }
    const clientLayer = TaskClient.layer({
      pollPlan: { firstPollAfter: Duration.decode(firstPollAfter), interval: Duration.seconds(5) }
    }).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          ViduQ3.layerVidu({ apiKey: fake.apiKey, baseUrl: fake.url }),
          Layer.succeed(TaskLedger.TaskLedger, ledger),
          AccountLimits.layerMemory(),
          ResultStorage.layerNone,
          CallbackUrls.layer(config).pipe(Layer.orDie)
        )
      ),
      Layer.provideMerge(NodeHttpClient.layerUndici)
    )
    // The router is mounted under /hooks, as an application would: the signature covers the URL we
    // handed out, not the path the router sees.
    const mounted = Layer.unwrapScoped(
      Effect.map(
        Callbacks.makeRouter({
          minConfirmInterval: Duration.zero,
          onDelivery: (taskKey, outcome) => Queue.unsafeOffer(deliveries, { taskKey, outcome }),
          onConfirmation: (taskKey, outcome) => Queue.unsafeOffer(confirmations, { taskKey, outcome })
        }),
        (router) => HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.mount("/hooks", router)))
      )
    ).pipe(
      Layer.provideMerge(clientLayer),
      Layer.provideMerge(NodeHttpServer.layer(createHttpServer, { port, host: "127.0.0.1" }))
    )
    const context = yield* Layer.build(mounted)
    const client = Context.get(context, TaskClient.TaskClient)
    const urlOf = (taskKey: string) => CallbackUrls.urlFor(config, taskKey)
    /** POSTs a callback body with the given headers to the task's verified URL; the HTTP status. */
    const deliver = (taskKey: string, body: unknown, headers: Record<string, string>) =>
      Effect.promise(() =>
        fetch(urlOf(taskKey), {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: JSON.stringify(body)
        }).then((response) => response.status)
      )
    /** Headers Vidu would send now for this task's URL, signed with `apiKey` (default the account's). */
    const signed = (
      taskKey: string,
      options: { readonly apiKey?: string; readonly at?: number; readonly nonce?: string } = {}
    ) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        FakeVidu.signedHeaders({
          apiKey: options.apiKey ?? Redacted.value(fake.apiKey),
          url: urlOf(taskKey),
          date: new Date(options.at ?? now).toUTCString(),
          nonce: options.nonce ?? `nonce-${taskKey}-${now}`
        })
      )
    const statuses = (taskId: string) =>
      fake.requests.filter((request) => request.route === "status" && request.taskId === taskId).length
    return { fake, ledger, client, deliver, signed, statuses, deliveries, confirmations }
  })

const processingBody = (taskId: string) => ({
  id: taskId,
  state: "processing",
  err_code: "",
  credits: 4,
  creations: []
})

describe("signed Vidu callbacks through core's callback router", () => {
  it.scoped("FakeVidu's own signed callback finishes the wait long before the first poll", () =>
    Effect.gen(function* () {
      const { client, fake, statuses, confirmations } = yield* setup()
      const handle = yield* client.start(input, { taskKey: "tk_signed" })
      const waiting = yield* Effect.fork(client.wait(handle))
      yield* TestClock.adjust(Duration.seconds(30))
      yield* fake.awaitCallbacks(1)
      expect(yield* Queue.take(confirmations)).toEqual({ taskKey: "tk_signed", outcome: "confirmed" })
      const record = yield* Fiber.join(waiting)
      expect(record.state).toBe("completed")
      expect(fake.callbacks.map((callback) => callback.outcome)).toEqual(["delivered"])
      expect(fake.callbacks[0]!.headers["x-hmac-signature"]).toMatch(/^[A-Za-z0-9+/]+=*$/)
      // Confirmed by exactly one status request (the first poll was 10 minutes away).
      expect(statuses(handle.remoteTaskId)).toBe(1)
    })
  )

  it.scoped("a wrong signature, a stale Date or no signature at all: 401, nothing asked, nothing changed", () =>
    Effect.gen(function* () {
      const { client, deliver, signed, statuses, deliveries } = yield* setup()
      const handle = yield* client.start(input, { taskKey: "tk_forged" })
      const body = {
        id: handle.remoteTaskId,
        state: "success",
        err_code: "",
        creations: [{ url: "https://evil.example/v.mp4" }]
      }
      const now = yield* Clock.currentTimeMillis
      const wrongKey = yield* signed("tk_forged", { apiKey: "someone-elses-vidu-key" })
      const stale = yield* signed("tk_forged", { at: now - 10 * 60_000 })
      const answers = [
        yield* deliver("tk_forged", body, wrongKey),
        yield* deliver("tk_forged", body, stale),
        yield* deliver("tk_forged", body, {})
      ]
      expect(answers).toEqual([401, 401, 401])
      expect(yield* Queue.takeAll(deliveries)).toHaveLength(3)
      expect(statuses(handle.remoteTaskId)).toBe(0)
      expect((yield* client.lookup("tk_forged")).state).toBe("submitted")
    })
  )

  it.scoped("a replayed delivery (same nonce) is a duplicate: confirmed once, never twice", () =>
    Effect.gen(function* () {
      const { client, deliver, signed, statuses, deliveries, confirmations } = yield* setup()
      const handle = yield* client.start(input, { taskKey: "tk_replay" })
      const headers = yield* signed("tk_replay")
      expect(yield* deliver("tk_replay", processingBody(handle.remoteTaskId), headers)).toBe(200)
      expect(yield* Queue.take(confirmations)).toEqual({ taskKey: "tk_replay", outcome: "confirmed" })
      // The same bytes again, as an eavesdropper would replay them.
      expect(yield* deliver("tk_replay", processingBody(handle.remoteTaskId), headers)).toBe(200)
      expect(Array.from(yield* Queue.takeAll(deliveries)).map((delivery) => delivery.outcome)).toEqual([
        "accepted",
        "duplicate"
      ])
      expect(statuses(handle.remoteTaskId)).toBe(1)
      // A fresh nonce is a new delivery and is confirmed again.
      expect(
        yield* deliver("tk_replay", processingBody(handle.remoteTaskId), yield* signed("tk_replay", { nonce: "fresh" }))
      ).toBe(200)
      expect(yield* Queue.take(confirmations)).toEqual({ taskKey: "tk_replay", outcome: "confirmed" })
      expect(statuses(handle.remoteTaskId)).toBe(2)
    })
  )

  it.scoped("a correctly signed body that lies (success while Vidu says processing) changes nothing", () =>
    Effect.gen(function* () {
      const { client, deliver, signed, statuses, confirmations } = yield* setup()
      const handle = yield* client.start(input, { taskKey: "tk_lie" })
      yield* TestClock.adjust(Duration.seconds(10))
      const lie = {
        id: handle.remoteTaskId,
        state: "success",
        err_code: "",
        creations: [{ id: "c", url: "https://evil.example/fake.mp4" }]
      }
      expect(yield* deliver("tk_lie", lie, yield* signed("tk_lie"))).toBe(200)
      expect(yield* Queue.take(confirmations)).toEqual({ taskKey: "tk_lie", outcome: "confirmed" })
      expect(statuses(handle.remoteTaskId)).toBe(1)
      const row = yield* client.lookup("tk_lie")
      expect([row.state, row.resultUrls]).toEqual(["processing", []])
    })
  )
})

describe("cancel", () => {
  it.scoped(
    "on Vidu: TaskClient.cancel of a queued task cancels it with Vidu, records it cancelled, ends its waiter",
    () =>
      Effect.gen(function* () {
        const { client, fake } = yield* setup({}, Duration.seconds(10))
        const handle = yield* client.start(input, { taskKey: "tk_cancel" })
        const waiting = yield* Effect.fork(client.wait(handle))
        yield* TestClock.adjust(Duration.seconds(1))
        const cancelled = yield* client.cancel("tk_cancel")
        expect([cancelled.state, cancelled.failCode]).toEqual(["cancelled", "UserCancelled"])
        const exit = yield* Fiber.await(waiting)
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toBeInstanceOf(
          TaskError.TaskCancelled
        )
        const cancels = fake.requests.filter((request) => request.route === "cancel")
        expect(cancels.map((request) => [request.taskId, request.status, JSON.parse(request.body ?? "null")])).toEqual([
          [handle.remoteTaskId, 200, { id: handle.remoteTaskId }]
        ])
        expect(fake.tasks[0]!.cancelledAt).toBeDefined()
        // Vidu charges nothing for a task cancelled before it ran: the bill is refunded.
        expect(fake.bills.map((bill) => bill.credits)).toEqual([4, -4])
      })
  )

  it.scoped(
    "on Vidu: a task cancelled elsewhere (Vidu's console) ends its waiter with TaskCancelled at the next poll",
    () =>
      Effect.gen(function* () {
        const { client, fake } = yield* setup({}, Duration.seconds(3))
        const handle = yield* client.start(input, { taskKey: "tk_console" })
        const waiting = yield* Effect.fork(client.wait(handle))
        // Someone cancels it with the same account, outside this client.
        const answer = yield* Effect.promise(() =>
          fetch(`${fake.url}/tasks/${handle.remoteTaskId}/cancel`, {
            method: "POST",
            headers: { authorization: `Token ${Redacted.value(fake.apiKey)}`, "content-type": "application/json" },
            body: JSON.stringify({ id: handle.remoteTaskId })
          }).then((response) => response.status)
        )
        expect(answer).toBe(200)
        yield* TestClock.adjust(Duration.seconds(3))
        const exit = yield* Fiber.await(waiting)
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toBeInstanceOf(
          TaskError.TaskCancelled
        )
        const row = yield* client.lookup("tk_console")
        expect([row.state, row.failCode]).toEqual(["cancelled", "UserCancelled"])
      })
  )

  it.scoped("on Vidu: a task already generating is refused by Vidu (RequestRejected) and stays in flight", () =>
    Effect.gen(function* () {
      const { client } = yield* setup({}, Duration.seconds(6))
      const handle = yield* client.start(input, { taskKey: "tk_late" })
      yield* TestClock.adjust(Duration.seconds(6))
      yield* client.refresh(handle.taskKey)
      expect((yield* client.lookup("tk_late")).state).toBe("processing")
      const refused = yield* Effect.flip(client.cancel("tk_late"))
      expect(refused).toMatchObject({ _tag: "RequestRejected", status: 400 })
      expect(refused.message).toContain("can not cancel")
      expect((yield* client.lookup("tk_late")).state).toBe("processing")
    })
  )

  it.scoped("on apixo: CancelNotSupported, and no request is sent", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({ timings: { processingAfter: "5 seconds", completeAfter: "30 seconds" } })
      const ledger = yield* TaskLedger.makeMemory
      const layer = TaskClient.layer().pipe(
        Layer.provideMerge(
          Layer.mergeAll(
            ViduQ3.layer({ apiKey: fake.apiKey, baseUrl: fake.url }),
            Layer.succeed(TaskLedger.TaskLedger, ledger),
            AccountLimits.layerMemory(),
            ResultStorage.layerNone,
            CallbackUrls.layerNone
          )
        ),
        Layer.provideMerge(NodeHttpClient.layerUndici)
      )
      const client = Context.get(yield* Layer.build(layer), TaskClient.TaskClient)
      yield* client.start(input, { taskKey: "tk_apixo" })
      const before = fake.requests.length
      const refused = yield* Effect.flip(client.cancel("tk_apixo"))
      expect(refused).toEqual(new TaskError.CancelNotSupported({ providerId: "apixo", modelId: "vidu-q3" }))
      expect(fake.requests.length).toBe(before)
      expect(Option.getOrThrow(yield* ledger.get("tk_apixo")).state).toBe("submitted")
    })
  )
})

describe("warnings on the handle", () => {
  it.scoped("a field Vidu cannot carry is a warning on the task handle; the task is still sent", () =>
    Effect.gen(function* () {
      const { client, fake } = yield* setup()
      const handle = yield* client.start({ ...input, style: "anime", bgm: false }, { taskKey: "tk_warn" })
      expect(handle.warnings?.map((warning) => warning.field)).toEqual(["input.style", "input.bgm"])
      const sent = JSON.parse(fake.requests.find((request) => request.route === "generate")!.body ?? "{}")
      expect(sent).not.toHaveProperty("style")
      expect(sent).not.toHaveProperty("bgm")
    })
  )
})
