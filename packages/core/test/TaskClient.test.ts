// TaskClient's everyday behaviour on the scripted provider, with TestClock for every wait: the
// gate and the row before the paid POST, safe and unsafe submit failures, polling, events, refresh,
// account limits and result storage. Faults of the lifecycle (timeouts, RetryLater, interrupts,
// lost leases, cancel, recovery) are in TaskClientLifecycle.test.ts.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { ScriptedHttpServer, ScriptedProvider } from "@reelkit/testing"
import { Chunk, Duration, Effect, Exit, Fiber, Layer, Option, Schedule, Stream, TestClock } from "effect"
import * as AccountLimits from "../src/AccountLimits.js"
import * as ArtifactStore from "../src/ArtifactStore.js"
import * as ResultStorage from "../src/ResultStorage.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskError from "../src/TaskError.js"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskProvider from "../src/TaskProvider.js"
import * as TaskStatus from "../src/TaskStatus.js"
import {
  advanceUntilDone,
  clientLayer,
  failureOf,
  failureTag,
  input,
  makeClient,
  processing,
  recording,
  maxInAnyWindow,
  runToExit,
  testPlan,
  video
} from "./utils.js"

describe("TaskClient.start", () => {
  it.effect("writes the row (sending, held by this client, with the exact wire request) before the paid POST", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const seenAtSubmit: Array<{ row: TaskLedger.TaskRecord; wire: TaskProvider.WireRequest }> = []
      // At the moment of the POST, look at what the ledger holds.
      const spying = (scripted: TaskProvider.Service): TaskProvider.Service => ({
        ...scripted,
        submit: (request) =>
          Effect.flatMap(Effect.orDie(ledger.get(request.taskKey)), (row) => {
            if (Option.isSome(row)) seenAtSubmit.push({ row: row.value, wire: request.wire })
            return scripted.submit(request)
          })
      })
      yield* Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const handle = yield* client.start(input, { taskKey: "tk_order_1", providerOptions: { region: "eu" } })
        expect(seenAtSubmit).toHaveLength(1)
        const [{ row: atSubmit, wire }] = seenAtSubmit as [(typeof seenAtSubmit)[0]]
        expect([atSubmit.taskKey, atSubmit.state]).toEqual(["tk_order_1", "sending"])
        expect(atSubmit.leaseOwner).toMatch(/^client-/)
        // The POST sends exactly what the row recorded, options included.
        expect(wire).toEqual(atSubmit.request)
        expect(wire.body).toEqual({ input, options: { region: "eu" } })
        const row = Option.getOrThrow(yield* ledger.get("tk_order_1"))
        expect([row.state, row.remoteTaskId, row.leaseOwner]).toEqual(["submitted", handle.remoteTaskId, undefined])
        expect([row.input, row.billableSeconds]).toEqual([input, 4])
        expect(handle.submittedAt).toBe(row.submittedAt)
      }).pipe(Effect.provide(clientLayer({ ledger: Layer.succeed(TaskLedger.TaskLedger, ledger), provider: spying })))
    })
  )

  it.effect("refuses bad input, a bad task key and a bad transport option at the gate, before any row or request", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const badInput = yield* Effect.flip(client.start("not an object"))
      expect(badInput).toMatchObject({ _tag: "InvalidInput", path: "input" })
      const badKey = yield* Effect.flip(client.start(input, { taskKey: "has spaces" }))
      expect(badKey).toMatchObject({ _tag: "InvalidInput", path: "taskKey" })
      const badOption = yield* Effect.flip(client.start(input, { providerOptions: { routing: "nowhere" } }))
      expect(badOption).toMatchObject({ _tag: "InvalidInput", path: "options.routing" })
      expect(badOption.message).toContain("options.routing")
      expect((yield* recording).submits).toHaveLength(0)
      expect(yield* (yield* TaskLedger.TaskLedger).list()).toHaveLength(0)
    }).pipe(
      Effect.provide(
        clientLayer({
          // A gate that also checks a transport option, as apixo's checks its routing `provider`.
          provider: (scripted) => ({
            ...scripted,
            prepare: (request) =>
              request.options?.routing !== undefined && request.options.routing !== "fast"
                ? Effect.fail(new TaskError.InvalidInput({ path: "options.routing", rule: "must be fast" }))
                : scripted.prepare(request)
          })
        })
      )
    )
  )

  it.effect(
    "retries a submit refused with 429 after its Retry-After, and one that never connected, telling subscribers",
    () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const events = yield* Effect.fork(
          Stream.runCollect(client.events.pipe(Stream.takeUntil((event) => event._tag === "Submitted")))
        )
        yield* Effect.yieldNow()
        const handle = yield* advanceUntilDone(
          yield* Effect.fork(client.start(input, { taskKey: "tk_retry" })),
          "500 millis"
        )
        const { submits, created } = yield* recording
        expect(submits.map((call) => call.failedWith ?? "created")).toEqual([
          "RateLimited",
          "TransportError",
          "created"
        ])
        expect(submits[1]!.at - submits[0]!.at).toBeGreaterThanOrEqual(20_000)
        expect([created.size, created.has(handle.remoteTaskId)]).toEqual([1, true])
        const seen = Chunk.toReadonlyArray(yield* Fiber.join(events))
        expect(seen.map((event) => event._tag)).toEqual([
          "Sending",
          "Queued",
          "Sending",
          "Queued",
          "Sending",
          "Submitted"
        ])
        const firstRetry = seen[1]!
        expect(
          firstRetry._tag === "Queued" && [firstRetry.attempt, firstRetry.retryAt! - firstRetry.at >= 20_000]
        ).toEqual([1, true])
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
        const exit = yield* runToExit(client.start(input, { taskKey: "tk_ambiguous", idempotencyKey: "order-1" }))
        expect(failureTag(exit)).toBe("SubmitOutcomeUnknown")
        expect(failureOf(exit)?.message).toContain("tk_ambiguous")
        yield* TestClock.adjust(Duration.hours(1))
        const { submits, created } = yield* recording
        expect(submits).toHaveLength(1)
        // The fake did create it (the answer was lost): exactly the case that must not be re-sent.
        expect(created.size).toBe(1)
        const row = yield* client.lookup("tk_ambiguous")
        expect([row.state, row.leaseOwner, row.failCode]).toEqual(["ambiguous", undefined, "SubmitOutcomeUnknown"])
        // Waiting on it, or starting it again with its idempotency key, sends nothing either.
        expect(failureTag(yield* Effect.exit(client.wait("tk_ambiguous")))).toBe("SubmitOutcomeUnknown")
        expect(failureTag(yield* Effect.exit(client.start(input, { idempotencyKey: "order-1" })))).toBe(
          "SubmitOutcomeUnknown"
        )
        expect((yield* recording).submits).toHaveLength(1)
        expect((yield* (yield* AccountLimits.AccountLimits).snapshot).tasksInFlight).toBe(0)
      }).pipe(Effect.provide(clientLayer({ script: () => ({ submitFailures: [failure] }) })))
    )
  }

  it.effect("sends an ambiguous task again only when the caller says so", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const first = yield* Effect.exit(client.start(input, { taskKey: "tk_retry_by_hand" }))
      expect(failureTag(first)).toBe("SubmitOutcomeUnknown")
      expect((yield* recording).submits).toHaveLength(1)
      const handle = yield* client.resubmit("tk_retry_by_hand")
      const { submits, created } = yield* recording
      expect(submits).toHaveLength(2)
      expect(created.has(handle.remoteTaskId)).toBe(true)
      const row = yield* client.lookup("tk_retry_by_hand")
      // The old failure is forgotten with the new submit.
      expect([row.state, row.failCode, row.failMessage]).toEqual(["submitted", undefined, undefined])
      // A task that is not ambiguous any more is not sent again.
      expect((yield* client.resubmit("tk_retry_by_hand")).remoteTaskId).toBe(handle.remoteTaskId)
      expect((yield* recording).submits).toHaveLength(2)
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({ submitFailures: [new TaskError.ServerError({ status: 502, message: "Bad Gateway" })] })
        })
      )
    )
  )

  it.effect(
    "records an explicit rejection as rejected, frees its slot, and sends it again on a later start with its key",
    () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const limits = yield* AccountLimits.AccountLimits
        const refused = yield* Effect.exit(client.start(input, { taskKey: "tk_broke", idempotencyKey: "order-9" }))
        expect(failureTag(refused)).toBe("InsufficientCredits")
        const row = yield* client.lookup("tk_broke")
        expect([row.state, row.failCode, row.leaseOwner]).toEqual(["rejected", "InsufficientCredits", undefined])
        expect((yield* recording).submits).toHaveLength(1)
        expect((yield* limits.snapshot).tasksInFlight).toBe(0)
        // After a top-up, the same start goes through: nothing was created the first time.
        const handle = yield* client.start(input, { idempotencyKey: "order-9" })
        expect(handle.taskKey).toBe("tk_broke")
        expect((yield* recording).submits.map((call) => call.failedWith ?? "created")).toEqual([
          "InsufficientCredits",
          "created"
        ])
      }).pipe(
        Effect.provide(
          clientLayer({
            script: () => ({ submitFailures: [new TaskError.InsufficientCredits({ message: "Insufficient credits" })] })
          })
        )
      )
  )

  it.effect("resubmits a rejected task when the caller asks (nothing was created the first time)", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      expect(failureTag(yield* Effect.exit(client.start(input, { taskKey: "tk_topped_up" })))).toBe(
        "InsufficientCredits"
      )
      const handle = yield* client.resubmit("tk_topped_up")
      const row = yield* client.lookup("tk_topped_up")
      expect([row.state, row.remoteTaskId, row.failCode]).toEqual(["submitted", handle.remoteTaskId, undefined])
      expect((yield* recording).submits.map((call) => call.failedWith ?? "created")).toEqual([
        "InsufficientCredits",
        "created"
      ])
    }).pipe(
      Effect.provide(
        clientLayer({ script: () => ({ submitFailures: [new TaskError.InsufficientCredits({ message: "top up" })] }) })
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
      expect((yield* recording).submits).toHaveLength(1)
      const conflict = yield* Effect.exit(client.start({ ...input, prompt: "other" }, { idempotencyKey: "order-7" }))
      expect(failureTag(conflict)).toBe("IdempotencyConflict")
    }).pipe(Effect.provide(clientLayer()))
  )

  it.effect("never gives two rows one remote id: a submit answered with another row's id is ambiguous", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const first = yield* client.start(input, { taskKey: "tk_first" })
      expect(first.remoteTaskId).toBe("task_same")
      const second = yield* Effect.exit(client.start({ ...input, prompt: "second" }, { taskKey: "tk_second" }))
      expect(failureTag(second)).toBe("SubmitOutcomeUnknown")
      expect(failureOf(second)?.message).toContain("task_same")
      const rows = [yield* client.lookup("tk_first"), yield* client.lookup("tk_second")]
      expect(rows.map((row) => [row.state, row.remoteTaskId])).toEqual([
        ["submitted", "task_same"],
        ["ambiguous", undefined]
      ])
      expect((yield* client.lookup("task_same")).taskKey).toBe("tk_first")
    }).pipe(
      Effect.provide(
        clientLayer({
          // A provider that answers every submit with the same id (a replayed or buggy answer).
          provider: (scripted) => ({
            ...scripted,
            submit: (request) => Effect.as(scripted.submit(request), { remoteTaskId: "task_same" })
          })
        })
      )
    )
  )

  it.effect("cuts the provider's secrets out of every provider-supplied text it stores", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const refused = yield* Effect.exit(client.start(input, { taskKey: "tk_refused" }))
      expect(failureTag(refused)).toBe("RequestRejected")
      // The error the caller gets (and prints) is cut too.
      expect(failureOf(refused)?.message).toBe("bad key [redacted]")
      const rejected = yield* client.lookup("tk_refused")
      expect(rejected.failMessage).toContain("[redacted]")
      const failed = yield* Effect.exit(
        advanceUntilDone(yield* Effect.fork(client.generate(input, { taskKey: "tk_failed" })))
      )
      expect(failureTag(failed)).toBe("TaskFailed")
      const row = yield* client.lookup("tk_failed")
      expect(row.failMessage).toContain("[redacted]")
      const gaveUp = yield* runToExit(client.generate(input, { taskKey: "tk_gave_up" }))
      expect([failureTag(gaveUp), failureOf(gaveUp)?.message]).toEqual(["Unauthorized", "key [redacted] revoked"])
      const rows = JSON.stringify(yield* (yield* TaskLedger.TaskLedger).list())
      expect(rows).not.toContain("sk-live-0123456789")
    }).pipe(
      Effect.provide(
        clientLayer({
          script: (_input, taskKey) =>
            taskKey === "tk_refused"
              ? {
                  submitFailures: [
                    new TaskError.RequestRejected({ status: 400, message: "bad key sk-live-0123456789" })
                  ]
                }
              : taskKey === "tk_gave_up"
                ? { statuses: [new TaskError.Unauthorized({ message: "key sk-live-0123456789 revoked" })] }
                : { statuses: [new TaskStatus.Failed({ code: "AUTH", message: "key sk-live-0123456789 echoed" })] },
          provider: (scripted) => ({ ...scripted, redact: TaskProvider.redactSecrets(["sk-live-0123456789"]) })
        })
      )
    )
  )
})

