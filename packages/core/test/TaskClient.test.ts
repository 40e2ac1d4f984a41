import { describe, expect, it } from "@effect/vitest"
import { ScriptedProvider } from "@reelkit/testing"
import { Chunk, Duration, Effect, Either, Fiber, Layer, Option, Stream, TestClock } from "effect"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as AccountLimits from "../src/AccountLimits.js"
import * as ArtifactStore from "../src/ArtifactStore.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskError from "../src/TaskError.js"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskProvider from "../src/TaskProvider.js"
import * as TaskStatus from "../src/TaskStatus.js"
import { advanceUntilDone, clientLayer, maxInAnyWindow, testPlan } from "./utils.js"

const input = { mode: "text-to-video", prompt: "a lighthouse in a storm", duration: 4 }
const video = (name: string) => ScriptedProvider.succeededWith(`https://results.example/${name}.mp4`)
const processing = new TaskStatus.Processing({})

describe("TaskClient.start", () => {
  it.effect("writes the ledger row before the paid POST and the remote id right after", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.TaskLedger
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const seenAtSubmit: Array<TaskLedger.TaskRecord> = []
      // Wrap the provider so that, at the moment of the POST, we look at what the ledger holds.
      const spying = Layer.succeed(TaskProvider.TaskProvider, {
        ...scripted.provider,
        submit: (request) =>
          Effect.flatMap(Effect.orDie(ledger.get(request.taskKey)), (row) => {
            if (Option.isSome(row)) seenAtSubmit.push(row.value)
            return scripted.provider.submit(request)
          })
      })
      const client = yield* TaskClient.make().pipe(
        Effect.provide(Layer.merge(spying, Layer.succeed(TaskLedger.TaskLedger, ledger)))
      )
      const handle = yield* client.start(input, { taskKey: "tk_order_1" })
      expect(seenAtSubmit.map((row) => [row.taskKey, row.state])).toEqual([["tk_order_1", "submitting"]])
      const row = Option.getOrThrow(yield* ledger.get("tk_order_1"))
      expect(row.state).toBe("submitted")
      expect(row.remoteTaskId).toBe(handle.remoteTaskId)
      expect(row.input).toEqual(input)
      expect(row.billableSeconds).toBe(4)
    }).pipe(Effect.provide(clientLayer()), Effect.scoped)
  )

  it.effect("rejects invalid input before anything is recorded or sent", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const result = yield* Effect.either(client.start("not an object"))
      expect(Either.isLeft(result) && result.left._tag).toBe("InvalidInput")
      expect((yield* (yield* ScriptedProvider.ScriptedProvider).recording).submits).toHaveLength(0)
      expect(yield* (yield* TaskLedger.TaskLedger).list()).toHaveLength(0)
    }).pipe(Effect.provide(clientLayer()))
  )

  it.effect("retries a submit refused with 429 after the server's Retry-After, and one that never connected", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const fiber = yield* Effect.fork(client.start(input))
      const handle = yield* advanceUntilDone(fiber, Duration.millis(500))
      const { submits, created } = yield* scripted.recording
      expect(submits.map((call) => call.failedWith ?? "created")).toEqual(["RateLimited", "TransportError", "created"])
      expect(submits[1]!.at - submits[0]!.at).toBeGreaterThanOrEqual(20_000)
      expect(created.size).toBe(1)
      expect(created.has(handle.remoteTaskId)).toBe(true)
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({
            submitFailures: [
              new TaskError.RateLimited({ message: "Too many requests", retryAfterMillis: 20_000 }),
              new TaskError.TransportError({ message: "connect ECONNREFUSED", requestSent: false })
            ]
          })
        })
      )
    )
  )

  for (const [name, failure] of [
    ["a 502 after the request was sent", new TaskError.ServerError({ status: 502, message: "Bad Gateway" })],
    ["a reset after sending", new TaskError.TransportError({ message: "socket hang up", requestSent: true })],
    ["a malformed success body", new TaskError.DecodeError({ message: "Unexpected token <" })]
  ] as const) {
    it.effect(`marks the task ambiguous and never re-sends it after ${name}`, () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const scripted = yield* ScriptedProvider.ScriptedProvider
        const fiber = yield* Effect.fork(client.start(input, { taskKey: "tk_ambiguous" }))
        const result = yield* Effect.either(advanceUntilDone(fiber))
        expect(Either.isLeft(result) && result.left._tag).toBe("SubmitOutcomeUnknown")
        if (Either.isLeft(result)) expect(result.left.message).toContain("tk_ambiguous")
        yield* TestClock.adjust(Duration.hours(1))
        const { submits, created } = yield* scripted.recording
        expect(submits).toHaveLength(1)
        // The fake did create it (the answer was lost): exactly the case that must not be re-sent.
        expect(created.size).toBe(1)
        const row = yield* (yield* TaskClient.TaskClient).lookup("tk_ambiguous")
        expect(row.state).toBe("ambiguous")
        // Waiting on it, or starting it again, sends nothing either.
        expect(Either.isLeft(yield* Effect.either(client.wait("tk_ambiguous")))).toBe(true)
        expect((yield* scripted.recording).submits).toHaveLength(1)
      }).pipe(Effect.provide(clientLayer({ script: () => ({ submitFailures: [failure] }) })))
    )
  }

  it.effect("sends an ambiguous task again only when the caller says so", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const first = yield* Effect.either(client.start(input, { taskKey: "tk_retry_by_hand" }))
      expect(Either.isLeft(first) && first.left._tag).toBe("SubmitOutcomeUnknown")
      expect((yield* scripted.recording).submits).toHaveLength(1)
      const handle = yield* client.resubmit("tk_retry_by_hand")
      const { submits, created } = yield* scripted.recording
      expect(submits).toHaveLength(2)
      expect(created.has(handle.remoteTaskId)).toBe(true)
      expect((yield* client.lookup("tk_retry_by_hand")).state).toBe("submitted")
      // A task that is not ambiguous any more is not sent again.
      expect((yield* client.resubmit("tk_retry_by_hand")).remoteTaskId).toBe(handle.remoteTaskId)
      expect((yield* scripted.recording).submits).toHaveLength(2)
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({ submitFailures: [new TaskError.ServerError({ status: 502, message: "Bad Gateway" })] })
        })
      )
    )
  )

  it.effect("records an explicit rejection as rejected and does not retry it", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const result = yield* Effect.either(client.start(input, { taskKey: "tk_broke" }))
      expect(Either.isLeft(result) && result.left._tag).toBe("InsufficientCredits")
      expect((yield* client.lookup("tk_broke")).state).toBe("rejected")
      expect((yield* (yield* ScriptedProvider.ScriptedProvider).recording).submits).toHaveLength(1)
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({ submitFailures: [new TaskError.InsufficientCredits({ message: "Insufficient credits" })] })
        })
      )
    )
  )

  it.effect("returns the first task for a reused idempotency key, also when both starts race", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const [first, second] = yield* Effect.all(
        [client.start(input, { idempotencyKey: "order-7" }), client.start(input, { idempotencyKey: "order-7" })],
        { concurrency: "unbounded" }
      )
      const third = yield* client.start(input, { idempotencyKey: "order-7" })
      expect(second.taskKey).toBe(first.taskKey)
      expect(third.remoteTaskId).toBe(first.remoteTaskId)
      expect((yield* (yield* ScriptedProvider.ScriptedProvider).recording).submits).toHaveLength(1)
      const conflict = yield* Effect.either(client.start({ ...input, prompt: "other" }, { idempotencyKey: "order-7" }))
      expect(Either.isLeft(conflict) && conflict.left._tag).toBe("IdempotencyConflict")
    }).pipe(Effect.provide(clientLayer()))
  )
})

