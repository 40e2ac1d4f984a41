// The lifecycle's promises ("submitted once, never lost, never hangs") against the fake apixo
// server on a real socket, through the real apixo transport: a server that never answers, a
// Retry-After past the caller's deadline, interrupts in each phase, and a callback that tries to
// re-point an ambiguous task at another task's video. Time is the TestClock's; waiting is on the
// fake's recordings and the callback handler's signals, never on real time.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { AccountLimits, CallbackUrls, Callbacks, ResultStorage, TaskClient, TaskLedger } from "@reelkit/core"
import { FakeApixo } from "@reelkit/testing"
import { Context, Duration, Effect, Exit, Fiber, Layer, Option, Queue, Redacted, Stream, TestClock } from "effect"
import { createServer as createHttpServer } from "node:http"
import { createServer } from "node:net"
import * as ViduQ3 from "../src/ViduQ3.js"
import * as ViduQ3Input from "../src/ViduQ3Input.js"

const callbackSecret = Redacted.make("lifecycle-callback-secret-0123456789abcdef")
const input: ViduQ3Input.ViduQ3Input = { mode: "text-to-video", prompt: "a kite over dunes", duration: 4 }

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number }
    server.close(() => resume(Effect.succeed(port)))
  })
})

const generates = (fake: FakeApixo.Service) => fake.requests.filter((request) => request.route === "generate")
const statusesOf = (fake: FakeApixo.Service, taskId: string) =>
  fake.requests.filter((request) => request.route === "status" && request.taskId === taskId)

/** The fake, a client on it over a shared memory ledger, and (optionally) our callback server. */
const setup = (options: {
  readonly fake?: FakeApixo.Options
  readonly client?: TaskClient.Options
  readonly ledger?: TaskLedger.Service
  readonly callbacks?: boolean
  readonly minConfirmInterval?: Duration.DurationInput
}) =>
  Effect.gen(function* () {
    const fake = yield* FakeApixo.make({
      models: { "vidu-q3": { inputSchema: ViduQ3Input.ViduQ3Input } },
      timings: { processingAfter: Duration.seconds(5), completeAfter: Duration.seconds(30) },
      ...options.fake
    })
    const ledger = options.ledger ?? (yield* TaskLedger.makeMemory)
    const confirmations = yield* Queue.unbounded<{ readonly taskKey: string; readonly outcome: string }>()
    const callbackPort = yield* freePort
    const callbackBase = `http://127.0.0.1:${callbackPort}`
    const clientLayer = TaskClient.layer({
      pollPlan: { firstPollAfter: Duration.minutes(10), interval: Duration.seconds(5) },
      ...options.client
    }).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          ViduQ3.layer({ apiKey: fake.apiKey, baseUrl: fake.url }),
          Layer.succeed(TaskLedger.TaskLedger, ledger),
          AccountLimits.layerMemory(),
          ResultStorage.layerNone,
          options.callbacks === true
            ? CallbackUrls.layer({ secret: callbackSecret, publicBaseUrl: callbackBase }).pipe(Layer.orDie)
            : Layer.merge(
                CallbackUrls.layerNone,
                Callbacks.layerConfig({ secret: callbackSecret, publicBaseUrl: callbackBase })
              )
        )
      ),
      Layer.provideMerge(NodeHttpClient.layerUndici)
    )
    const serving = Callbacks.layerServe({
      minConfirmInterval: options.minConfirmInterval ?? Duration.zero,
      onConfirmation: (taskKey, outcome) => Queue.unsafeOffer(confirmations, { taskKey, outcome })
    }).pipe(
      Layer.provideMerge(clientLayer),
      Layer.provideMerge(NodeHttpServer.layer(createHttpServer, { port: callbackPort, host: "127.0.0.1" }))
    )
    const context = yield* Layer.build(serving)
    const row = (taskKey: string) => Effect.map(ledger.get(taskKey), Option.getOrThrow)
    /** POSTs a callback body to a task's verified callback URL, as apixo (or an attacker holding that URL) would. */
    const deliver = (taskKey: string, body: unknown) =>
      Effect.promise(() =>
        fetch(CallbackUrls.urlFor({ secret: callbackSecret, publicBaseUrl: callbackBase }, taskKey), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body)
        }).then((response) => response.status)
      )
    return { fake, ledger, client: Context.get(context, TaskClient.TaskClient), row, deliver, confirmations }
  })