describe("TaskClient.wait", () => {
  it.effect("polls after the first-poll delay, then at the interval, and returns the completed row", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const record = yield* advanceUntilDone(yield* Effect.fork(client.generate(input)))
      expect([record.state, record.leaseOwner]).toEqual(["completed", undefined])
      expect(record.resultUrls).toEqual(["https://results.example/done.mp4"])
      const { statusCalls, submits } = yield* recording
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
      yield* advanceUntilDone(
        yield* Effect.fork(client.generate(input, { firstPollAfter: "75 seconds", pollInterval: "2 seconds" }))
      )
      const { statusCalls, submits } = yield* recording
      expect(statusCalls.map((call) => call.at - submits[0]!.at)).toEqual([75_000, 77_000])
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing, video("v")] }) })))
  )

  it.effect("retries transient status failures with backoff and honours Retry-After", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const record = yield* advanceUntilDone(yield* Effect.fork(client.generate(input)), "250 millis")
      expect(record.state).toBe("completed")
      const times = (yield* recording).statusCalls.map((call) => call.at)
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
      const exit = yield* runToExit(client.generate(input))
      expect(failureTag(exit)).toBe("UnknownRemoteState")
      const polls = (yield* recording).statusCalls.length
      yield* TestClock.adjust(Duration.hours(1))
      expect((yield* recording).statusCalls.length).toBe(polls)
    }).pipe(
      Effect.provide(
        clientLayer({ script: () => ({ statuses: [new TaskError.UnknownRemoteState({ state: "paused" })] }) })
      )
    )
  )

  it.effect("gives up on answers that stay malformed after the retry schedule", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const exit = yield* runToExit(client.generate(input))
      expect(failureTag(exit)).toBe("DecodeError")
      // One first try and six retries, then nothing more.
      expect((yield* recording).statusCalls).toHaveLength(7)
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
      const exit = yield* runToExit(client.wait(handle, { deadline: "2 minutes" }))
      expect(failureTag(exit)).toBe("DeadlineExceeded")
      expect(failureOf(exit)?.message).toContain("tk_slow")
      const row = yield* client.lookup("tk_slow")
      expect([row.state, row.leaseOwner]).toEqual(["processing", undefined])
      // Later the task finishes; waiting again picks it up.
      expect((yield* advanceUntilDone(yield* Effect.fork(client.wait(handle)))).state).toBe("completed")
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

  it.effect("spends one deadline on a generate's submit retries and its wait together", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const exit = yield* runToExit(client.generate(input, { taskKey: "tk_budgeted", deadline: "30 seconds" }))
      expect(failureTag(exit)).toBe("DeadlineExceeded")
      // 20 s went on the retried submit; the wait got the remaining 10 s, not 30 more.
      expect(yield* TestClock.currentTimeMillis).toBeLessThanOrEqual(31_000)
      // Submitted at 20 s, so its first poll (10 s later) was past the deadline: in flight, resumable.
      const row = yield* client.lookup("tk_budgeted")
      expect([row.state, row.leaseOwner]).toEqual(["submitted", undefined])
      // The remote id finds the row as well as our key does.
      expect((yield* client.lookup(row.remoteTaskId!)).taskKey).toBe("tk_budgeted")
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({
            submitFailures: [new TaskError.RateLimited({ message: "slow down", retryAfterMillis: 20_000 })],
            statuses: [processing]
          })
        })
      )
    )
  )

  it.effect("lets two waiters of one task share its polls and both see the end", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const handle = yield* client.start(input)
      const both = yield* Effect.fork(
        Effect.all([client.wait(handle), client.wait(handle)], { concurrency: "unbounded" })
      )
      const [first, second] = yield* advanceUntilDone(both)
      expect([first.state, second.state]).toEqual(["completed", "completed"])
      expect((yield* recording).statusCalls).toHaveLength(2)
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing, video("shared")] }) })))
  )

  it.scoped("survives a defect in a poll: the worker lives on and the task is polled again", () =>
    Effect.gen(function* () {
      const scripted = yield* ScriptedProvider.make({
        script: () => ({ statuses: [video("after-bug")] }),
        hints: { pollPlan: testPlan }
      })
      let calls = 0
      // A provider with a bug: its first status call dies instead of failing with a typed error.
      const client = yield* makeClient({
        ledger: yield* TaskLedger.makeMemory,
        provider: {
          ...scripted.provider,
          status: (remoteTaskId) => (++calls === 1 ? Effect.dieMessage("bug") : scripted.provider.status(remoteTaskId))
        },
        client: { pollConcurrency: 1 }
      })
      const record = yield* advanceUntilDone(yield* Effect.fork(client.generate(input)))
      expect(record.state).toBe("completed")
      expect(calls).toBe(2)
    })
  )

  it.effect("reports a remote failure as TaskFailed with the provider's code", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const exit = yield* runToExit(client.generate(input, { taskKey: "tk_violation" }))
      const error = failureOf(exit)
      expect(error?._tag === "TaskFailed" && [error.code, error.failMessage]).toEqual([
        "CONTENT_VIOLATION",
        "Content does not meet safety guidelines"
      ])
      const row = yield* client.lookup("tk_violation")
      expect([row.state, row.failCode, row.leaseOwner]).toEqual(["failed", "CONTENT_VIOLATION", undefined])
      expect((yield* (yield* AccountLimits.AccountLimits).snapshot).tasksInFlight).toBe(0)
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
  it.effect("keeps at most maxOutputs result URLs of a status listing 200", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const record = yield* advanceUntilDone(yield* Effect.fork(client.generate(input)))
      expect(record.resultUrls).toEqual(Array.from({ length: 8 }, (_, index) => `https://results.example/${index}.mp4`))
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({
            statuses: [
              new TaskStatus.Succeeded({
                outputs: Array.from(
                  { length: 200 },
                  (_, index) => new TaskStatus.TaskOutput({ url: `https://results.example/${index}.mp4` })
                )
              })
            ]
          })
        })
      )
    )
  )
})