describe("TaskClient.wait", () => {
  it.effect("polls after the first-poll delay, then at the interval, and returns the completed row", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const fiber = yield* Effect.fork(client.generate(input))
      const record = yield* advanceUntilDone(fiber)
      expect(record.state).toBe("completed")
      expect(record.resultUrls).toEqual(["https://results.example/done.mp4"])
      const { statusCalls, submits } = yield* scripted.recording
      expect(statusCalls.map((call) => call.at - submits[0]!.at)).toEqual([10_000, 15_000, 20_000])
    }).pipe(
      Effect.provide(
        clientLayer({ script: () => ({ statuses: [new TaskStatus.Pending({}), processing, video("done")] }) })
      )
    )
  )

  it.effect("takes per-call overrides of the poll plan", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const fiber = yield* Effect.fork(
        client.generate(input, { firstPollAfter: "75 seconds", pollInterval: "2 seconds" })
      )
      yield* advanceUntilDone(fiber)
      const { statusCalls, submits } = yield* scripted.recording
      expect(statusCalls.map((call) => call.at - submits[0]!.at)).toEqual([75_000, 77_000])
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing, video("v")] }) })))
  )

  it.effect("retries transient status failures with backoff and honours Retry-After", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const fiber = yield* Effect.fork(client.generate(input))
      const record = yield* advanceUntilDone(fiber, Duration.millis(250))
      expect(record.state).toBe("completed")
      const times = (yield* scripted.recording).statusCalls.map((call) => call.at)
      expect(times).toHaveLength(4)
      // After the 503: a backoff of at least a few hundred ms (jittered 1 s base).
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(500)
      // After the 429 with Retry-After 30 s: no earlier than that.
      expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(30_000)
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({
            statuses: [
              new TaskError.ServerError({ status: 503, message: "Service Unavailable" }),
              new TaskError.RateLimited({ message: "slow down", retryAfterMillis: 30_000 }),
              new TaskError.TransportError({ message: "socket hang up", requestSent: true }),
              video("late")
            ]
          })
        })
      )
    )
  )

  it.effect("ends with a typed error on an unknown remote state instead of polling forever", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const fiber = yield* Effect.fork(client.generate(input))
      const result = yield* Effect.either(advanceUntilDone(fiber))
      expect(Either.isLeft(result) && result.left._tag).toBe("UnknownRemoteState")
      const polls = (yield* scripted.recording).statusCalls.length
      yield* TestClock.adjust(Duration.hours(1))
      expect((yield* scripted.recording).statusCalls.length).toBe(polls)
    }).pipe(
      Effect.provide(
        clientLayer({ script: () => ({ statuses: [new TaskError.UnknownRemoteState({ state: "paused" })] }) })
      )
    )
  )

  it.effect("gives up on answers that stay malformed after the retry schedule", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const fiber = yield* Effect.fork(client.generate(input))
      const result = yield* Effect.either(advanceUntilDone(fiber))
      expect(Either.isLeft(result) && result.left._tag).toBe("DecodeError")
      // One first try and six retries, then nothing more.
      expect((yield* scripted.recording).statusCalls).toHaveLength(7)
    }).pipe(
      Effect.provide(
        clientLayer({ script: () => ({ statuses: [new TaskError.DecodeError({ message: "not JSON" })] }) })
      )
    )
  )

  it.effect("ends at the deadline with a typed error, leaving the task resumable", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const handle = yield* client.start(input, { taskKey: "tk_slow" })
      const fiber = yield* Effect.fork(client.wait(handle, { deadline: "2 minutes" }))
      const result = yield* Effect.either(advanceUntilDone(fiber))
      expect(Either.isLeft(result) && result.left._tag).toBe("DeadlineExceeded")
      if (Either.isLeft(result)) expect(result.left.message).toContain("tk_slow")
      expect((yield* client.lookup("tk_slow")).state).toBe("processing")
      // Later the task finishes; waiting again picks it up.
      const again = yield* Effect.fork(client.wait(handle))
      expect((yield* advanceUntilDone(again)).state).toBe("completed")
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({
            timeline: [
              { after: 0, status: processing },
              { after: "5 minutes", status: video("s") }
            ]
          })
        })
      )
    )
  )

  it.effect("stops polling at once when the wait is interrupted, and loses nothing", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const handle = yield* client.start(input, { taskKey: "tk_interrupted" })
      const fiber = yield* Effect.fork(client.wait(handle))
      yield* TestClock.adjust(Duration.seconds(30))
      const pollsBefore = (yield* scripted.recording).statusCalls.length
      expect(pollsBefore).toBeGreaterThan(0)
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust(Duration.minutes(5))
      expect((yield* scripted.recording).statusCalls.length).toBe(pollsBefore)
      expect((yield* client.lookup("tk_interrupted")).state).toBe("processing")
      expect((yield* client.lookup("tk_interrupted")).remoteTaskId).toBe(handle.remoteTaskId)
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing] }) })))
  )

  it.effect("survives a defect in a poll: the worker lives on and the task is polled again", () =>
    Effect.gen(function* () {
      const scripted = yield* ScriptedProvider.ScriptedProvider
      let calls = 0
      // A provider with a bug: its first status call dies instead of failing with a typed error.
      const buggy = Layer.succeed(TaskProvider.TaskProvider, {
        ...scripted.provider,
        status: (remoteTaskId) => (++calls === 1 ? Effect.dieMessage("bug") : scripted.provider.status(remoteTaskId))
      })
      const client = yield* TaskClient.make({ pollConcurrency: 1 }).pipe(
        Effect.provide(Layer.mergeAll(buggy, TaskLedger.layerMemory, AccountLimits.layerUnlimited))
      )
      const fiber = yield* Effect.fork(client.generate(input))
      const record = yield* advanceUntilDone(fiber)
      expect(record.state).toBe("completed")
      expect(calls).toBe(2)
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [video("after-bug")] }) })), Effect.scoped)
  )

  it.effect("reports a remote failure as TaskFailed with the provider's code", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const fiber = yield* Effect.fork(client.generate(input, { taskKey: "tk_violation" }))
      const result = yield* Effect.either(advanceUntilDone(fiber))
      expect(Either.isLeft(result) && result.left._tag).toBe("TaskFailed")
      if (Either.isLeft(result) && result.left._tag === "TaskFailed") {
        expect(result.left.code).toBe("CONTENT_VIOLATION")
      }
      const row = yield* client.lookup("tk_violation")
      expect([row.state, row.failCode, row.failMessage]).toEqual([
        "failed",
        "CONTENT_VIOLATION",
        "Content does not meet safety guidelines"
      ])
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({
            statuses: [
              new TaskStatus.Failed({ code: "CONTENT_VIOLATION", message: "Content does not meet safety guidelines" })
            ]
          })
        })
      )
    )
  )
})

