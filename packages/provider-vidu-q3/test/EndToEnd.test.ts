import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import {
  AccountLimits,
  ArtifactStore,
  CallbackUrls,
  Callbacks,
  ResultStorage,
  TaskClient,
  TaskLedger
} from "@reelkit/core"

import { Context, Duration, Effect, Either, Exit, Fiber, Layer, Logger, Option, Redacted, TestClock } from "effect"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import { createServer as createHttpServer } from "node:http"
import * as ViduQ3 from "../src/ViduQ3.js"
import * as ViduQ3Input from "../src/ViduQ3Input.js"
import { FakeApixo, RecordingTracer } from "@reelkit/testing"

const secretKey = "sk-live-DO-NOT-LEAK-7f3a9c21e4b8"
const callbackSecret = Redacted.make("e2e-callback-secret-with-enough-entropy-1234")
const input: ViduQ3Input.ViduQ3Input = {
  mode: "text-to-video",
  prompt: "a paper boat on a rainy street",
  resolution: "720p",
  duration: 4
}
const fixtureSha256 = createHash("sha256").update(readFileSync(FakeApixo.sampleVideoPath())).digest("hex")

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number }
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Lets real sockets make progress while the TestClock stands still. */
const realPause = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 15)))

/** Moves the TestClock in steps, pausing for real I/O between them, until the fiber is done. */
const advanceUntilDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, step: Duration.DurationInput, maxSteps = 400) =>
  Effect.gen(function* () {
    for (let index = 0; index < maxSteps; index++) {
      yield* realPause
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return yield* done.value
      yield* TestClock.adjust(step)
    }
    return yield* Effect.dieMessage("still running")
  })

interface Setup {
  readonly fake: FakeApixo.Service
  readonly client: TaskClient.Service
  readonly store: ArtifactStore.Service
  readonly ledger: TaskLedger.Service
  readonly callbackBase: string
}

/** The fake, and a client wired to it with a memory ledger and store, result storage and our callback server. */
const setup = (
  fakeOptions: FakeApixo.Options = {},
  clientOptions: TaskClient.Options = {},
  resultOptions: ResultStorage.Options = {}
) =>
  Effect.gen(function* () {
    const fake = yield* FakeApixo.make({
      apiKeys: [secretKey],
      models: { "vidu-q3": { inputSchema: ViduQ3Input.ViduQ3Input } },
      timings: { processingAfter: Duration.seconds(5), completeAfter: Duration.seconds(30) },
      ...fakeOptions
    })
    const callbackPort = yield* freePort
    const callbackBase = `http://127.0.0.1:${callbackPort}`
    const store = yield* ArtifactStore.makeMemory
    const ledger = yield* TaskLedger.makeMemory
    const clientLayer = TaskClient.layer({
      pollPlan: { firstPollAfter: Duration.minutes(10), interval: Duration.seconds(5) },
      ...clientOptions
    }).pipe(
      Layer.provideMerge(ResultStorage.layer(resultOptions)),
      Layer.provideMerge(
        Layer.mergeAll(
          ViduQ3.layer({ apiKey: fake.apiKey, baseUrl: fake.url }),
          Layer.succeed(TaskLedger.TaskLedger, ledger),
          Layer.succeed(ArtifactStore.ArtifactStore, store),
          AccountLimits.layerMemory(),
          CallbackUrls.layer({ secret: callbackSecret, publicBaseUrl: callbackBase }).pipe(Layer.orDie)
        )
      ),
      Layer.provideMerge(NodeHttpClient.layerUndici)
    )
    const serving = Callbacks.layerServe().pipe(
      Layer.provideMerge(clientLayer),
      Layer.provideMerge(NodeHttpServer.layer(createHttpServer, { port: callbackPort, host: "127.0.0.1" }))
    )
    const context = yield* Layer.build(serving)
    return { fake, client: Context.get(context, TaskClient.TaskClient), store, ledger, callbackBase } satisfies Setup
  })

const statusRequests = (fake: FakeApixo.Service) => fake.requests.filter((request) => request.route === "status")
const generateRequests = (fake: FakeApixo.Service) => fake.requests.filter((request) => request.route === "generate")