describe("TaskClient.watch and events", () => {
  it.effect("streams submitted, pending, processing and succeeded in order", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const handle = yield* client.start(input)
      const events = Chunk.toReadonlyArray(
        yield* advanceUntilDone(yield* Effect.fork(Stream.runCollect(client.watch(handle))))
      )
      expect(events.map((event) => event._tag)).toEqual(["Submitted", "Pending", "Processing", "Succeeded"])
      expect(events[0]!._tag === "Submitted" && events[0]!.remoteTaskId).toBe(handle.remoteTaskId)
    }).pipe(
      Effect.provide(
        clientLayer({ script: () => ({ statuses: [new TaskStatus.Pending({}), processing, video("w")] }) })
      )
    )
  )

  it.effect("ends a watch of a task that is already over at once, with its submit and its end", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const record = yield* advanceUntilDone(yield* Effect.fork(client.generate(input, { taskKey: "tk_over" })))
      const statusCalls = (yield* recording).statusCalls.length
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(client.watch("tk_over")))
      expect(events.map((event) => event._tag)).toEqual(["Submitted", "Succeeded"])
      const last = events[1]!
      expect(last._tag === "Succeeded" && last.resultUrls).toEqual(record.resultUrls)
      expect((yield* recording).statusCalls).toHaveLength(statusCalls)
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [video("over")] }) })))
  )

  it.effect("ends a watch of a failing task with a Failed event, not an error", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const handle = yield* client.start(input)
      const events = Chunk.toReadonlyArray(
        yield* advanceUntilDone(yield* Effect.fork(Stream.runCollect(client.watch(handle))))
      )
      expect(events.map((event) => event._tag)).toEqual(["Submitted", "Processing", "Failed"])
      const last = events[2]!
      expect(last._tag === "Failed" && [last.code, last.record.state]).toEqual(["NSFW", "failed"])
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({ statuses: [processing, new TaskStatus.Failed({ code: "NSFW", message: "no" })] })
        })
      )
    )
  )

  it.effect("tells subscribers why a submit waits (Queued), when it is sent (Sending) and accepted (Submitted)", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const first = yield* client.start(input, { taskKey: "tk_first" })
      const events = yield* Effect.fork(
        Stream.runCollect(
          client.events.pipe(
            Stream.filter((event) => event.taskKey === "tk_second"),
            Stream.takeUntil((event) => event._tag === "Submitted")
          )
        )
      )
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(client.start(input, { taskKey: "tk_second" }))
      yield* TestClock.adjust(Duration.seconds(1))
      // The first task holds the only slot: the second waits, and says so, with nothing sent.
      expect((yield* recording).submits).toHaveLength(1)
      expect((yield* client.lookup("tk_second")).state).toBe("queued")
      yield* advanceUntilDone(yield* Effect.fork(client.wait(first)))
      yield* advanceUntilDone(second)
      const seen = Chunk.toReadonlyArray(yield* Fiber.join(events))
      expect(seen.map((event) => event._tag)).toEqual(["Queued", "Sending", "Submitted"])
      expect(seen[0]!._tag === "Queued" && seen[0]!.reason).toBe("waiting for a concurrent-task slot")
    }).pipe(Effect.provide(clientLayer({ limits: { concurrentTasks: 1 }, script: () => ({ statuses: [video("x")] }) })))
  )
  it.effect("watches a task left queued through Queued and Sending to its end", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      // The first try is refused with a 5-minute Retry-After, longer than this client waits: left queued.
      expect(failureTag(yield* Effect.exit(client.start(input, { taskKey: "tk_watched" })))).toBe("RetryLater")
      const events = Chunk.toReadonlyArray(
        yield* advanceUntilDone(yield* Effect.fork(Stream.runCollect(client.watch("tk_watched"))))
      )
      expect(events.map((event) => event._tag)).toEqual(["Queued", "Sending", "Submitted", "Succeeded"])
      const queued = events[0]!
      expect(queued._tag === "Queued" && [queued.reason, queued.retryAt]).toEqual([
        "the account is paused after a 429",
        300_000
      ])
      expect((yield* recording).submits.map((call) => call.failedWith ?? "created")).toEqual(["RateLimited", "created"])
    }).pipe(
      Effect.provide(
        clientLayer({
          client: { maxRetryAfter: "1 minute" },
          script: () => ({
            submitFailures: [new TaskError.RateLimited({ message: "slow down", retryAfterMillis: 300_000 })],
            statuses: [video("watched")]
          })
        })
      )
    )
  )
})