describe("TaskClient result storage", () => {
  it.effect("stores a task's outputs once when a refresh and a wait ask for them together", () =>
    Effect.gen(function* () {
      const store = yield* ArtifactStore.makeMemory
      let puts = 0
      const countingStore = Layer.succeed(ArtifactStore.ArtifactStore, {
        ...store,
        put: (key, body, putOptions) =>
          Effect.zipRight(
            Effect.sync(() => puts++),
            store.put(key, body, putOptions)
          )
      })
      // Downloads answer from memory: an HttpClient that serves a few bytes as video/mp4.
      const http = Layer.succeed(
        HttpClient.HttpClient,
        HttpClient.make((request) =>
          Effect.succeed(
            HttpClientResponse.fromWeb(
              request,
              new Response(new Uint8Array([1, 2, 3, 4]), {
                headers: { "content-type": "video/mp4", "content-length": "4" }
              })
            )
          )
        )
      )
      const client = yield* TaskClient.make().pipe(
        Effect.provide(
          Layer.mergeAll(
            countingStore,
            http,
            TaskLedger.layerMemory,
            AccountLimits.layerUnlimited,
            ScriptedProvider.layer({ script: () => ({ statuses: [video("once")] }), hints: { pollPlan: testPlan } })
          )
        )
      )
      const handle = yield* client.start(input, { taskKey: "tk_once" })
      yield* TestClock.adjust(Duration.seconds(10))
      const [refreshed, waited] = yield* Effect.all([client.refresh(handle), client.wait(handle)], {
        concurrency: "unbounded"
      })
      const final = yield* client.wait(handle)
      expect([refreshed.state !== undefined, waited.state, final.state]).toEqual([true, "completed", "completed"])
      expect(final.artifacts.map((artifact) => artifact.bytes)).toEqual([4])
      expect(puts).toBe(1)
    }).pipe(Effect.scoped)
  )
})