describe("the lifecycle over real HTTP", () => {
  it.scoped("a submit the server accepts and never answers ends ambiguous at the submit timeout, sent once", () =>
    Effect.gen(function* () {
      const { fake, client, row } = yield* setup({
        fake: { faults: [{ match: { route: "generate" }, fault: FakeApixo.slow(Duration.hours(10)) }] }
      })
      const fiber = yield* Effect.fork(client.generate(input, { taskKey: "tk_hang" }))
      yield* fake.awaitRequests(1)
      expect((yield* row("tk_hang")).state).toBe("sending")
      yield* TestClock.adjust(Duration.seconds(30))
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("SubmitOutcomeUnknown")
      const ended = yield* row("tk_hang")
      expect([ended.state, ended.leaseOwner]).toEqual(["ambiguous", undefined])
      expect(ended.failMessage).toMatch(/no answer within 30 ?s/)
      // The server did create (and bill) it; we sent it exactly once and never again.
      expect(generates(fake)).toHaveLength(1)
      expect(fake.tasks).toHaveLength(1)
    })
  )

  it.scoped("an interrupt while the submit is on the wire ends the call at once and leaves the row ambiguous", () =>
    Effect.gen(function* () {
      const { fake, client, row } = yield* setup({
        fake: { faults: [{ match: { route: "generate" }, fault: FakeApixo.slow(Duration.hours(10)) }] }
      })
      const fiber = yield* Effect.fork(client.generate(input, { taskKey: "tk_ctrl_c" }))
      yield* fake.awaitRequests(1)
      yield* Fiber.interrupt(fiber)
      const ended = yield* row("tk_ctrl_c")
      expect(ended.state).toBe("ambiguous")
      expect(ended.failMessage).toContain("interrupted")
      expect(generates(fake)).toHaveLength(1)
    })
  )

  it.scoped("a Retry-After past the caller's deadline ends the start with RetryLater; the task stays queued", () =>
    Effect.gen(function* () {
      const { fake, client, row } = yield* setup({
        fake: { faults: [{ match: { route: "generate", nth: 1 }, fault: FakeApixo.rateLimit(3600) }] }
      })
      const startedAt = yield* TestClock.currentTimeMillis
      const exit = yield* Effect.exit(client.generate(input, { taskKey: "tk_later", deadline: Duration.seconds(10) }))
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      expect(error?._tag).toBe("RetryLater")
      expect(error?._tag === "RetryLater" && error.retryAt).toBe(startedAt + 3_600_000)
      const queued = yield* row("tk_later")
      expect([queued.state, queued.leaseOwner]).toEqual(["queued", undefined])
      expect(generates(fake)).toHaveLength(1)
      expect(fake.tasks).toHaveLength(0)
    })
  )

  it.scoped("an interrupt while queued leaves a resumable row that a later reconcile sends exactly once", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const first = yield* setup({
        ledger,
        fake: { faults: [{ match: { route: "generate", nth: 1 }, fault: FakeApixo.rateLimit(20) }] }
      })
      // The signal: the client says the submit is queued again, waiting for the 429's Retry-After.
      const events = yield* first.client.subscribe
      const requeued = yield* Effect.fork(
        Stream.runHead(
          Stream.filter(Stream.fromQueue(events), (event) => event._tag === "Queued" && event.attempt === 1)
        )
      )
      const fiber = yield* Effect.fork(first.client.generate(input, { taskKey: "tk_queued" }))
      const event = yield* Fiber.join(requeued)
      expect(Option.map(event, (queued) => queued._tag === "Queued" && queued.retryAt !== undefined)).toEqual(
        Option.some(true)
      )
      yield* Fiber.interrupt(fiber)
      const left = yield* first.row("tk_queued")
      expect([left.state, left.leaseOwner]).toEqual(["queued", undefined])
      // Another client on the same ledger and server (say, after a restart) resumes it.
      const second = yield* setup({ ledger, client: { pollPlan: { firstPollAfter: Duration.seconds(40) } } })
      const summary = yield* Effect.fork(second.client.reconcile())
      yield* second.fake.awaitRequests(1)
      yield* TestClock.adjust(Duration.seconds(45))
      const done = yield* Fiber.join(summary)
      expect(done.completed).toEqual(["tk_queued"])
      expect(generates(second.fake)).toHaveLength(1)
      expect(second.fake.tasks).toHaveLength(1)
    })
  )

  it.scoped("a callback on an ambiguous task's URL that names another task's id changes nothing", () =>
    Effect.gen(function* () {
      const { fake, client, row, deliver, confirmations } = yield* setup({
        callbacks: true,
        fake: {
          faults: [{ match: { route: "generate", nth: 2 }, fault: FakeApixo.status5xx(500, { afterCreate: true }) }]
        }
      })
      const other = yield* client.start(input, { taskKey: "tk_other" })
      const ambiguous = yield* Effect.exit(client.start(input, { taskKey: "tk_ambiguous" }))
      expect(Exit.isFailure(ambiguous)).toBe(true)
      expect((yield* row("tk_ambiguous")).state).toBe("ambiguous")
      const billedId = fake.tasks[1]!.taskId
      // The attacker (or a confused relay) names the other task's finished video.
      const status = yield* deliver("tk_ambiguous", {
        code: 200,
        message: "success",
        data: {
          taskId: other.remoteTaskId,
          state: "success",
          resultJson: JSON.stringify({ resultUrls: ["https://evil.example/v.mp4"] })
        }
      })
      expect(status).toBe(200)
      expect(yield* Queue.take(confirmations)).toEqual({ taskKey: "tk_ambiguous", outcome: "refused" })
      const untouched = yield* row("tk_ambiguous")
      expect([untouched.state, untouched.remoteTaskId]).toEqual(["ambiguous", undefined])
      expect((yield* row("tk_other")).remoteTaskId).toBe(other.remoteTaskId)
      expect(statusesOf(fake, other.remoteTaskId)).toHaveLength(0)
      // The genuine callback for the billed task resolves it, confirmed by the provider's own status.
      yield* deliver("tk_ambiguous", { code: 200, message: "success", data: { taskId: billedId, state: "processing" } })
      expect(yield* Queue.take(confirmations)).toEqual({ taskKey: "tk_ambiguous", outcome: "confirmed" })
      const resolved = yield* row("tk_ambiguous")
      expect(resolved.remoteTaskId).toBe(billedId)
      expect(["submitted", "pending", "processing"]).toContain(resolved.state)
    })
  )

  it.scoped("no number of replays of one callback spends more than one status request per interval", () =>
    Effect.gen(function* () {
      const { fake, client, deliver, confirmations } = yield* setup({
        callbacks: true,
        minConfirmInterval: Duration.seconds(5)
      })
      const handle = yield* client.start(input, { taskKey: "tk_flood" })
      const body = { code: 200, message: "success", data: { taskId: handle.remoteTaskId, state: "processing" } }
      const answers = yield* Effect.forEach(Array.from({ length: 600 }), () => deliver("tk_flood", body), {
        concurrency: 20
      })
      expect(answers.every((status) => status === 200)).toBe(true)
      expect(yield* Queue.take(confirmations)).toEqual({ taskKey: "tk_flood", outcome: "confirmed" })
      // One more replay after the first confirmation: it joins the one pending confirmation.
      expect(yield* deliver("tk_flood", body)).toBe(200)
      expect(statusesOf(fake, handle.remoteTaskId)).toHaveLength(1)
      // The clock stands still: however many replays arrive, the next status request waits for the interval.
      yield* TestClock.adjust(Duration.seconds(5))
      expect(yield* Queue.take(confirmations)).toEqual({ taskKey: "tk_flood", outcome: "confirmed" })
      expect(statusesOf(fake, handle.remoteTaskId)).toHaveLength(2)
      expect(yield* Queue.size(confirmations)).toBe(0)
    })
  )
})