describe("TaskClient.refresh", () => {
  it.effect(
    "moves a tracked task's poll to now and returns the row after its answer, without waiting for the clock",
    () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const handle = yield* client.start(input, { taskKey: "tk_refresh" })
        const waiting = yield* Effect.fork(client.wait(handle))
        yield* Effect.yieldNow()
        // The first poll is an hour away; refresh asks now and hands back what the answer did.
        const refreshed = yield* client.refresh("tk_refresh")
        expect(refreshed.state).toBe("completed")
        expect((yield* Fiber.join(waiting)).state).toBe("completed")
        expect((yield* recording).statusCalls).toHaveLength(1)
      }).pipe(
        Effect.provide(
          clientLayer({
            client: { pollPlan: { firstPollAfter: Duration.hours(1) } },
            script: () => ({ statuses: [video("now")] })
          })
        )
      )
  )

  it.effect("asks once for a task nobody polls, applies the answer and leaves the task", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      yield* client.start(input, { taskKey: "tk_untracked" })
      const refreshed = yield* client.refresh("tk_untracked")
      expect([refreshed.state, refreshed.leaseOwner]).toEqual(["processing", undefined])
      expect((yield* recording).statusCalls).toHaveLength(1)
      yield* TestClock.adjust(Duration.minutes(5))
      expect((yield* recording).statusCalls).toHaveLength(1)
      // A finished task is not asked about again.
      const again = yield* client.refresh("tk_untracked")
      expect(again.state).toBe("completed")
      expect((yield* client.refresh("tk_untracked")).state).toBe("completed")
      expect((yield* recording).statusCalls).toHaveLength(2)
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing, video("u")] }) })))
  )
})