describe("TaskClient in callback mode", () => {
  it.effect("keeps polling, but only as a slow fallback, and sends the callback URL as given", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const fiber = yield* Effect.fork(client.generate(input, { callbackUrl: "https://hooks.example/apixo?id=9" }))
      yield* advanceUntilDone(fiber)
      const { statusCalls, submits } = yield* scripted.recording
      expect(submits[0]!.callbackUrl).toBe("https://hooks.example/apixo?id=9")
      // First poll at the plan's 10 s, then every 60 s instead of the plan's 5 s.
      expect(statusCalls.map((call) => call.at - submits[0]!.at)).toEqual([10_000, 70_000, 130_000])
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing, processing, video("cb")] }) })))
  )
})

describe("TaskClient.watch", () => {
  it.effect("streams submitted, pending, processing and succeeded in order", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const handle = yield* client.start(input)
      const fiber = yield* Effect.fork(Stream.runCollect(client.watch(handle)))
      const events = Chunk.toReadonlyArray(yield* advanceUntilDone(fiber))
      expect(events.map((event) => event._tag)).toEqual(["Submitted", "Pending", "Processing", "Succeeded"])
    }).pipe(
      Effect.provide(
        clientLayer({ script: () => ({ statuses: [new TaskStatus.Pending({}), processing, video("w")] }) })
      )
    )
  )
})