describe("end to end against the fake apixo server", () => {
  it.scoped("a verified callback finishes the wait long before the first poll, and the video is stored", () =>
    Effect.gen(function* () {
      const { fake, client, store, callbackBase } = yield* setup()
      const handle = yield* client.start(input)
      const task = fake.tasks[0]!
      expect(task.requestType).toBe("callback")
      expect(task.callbackUrl).toBe(
        CallbackUrls.urlFor({ secret: callbackSecret, publicBaseUrl: callbackBase }, handle.taskKey)
      )
      const record = yield* advanceUntilDone(yield* Effect.fork(client.wait(handle)), Duration.seconds(1))
      expect(record.state).toBe("completed")
      // Finished by the callback at ~30 s, not by a poll (the first was 10 minutes away).
      expect(fake.callbacks.filter((callback) => callback.outcome === "delivered")).toHaveLength(1)
      expect(statusRequests(fake)).toHaveLength(1)
      expect(record.artifacts).toHaveLength(1)
      const artifact = record.artifacts[0]!
      expect([artifact.contentType, artifact.sha256]).toEqual(["video/mp4", fixtureSha256])
      expect(Option.getOrThrow(yield* store.head(artifact.key)).bytes).toBe(artifact.bytes)
      // Credentials go to the API only, never to the result host.
      const downloads = fake.requests.filter((request) => request.route === "download")
      expect(downloads.length).toBeGreaterThan(0)
      expect(downloads.every((request) => !request.authorizationSent)).toBe(true)
      expect(generateRequests(fake).every((request) => request.authorizationSent)).toBe(true)
      expect(fake.bills).toHaveLength(1)
    })
  )

  it.scoped("a forged callback (wrong token) changes nothing and asks nothing", () =>
    Effect.gen(function* () {
      const { fake, client, callbackBase } = yield* setup()
      const handle = yield* client.start(input)
      const forged = yield* Effect.promise(() =>
        fetch(
          `${callbackBase}/callbacks/${handle.taskKey}/${CallbackUrls.tokenFor(Redacted.make("guess"), handle.taskKey)}`,
          {
            method: "POST",
            body: JSON.stringify({
              code: 200,
              message: "success",
              data: { taskId: handle.remoteTaskId, state: "success" }
            })
          }
        )
      )
      yield* realPause
      expect(forged.status).toBe(401)
      expect(statusRequests(fake)).toHaveLength(0)
      expect((yield* client.lookup(handle.taskKey)).state).toBe("submitted")
    })
  )

  it.scoped("a callback body that lies (success while the status says processing) changes nothing", () =>
    Effect.gen(function* () {
      const { fake, client, callbackBase } = yield* setup()
      const handle = yield* client.start(input)
      yield* TestClock.adjust(Duration.seconds(10))
      const lie = yield* Effect.promise(() =>
        fetch(`${callbackBase}/callbacks/${handle.taskKey}/${CallbackUrls.tokenFor(callbackSecret, handle.taskKey)}`, {
          method: "POST",
          body: JSON.stringify({
            code: 200,
            message: "success",
            data: {
              taskId: handle.remoteTaskId,
              state: "success",
              resultJson: JSON.stringify({ resultUrls: ["https://evil.example/fake.mp4"] })
            }
          })
        })
      )
      yield* realPause
      yield* realPause
      expect(lie.status).toBe(200)
      expect(statusRequests(fake)).toHaveLength(1)
      const row = yield* client.lookup(handle.taskKey)
      expect([row.state, row.resultUrls]).toEqual(["processing", []])
    })
  )

  it.scoped("duplicate callbacks are confirmed once", () =>
    Effect.gen(function* () {
      const { fake, client } = yield* setup({ callbacks: { duplicates: 2, duplicateDelay: Duration.seconds(1) } })
      const handle = yield* client.start(input)
      const record = yield* advanceUntilDone(yield* Effect.fork(client.wait(handle)), Duration.seconds(1))
      // Every copy is due at an absolute time, now all in the past: each goes out as soon as the
      // one before it is answered. Wait for the third answer itself, not for a guess at how long it takes.
      yield* TestClock.adjust(Duration.seconds(5))
      const delivered = (of: FakeApixo.Service) => of.callbacks.filter((callback) => callback.outcome === "delivered")
      yield* fake.waitUntil((of) => delivered(of).length >= 3)
      expect(record.state).toBe("completed")
      expect(delivered(fake)).toHaveLength(3)
      expect(statusRequests(fake)).toHaveLength(1)
    })
  )

  it.scoped("a lost callback is covered by slow fallback polling", () =>
    Effect.gen(function* () {
      const { fake, client } = yield* setup(
        { faults: [{ match: { route: "callback" }, fault: FakeApixo.dropCallback }] },
        { pollPlan: { firstPollAfter: Duration.seconds(10), interval: Duration.seconds(5) } }
      )
      const handle = yield* client.start(input)
      const record = yield* advanceUntilDone(yield* Effect.fork(client.wait(handle)), Duration.seconds(5))
      expect(record.state).toBe("completed")
      expect(fake.callbacks.every((callback) => callback.outcome === "dropped")).toBe(true)
      // Polls at 10 s, then every 60 s (callback mode) rather than every 5 s.
      const polls = statusRequests(fake).map((request) => request.at - fake.tasks[0]!.createdAt)
      expect(polls).toEqual([10_000, 70_000])
    })
  )

  it.scoped("a truncated download is retried without a second submit", () =>
    Effect.gen(function* () {
      const { fake, client } = yield* setup({
        faults: [{ match: { route: "download", nth: 1 }, fault: FakeApixo.truncatedDownload(1000) }]
      })
      const handle = yield* client.start(input)
      const record = yield* advanceUntilDone(yield* Effect.fork(client.wait(handle)), Duration.seconds(1))
      expect(record.state).toBe("completed")
      expect(record.artifacts[0]!.sha256).toBe(fixtureSha256)
      expect(fake.requests.filter((request) => request.route === "download").length).toBeGreaterThanOrEqual(2)
      expect(generateRequests(fake)).toHaveLength(1)
      expect(fake.bills).toHaveLength(1)
    })
  )

  it.scoped("an oversized result is rejected and nothing is kept; an expired URL is a typed error", () =>
    Effect.gen(function* () {
      const { fake, client, store } = yield* setup({}, {}, { maxBytes: 1000 })
      const handle = yield* client.start(input)
      const exit = yield* Effect.exit(advanceUntilDone(yield* Effect.fork(client.wait(handle)), Duration.seconds(1)))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("ArtifactTooLarge")
      expect(yield* store.list()).toEqual([])
      // The generation succeeded: the row waits in `succeeded` for its outputs, never re-generated.
      expect((yield* client.lookup(handle.taskKey)).state).toBe("succeeded")
      expect(fake.bills).toHaveLength(1)

      yield* TestClock.adjust(Duration.days(16))
      const late = yield* Effect.either(client.wait(handle))
      expect(Either.isLeft(late) && late.left).toBeInstanceOf(ResultStorage.ResultExpired)
      expect(generateRequests(fake)).toHaveLength(1)
    })
  )

  it.scoped("the API key appears in no log, error, span or metric", () =>
    Effect.gen(function* () {
      const { tracer, spans } = RecordingTracer.make()
      const logs: Array<string> = []
      const logger = Logger.make(({ message, annotations, cause }) => {
        logs.push(JSON.stringify({ message, annotations: [...annotations], cause: String(cause) }))
      })
      const errors: Array<unknown> = []
      // The tracer and logger are installed before the client is built: its poll workers are
      // forked then, and inherit them.
      yield* Effect.gen(function* () {
        const { fake, client } = yield* setup()
        yield* Effect.logInfo("starting").pipe(Effect.annotateLogs("handle", "x"))
        const handle = yield* client.start(input)
        yield* advanceUntilDone(yield* Effect.fork(client.wait(handle)), Duration.seconds(1))
        // A failed submit: its error must not carry the key either.
        fake.addFault({ match: { route: "generate" }, fault: FakeApixo.status5xx(503) })
        const failed = yield* Effect.either(client.start({ ...input, prompt: "second" }))
        if (Either.isLeft(failed)) errors.push(failed.left)
        yield* Effect.logError("done", failed)
      }).pipe(Effect.withTracer(tracer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      const metrics = JSON.stringify(
        (yield* Effect.promise(() => import("effect/Metric")).pipe(Effect.flatMap((Metric) => Metric.snapshot))).map(
          (pair) => ({ key: String(pair.metricKey), state: String(pair.metricState) })
        )
      )
      expect(errors).toHaveLength(1)
      const everything = [
        RecordingTracer.spanText(spans),
        logs.join("\n"),
        metrics,
        ...errors.map((error) => `${JSON.stringify(error)} ${String(error)} ${(error as Error).message}`)
      ].join("\n")
      expect(spans.map((span) => span.name)).toEqual(
        expect.arrayContaining(["reelkit.submit", "reelkit.status", "reelkit.download", "Apixo.generateTask"])
      )
      expect(everything.length).toBeGreaterThan(1000)
      expect(everything).not.toContain(secretKey)
      expect(everything).not.toContain(secretKey.slice(8))
    })
  )
  it.scoped("a fail message echoing the API key reaches the row, the error, logs and spans without it", () =>
    Effect.gen(function* () {
      const { spans, tracer } = RecordingTracer.make()
      const logs: Array<string> = []
      const logger = Logger.make(({ cause, message }) => {
        logs.push(JSON.stringify({ message, cause: String(cause) }))
      })
      const { failure, row } = yield* Effect.gen(function* () {
        const { client, ledger } = yield* setup({
          outcome: FakeApixo.failure("CONTENT_VIOLATION", `Rejected: the key ${secretKey} may not make this`)
        })
        const handle = yield* client.start(input)
        const failure = yield* advanceUntilDone(
          yield* Effect.fork(Effect.flip(client.wait(handle))),
          Duration.seconds(1)
        )
        yield* Effect.logError("failed", failure)
        const row = Option.getOrThrow(yield* ledger.get(handle.taskKey))
        return { failure, row }
      }).pipe(Effect.withTracer(tracer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(failure).toMatchObject({ _tag: "TaskFailed", code: "CONTENT_VIOLATION" })
      expect(row.state).toBe("failed")
      // The text around the key survives, so the check below is not passing on an empty message.
      expect(row.failMessage).toBe("Rejected: the key [redacted] may not make this")
      const everything = [
        JSON.stringify(row),
        JSON.stringify(failure),
        String(failure),
        failure.message,
        logs.join("\n"),
        RecordingTracer.spanText(spans)
      ].join("\n")
      expect(everything).toContain("[redacted]")
      expect(everything).not.toContain(secretKey)
    })
  )
})