describe("TaskClient with account limits", () => {
  it.effect("holds a task slot from submit to terminal status", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const first = yield* client.start(input, { taskKey: "tk_first" })
      const second = yield* Effect.fork(client.start(input, { taskKey: "tk_second" }))
      yield* TestClock.adjust(Duration.minutes(1))
      // No wait is running for the first task and it is not terminal: the second cannot be sent.
      expect((yield* recording).submits).toHaveLength(1)
      yield* advanceUntilDone(yield* Effect.fork(client.wait(first)))
      yield* advanceUntilDone(second)
      expect((yield* recording).submits).toHaveLength(2)
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
    const a = yield* makeClient({
      ledger,
      provider: scripted.provider,
      limits: { concurrentTasks: 1 },
      client: { owner: "a" }
    })
    const b = yield* makeClient({ ledger, provider: scripted.provider, client: { owner: "b" } })
    return { a, b }
  })
  const nextStartGoesThrough = (a: TaskClient.Service) =>
    Effect.gen(function* () {
      const next = yield* Effect.fork(a.start(input, { taskKey: "tk_next" }))
      expect((yield* advanceUntilDone(next, Duration.seconds(1), 100)).taskKey).toBe("tk_next")
    })

  it.scoped("frees this process's slot when its poll finds the task finished by another process", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoProcesses
      const handle = yield* a.start(input, { taskKey: "tk_shared" })
      const waiting = yield* Effect.fork(a.wait(handle))
      yield* Effect.yieldNow()
      yield* b.refresh("tk_shared")
      expect((yield* advanceUntilDone(waiting, Duration.seconds(1), 100)).state).toBe("completed")
      yield* nextStartGoesThrough(a)
    })
  )

  it.scoped("frees this process's slot when it finds the task already finished by another process", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoProcesses
      const handle = yield* a.start(input, { taskKey: "tk_shared" })
      yield* b.refresh("tk_shared")
      expect((yield* a.wait(handle)).state).toBe("completed")
      yield* nextStartGoesThrough(a)
    })
  )

  it.scoped("counts a task resumed after a restart against the concurrent-task limit until it ends", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const scripted = yield* ScriptedProvider.make({
        script: () => ({
          timeline: [
            { after: 0, status: processing },
            { after: "2 minutes", status: video("r") }
          ]
        }),
        hints: { pollPlan: testPlan }
      })
      // The first process submits a task and dies.
      yield* Effect.scoped(
        Effect.flatMap(makeClient({ ledger, provider: scripted.provider }), (first) =>
          first.start(input, { taskKey: "tk_running" })
        )
      )
      const client = yield* makeClient({ ledger, provider: scripted.provider, limits: { concurrentTasks: 1 } })
      const waiting = yield* Effect.fork(client.wait("tk_running"))
      yield* TestClock.adjust("1 second")
      const next = yield* Effect.fork(client.start(input, { taskKey: "tk_next" }))
      yield* TestClock.adjust("1 minute")
      // The account's only slot is the resumed task's: the next one waits, unsent.
      expect((yield* scripted.recording).submits.map((call) => call.taskKey)).toEqual(["tk_running"])
      expect((yield* advanceUntilDone(waiting)).state).toBe("completed")
      expect((yield* advanceUntilDone(next)).taskKey).toBe("tk_next")
    })
  )

  it.effect(
    "completes 200 tasks started at once within 60 requests/minute and 10 concurrent tasks",
    () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const fiber = yield* Effect.fork(
          Effect.forEach(
            Array.from({ length: 200 }, (_, index) => index),
            (index) => client.generate({ ...input, prompt: `shot ${index}` }, { taskKey: `tk_${index}` }),
            { concurrency: "unbounded" }
          )
        )
        const records = yield* advanceUntilDone(fiber, Duration.seconds(1))
        expect(records.every((record) => record.state === "completed")).toBe(true)
        const { created, submits, requestTimes, statusCalls } = yield* recording
        expect([created.size, submits.length]).toEqual([200, 200])
        expect(maxInAnyWindow(requestTimes, 60_000)).toBeLessThanOrEqual(60)
        // Concurrency: a task is in flight from its submit to its last (terminal) status answer.
        const spans = [...created].map(([remoteTaskId, task]) => {
          const polls = statusCalls.filter((call) => call.remoteTaskId === remoteTaskId)
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

describe("TaskClient result storage", () => {
  it.scoped("stores a task's outputs once, over real HTTP, when a refresh and a wait ask for them together", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      server.script("GET /once.mp4", {
        status: 200,
        headers: { "content-type": "video/mp4", "content-length": "4" },
        body: "abcd"
      })
      const storage = ResultStorage.layer({ retry: Schedule.stop }).pipe(
        Layer.provide(Layer.merge(ArtifactStore.layerMemory, NodeHttpClient.layerUndici))
      )
      yield* Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const handle = yield* client.start(input, { taskKey: "tk_once" })
        yield* TestClock.adjust(Duration.seconds(10))
        const [refreshed, waited] = yield* Effect.all([client.refresh(handle), client.wait(handle)], {
          concurrency: "unbounded"
        })
        const final = yield* client.wait(handle)
        expect([refreshed.state, waited.state, final.state]).toEqual(["completed", "completed", "completed"])
        expect(final.artifacts.map((artifact) => [artifact.bytes, artifact.contentType])).toEqual([[4, "video/mp4"]])
        expect(server.requests().map((request) => request.pathname)).toEqual(["/once.mp4"])
      }).pipe(
        Effect.provide(
          clientLayer({
            script: () => ({ statuses: [ScriptedProvider.succeededWith(`${server.baseUrl}/once.mp4`)] }),
            resultStorage: storage
          })
        )
      )
    })
  )
})