describe("TaskClient with account limits", () => {
  it.effect("holds a task slot from submit to terminal status", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const first = yield* client.start(input, { taskKey: "tk_first" })
      const second = yield* Effect.fork(client.start(input, { taskKey: "tk_second" }))
      yield* TestClock.adjust(Duration.minutes(1))
      // No wait is running for the first task and it is not terminal: the second cannot be sent.
      expect((yield* scripted.recording).submits).toHaveLength(1)
      const waiting = yield* Effect.fork(client.wait(first))
      yield* advanceUntilDone(waiting)
      yield* advanceUntilDone(second)
      expect((yield* scripted.recording).submits).toHaveLength(2)
    }).pipe(Effect.provide(clientLayer({ limits: { concurrentTasks: 1 }, script: () => ({ statuses: [video("x")] }) })))
  )

  // Two processes on one ledger: A has a single slot; B learns the outcome first (e.g. at its
  // callback endpoint). A's slot must be free again however A notices the task is finished.
  const twoProcesses = Effect.gen(function* () {
    const ledger = yield* TaskLedger.makeMemory
    const scripted = yield* ScriptedProvider.make({
      script: () => ({ statuses: [video("shared")] }),
      hints: { pollPlan: testPlan }
    })
    const shared = Layer.mergeAll(
      Layer.succeed(TaskLedger.TaskLedger, ledger),
      Layer.succeed(TaskProvider.TaskProvider, scripted.provider)
    )
    const a = yield* TaskClient.make({ owner: "a" }).pipe(
      Effect.provide(Layer.merge(shared, AccountLimits.layerMemory({ concurrentTasks: 1 })))
    )
    const b = yield* TaskClient.make({ owner: "b" }).pipe(
      Effect.provide(Layer.merge(shared, AccountLimits.layerUnlimited))
    )
    return { a, b }
  })
  const nextStartGoesThrough = (a: TaskClient.Service) =>
    Effect.gen(function* () {
      const next = yield* Effect.fork(a.start(input, { taskKey: "tk_next" }))
      expect((yield* advanceUntilDone(next, Duration.seconds(1), 100)).taskKey).toBe("tk_next")
    })

  it.effect("frees this process's slot when its poll finds the task finished by another process", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoProcesses
      const handle = yield* a.start(input, { taskKey: "tk_shared" })
      const waiting = yield* Effect.fork(a.wait(handle))
      yield* Effect.yieldNow()
      yield* b.refresh("tk_shared")
      expect((yield* advanceUntilDone(waiting, Duration.seconds(1), 100)).state).toBe("completed")
      yield* nextStartGoesThrough(a)
    }).pipe(Effect.scoped)
  )

  it.effect("frees this process's slot when it finds the task already finished by another process", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoProcesses
      const handle = yield* a.start(input, { taskKey: "tk_shared" })
      yield* b.refresh("tk_shared")
      expect((yield* a.wait(handle)).state).toBe("completed")
      yield* nextStartGoesThrough(a)
    }).pipe(Effect.scoped)
  )

  it.effect(
    "completes 200 tasks started at once within 60 requests/minute and 10 concurrent tasks",
    () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const scripted = yield* ScriptedProvider.ScriptedProvider
        const fiber = yield* Effect.fork(
          Effect.forEach(
            Array.from({ length: 200 }, (_, index) => index),
            (index) => client.generate({ ...input, prompt: `shot ${index}` }, { taskKey: `tk_${index}` }),
            { concurrency: "unbounded" }
          )
        )
        const records = yield* advanceUntilDone(fiber, Duration.seconds(1))
        expect(records.every((record) => record.state === "completed")).toBe(true)
        const recording = yield* scripted.recording
        expect(recording.created.size).toBe(200)
        expect(recording.submits).toHaveLength(200)
        expect(maxInAnyWindow(recording.requestTimes, 60_000)).toBeLessThanOrEqual(60)
        // Concurrency: a task is in flight from its submit to its last (terminal) status answer.
        const spans = [...recording.created].map(([remoteTaskId, task]) => {
          const polls = recording.statusCalls.filter((call) => call.remoteTaskId === remoteTaskId)
          return [task.createdAt, polls[polls.length - 1]!.at] as const
        })
        const maxConcurrent = Math.max(
          ...spans.map(([start]) => spans.filter(([from, to]) => from <= start && start < to).length)
        )
        expect(maxConcurrent).toBeLessThanOrEqual(10)
        expect(maxConcurrent).toBeGreaterThan(1)
      }).pipe(
        Effect.provide(
          clientLayer({
            limits: { requestsPerWindow: 60, concurrentTasks: 10 },
            script: () => ({
              timeline: [
                { after: 0, status: processing },
                { after: "20 seconds", status: video("bulk") }
              ]
            })
          })
        )
      ),
    { timeout: 120_000 }
  )
})