describe("TaskClient in callback mode", () => {
  it.effect("keeps polling, but only as a slow fallback, and sends the callback URL as given", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      yield* advanceUntilDone(
        yield* Effect.fork(client.generate(input, { callbackUrl: "https://hooks.example/apixo?id=9" }))
      )
      const { statusCalls, submits } = yield* recording
      expect(submits[0]!.callbackUrl).toBe("https://hooks.example/apixo?id=9")
      // First poll at the plan's 10 s, then every 60 s instead of the plan's 5 s.
      expect(statusCalls.map((call) => call.at - submits[0]!.at)).toEqual([10_000, 70_000, 130_000])
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing, processing, video("cb")] }) })))
  )
})

describe("TaskClient never lets an internal race reach a caller", () => {
  it.scoped("two processes tracking one task with tiny leases both finish it, with typed results only", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const scripted = yield* ScriptedProvider.make({
        script: () => ({
          timeline: [
            { after: 0, status: processing },
            { after: "2 minutes", status: video("race") }
          ]
        }),
        hints: { pollPlan: testPlan }
      })
      // Leases shorter than the poll interval: the two keep taking the row from each other.
      const a = yield* makeClient({ ledger, provider: scripted.provider, client: { owner: "a", leaseMillis: 3000 } })
      const b = yield* makeClient({ ledger, provider: scripted.provider, client: { owner: "b", leaseMillis: 3000 } })
      const handle = yield* a.start(input, { taskKey: "tk_contended" })
      const both = yield* Effect.fork(
        Effect.all([Effect.exit(a.wait(handle)), Effect.exit(b.wait(handle)), Effect.exit(b.refresh(handle))], {
          concurrency: "unbounded"
        })
      )
      const exits = yield* advanceUntilDone(both, "700 millis")
      for (const exit of exits) expect(Exit.isSuccess(exit) ? "success" : String(exit.cause)).toBe("success")
      expect(Option.getOrThrow(yield* ledger.get("tk_contended")).state).toBe("completed")
    })
  )
})