describe("TaskClient.reconcile and resume", () => {
  it.effect(
    "resumes unfinished tasks after a restart and marks an interrupted submit ambiguous without re-sending",
    () =>
      Effect.gen(function* () {
        const ledger = yield* TaskLedger.makeMemory
        const ledgerLayer = Layer.succeed(TaskLedger.TaskLedger, ledger)
        const scripted = yield* ScriptedProvider.make({
          script: () => ({
            timeline: [
              { after: 0, status: processing },
              { after: "3 minutes", status: video("r") }
            ]
          }),
          hints: {
            pollPlan: {
              firstPollAfter: Duration.seconds(10),
              interval: Duration.seconds(5),
              deadline: Duration.hours(1)
            }
          }
        })
        const providerLayer = Layer.succeed(TaskProvider.TaskProvider, scripted.provider)
        const limits = (yield* Effect.promise(() => import("../src/AccountLimits.js"))).layerMemory()
        const makeClient = TaskClient.make().pipe(Effect.provide(Layer.mergeAll(ledgerLayer, providerLayer, limits)))

        // First process: two tasks submitted, then it "dies" (its scope closes) before waiting.
        yield* Effect.scoped(
          Effect.gen(function* () {
            const client = yield* makeClient
            yield* client.start(input, { taskKey: "tk_a" })
            yield* client.start({ ...input, prompt: "second" }, { taskKey: "tk_b" })
          })
        )
        // A row left in `submitting`, as if the process died with the POST in flight.
        yield* ledger.create({ taskKey: "tk_c", providerId: "scripted", modelId: "scripted-model", input })

        const summary = yield* Effect.scoped(
          Effect.gen(function* () {
            const client = yield* makeClient
            const fiber = yield* Effect.fork(client.reconcile())
            return yield* advanceUntilDone(fiber)
          })
        )
        expect(summary.claimed).toBe(3)
        expect([...summary.completed].sort()).toEqual(["tk_a", "tk_b"])
        expect(summary.ambiguous).toEqual(["tk_c"])
        expect(Option.getOrThrow(yield* ledger.get("tk_c")).state).toBe("ambiguous")
        expect((yield* scripted.recording).submits).toHaveLength(2)
      })
  )

  it.effect("leaves a submit that another live process holds alone, and takes it over once its claim expires", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const scripted = yield* ScriptedProvider.make({ hints: { pollPlan: testPlan } })
      const layers = Layer.mergeAll(
        Layer.succeed(TaskLedger.TaskLedger, ledger),
        Layer.succeed(TaskProvider.TaskProvider, scripted.provider),
        AccountLimits.layerUnlimited
      )
      // Process A starts a task whose submit waits a long while for the request budget.
      const slowA = yield* TaskClient.make({ owner: "process-a", submitLeaseMillis: 300_000 }).pipe(
        Effect.provide(
          Layer.mergeAll(
            Layer.succeed(TaskLedger.TaskLedger, ledger),
            Layer.succeed(TaskProvider.TaskProvider, scripted.provider),
            AccountLimits.layerMemory({ requestsPerWindow: 1 })
          )
        )
      )
      yield* slowA.start(input, { taskKey: "tk_first" })
      const pending = yield* Effect.fork(slowA.start(input, { taskKey: "tk_waiting" }))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(Option.getOrThrow(yield* ledger.get("tk_waiting")).state).toBe("submitting")

      // Process B reconciles meanwhile: it must not judge A's live submit.
      const b = yield* TaskClient.make({ owner: "process-b" }).pipe(Effect.provide(layers))
      const summary = yield* Effect.fork(b.reconcile({ deadline: "10 seconds" }))
      const result = yield* advanceUntilDone(summary)
      expect(result.ambiguous).toEqual([])
      expect(result.unfinished.map((entry) => [entry.taskKey, entry.error])).toContainEqual([
        "tk_waiting",
        "SubmitInProgress"
      ])
      // A's submit goes through and is recorded normally.
      const handle = yield* advanceUntilDone(pending)
      const row = Option.getOrThrow(yield* ledger.get("tk_waiting"))
      expect([row.state, row.remoteTaskId, row.leaseOwner]).toEqual(["submitted", handle.remoteTaskId, undefined])
    }).pipe(Effect.scoped)
  )

  it.effect(
    "sends a submit its dead process left queued (never sent) exactly once; one caught sending is ambiguous",
    () =>
      Effect.gen(function* () {
        const ledger = yield* TaskLedger.TaskLedger
        const scripted = yield* ScriptedProvider.ScriptedProvider
        const client = yield* TaskClient.TaskClient
        // Rows as a crashed process leaves them: both submitting, their claims expired; one was still
        // waiting for the request budget, the other had its POST on the wire.
        for (const [taskKey, leaseOwner] of [
          ["tk_queued", "dead-process"],
          ["tk_sending", "dead-process#sending"]
        ] as const) {
          yield* ledger.create({ taskKey, providerId: "scripted", modelId: "scripted-model", input })
          yield* ledger.transition(taskKey, ["submitting"], { leaseOwner, leaseExpiresAt: 0 })
        }
        const summary = yield* advanceUntilDone(yield* Effect.fork(client.reconcile()))
        expect(summary.completed).toEqual(["tk_queued"])
        expect(summary.ambiguous).toEqual(["tk_sending"])
        const { submits } = yield* scripted.recording
        expect(submits.map((call) => call.taskKey)).toEqual(["tk_queued"])
        expect((yield* client.lookup("tk_queued")).state).toBe("completed")
        expect((yield* client.lookup("tk_sending")).state).toBe("ambiguous")
      }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [video("queued")] }) })))
  )

  it.effect("records a submit's remote id even if another process marked it ambiguous meanwhile", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.TaskLedger
      const scripted = yield* ScriptedProvider.ScriptedProvider
      // A provider whose POST is slow, during which someone else marks the row ambiguous.
      const slow = Layer.succeed(TaskProvider.TaskProvider, {
        ...scripted.provider,
        submit: (request) =>
          Effect.zipRight(
            Effect.orDie(ledger.transition(request.taskKey, ["submitting"], { state: "ambiguous" })),
            scripted.provider.submit(request)
          )
      })
      const client = yield* TaskClient.make().pipe(
        Effect.provide(Layer.mergeAll(slow, Layer.succeed(TaskLedger.TaskLedger, ledger), AccountLimits.layerUnlimited))
      )
      const handle = yield* client.start(input, { taskKey: "tk_raced" })
      const row = Option.getOrThrow(yield* ledger.get("tk_raced"))
      expect([row.state, row.remoteTaskId]).toEqual(["submitted", handle.remoteTaskId])
    }).pipe(Effect.provide(clientLayer()), Effect.scoped)
  )

  it.effect("reports a task still running at the deadline as unfinished with DeadlineExceeded", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      yield* client.start(input, { taskKey: "tk_long" })
      const fiber = yield* Effect.fork(client.reconcile({ deadline: "1 minute" }))
      const summary = yield* advanceUntilDone(fiber)
      expect(summary.unfinished.map((entry) => [entry.taskKey, entry.error])).toEqual([["tk_long", "DeadlineExceeded"]])
      expect(summary.unfinished[0]!.reason).toContain("tk_long")
      expect((yield* client.lookup("tk_long")).state).toBe("processing")
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing] }) })))
  )

  it.effect("resumes a handle from another process into an empty ledger", () =>
    Effect.gen(function* () {
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const client = yield* TaskClient.TaskClient
      const accepted = yield* scripted.provider.submit({ taskKey: "elsewhere", input })
      const { TaskHandle } = yield* Effect.promise(() => import("../src/TaskHandle.js"))
      const handle = new TaskHandle({
        providerId: "scripted",
        modelId: "scripted-model",
        taskKey: "elsewhere",
        remoteTaskId: accepted.remoteTaskId,
        submittedAt: 0
      })
      const fiber = yield* Effect.fork(client.resume(handle))
      const record = yield* advanceUntilDone(fiber)
      expect([record.state, record.remoteTaskId]).toEqual(["completed", accepted.remoteTaskId])
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [video("elsewhere")] }) })))
  )
})
