// The lifecycle's faults, each driven by TestClock: a submit that never answers, a Retry-After
// past what the caller will wait, an interrupt in every phase, a lease lost to another process,
// cancel in every state, and what reconcile and resume do with the rows left behind. Two
// "processes" are two clients on one memory ledger and one scripted provider.
import { describe, expect, it } from "@effect/vitest"
import { ScriptedProvider } from "@reelkit/testing"
import { Deferred, Duration, Effect, Exit, Fiber, Option, TestClock } from "effect"
import * as AccountLimits from "../src/AccountLimits.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskError from "../src/TaskError.js"
import { TaskHandle } from "../src/TaskHandle.js"
import * as TaskLedger from "../src/TaskLedger.js"
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
  type ProviderChange,
  runToExit,
  testPlan,
  video
} from "./utils.js"

const limits = AccountLimits.AccountLimits
const submitsOf = (taskKey: string) =>
  Effect.map(recording, ({ submits }) => submits.filter((call) => call.taskKey === taskKey).length)

/** A server that takes the POST (the task is created) and never answers. */
const silentSubmit: ProviderChange = (scripted) => ({
  ...scripted,
  submit: (request) => Effect.zipRight(scripted.submit(request), Effect.never)
})

/** A provider that documents a cancel, recording each call. */
const withCancel =
  (cancels: Array<string>): ProviderChange =>
  (scripted) => ({
    ...scripted,
    cancel: (remoteTaskId) =>
      Effect.sync(() => {
        cancels.push(remoteTaskId)
      })
  })

/** Two processes (clients) on one ledger and one provider. */
const twoProcesses = (options: {
  readonly script?: ScriptedProvider.Options["script"]
  readonly provider?: ProviderChange
  readonly a?: Parameters<typeof makeClient>[0]["client"]
  readonly aLimits?: AccountLimits.Options
  readonly ledgerOfA?: (ledger: TaskLedger.Service) => TaskLedger.Service
}) =>
  Effect.gen(function* () {
    const ledger = yield* TaskLedger.makeMemory
    const scripted = yield* ScriptedProvider.make({ script: options.script, hints: { pollPlan: testPlan } })
    const provider = options.provider?.(scripted.provider) ?? scripted.provider
    const a = yield* makeClient({
      ledger: options.ledgerOfA?.(ledger) ?? ledger,
      provider,
      limits: options.aLimits,
      client: { owner: "a", ...options.a }
    })
    const b = yield* makeClient({ ledger, provider, client: { owner: "b" } })
    return { ledger, scripted, a, b }
  })

describe("a submit that gets no answer", () => {
  it.effect("ends at submitTimeout as ambiguous with SubmitOutcomeUnknown, and is never sent again", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const fiber = yield* Effect.fork(client.generate(input, { taskKey: "tk_silent" }))
      yield* TestClock.adjust("4999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      expect((yield* client.lookup("tk_silent")).state).toBe("sending")
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(fiber)
      expect(failureTag(exit)).toBe("SubmitOutcomeUnknown")
      expect(failureOf(exit)?.message).toContain("no answer within 5 s")
      const row = yield* client.lookup("tk_silent")
      expect([row.state, row.leaseOwner, row.remoteTaskId]).toEqual(["ambiguous", undefined, undefined])
      expect((yield* (yield* limits).snapshot).tasksInFlight).toBe(0)
      yield* TestClock.adjust(Duration.hours(1))
      expect(yield* submitsOf("tk_silent")).toBe(1)
    }).pipe(Effect.provide(clientLayer({ provider: silentSubmit, client: { submitTimeout: "5 seconds" } })))
  )

  it.effect("waits 30 s by default", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const fiber = yield* Effect.fork(client.start(input, { taskKey: "tk_default" }))
      yield* TestClock.adjust("29 seconds")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 second")
      expect(failureTag(yield* Fiber.await(fiber))).toBe("SubmitOutcomeUnknown")
    }).pipe(Effect.provide(clientLayer({ provider: silentSubmit })))
  )
})

describe("RetryLater", () => {
  it.effect(
    "ends a start whose Retry-After exceeds maxRetryAfter, the row queued and free; reconcile later sends it once",
    () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const exit = yield* Effect.exit(client.start(input, { taskKey: "tk_later" }))
        const error = failureOf(exit)
        expect(error?._tag === "RetryLater" && [error.taskKey, error.retryAt]).toEqual(["tk_later", 3_600_000])
        expect(error?.message).toContain("retry after 1970-01-01T01:00:00.000Z")
        const row = yield* client.lookup("tk_later")
        expect([row.state, row.leaseOwner, row.remoteTaskId]).toEqual(["queued", undefined, undefined])
        expect((yield* (yield* limits).snapshot).tasksInFlight).toBe(0)
        // Nothing is sent by itself meanwhile.
        yield* TestClock.adjust(Duration.hours(2))
        expect(yield* submitsOf("tk_later")).toBe(1)
        const summary = yield* advanceUntilDone(yield* Effect.fork(client.reconcile()))
        expect(summary.completed).toEqual(["tk_later"])
        const { submits, created } = yield* recording
        expect(submits.map((call) => call.failedWith ?? "created")).toEqual(["RateLimited", "created"])
        expect(created.size).toBe(1)
      }).pipe(
        Effect.provide(
          clientLayer({
            script: () => ({
              submitFailures: [
                new TaskError.RateLimited({ message: "Too many requests", retryAfterMillis: 3_600_000 })
              ],
              statuses: [video("later")]
            })
          })
        )
      )
  )

  it.effect("ends a generate at once when the Retry-After is past its deadline; waiting later sends it once", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const exit = yield* runToExit(client.generate(input, { taskKey: "tk_deadline", deadline: "10 seconds" }))
      expect(failureTag(exit)).toBe("RetryLater")
      // It did not sit out the 60 s, nor even its own 10 s deadline.
      expect(yield* TestClock.currentTimeMillis).toBeLessThan(10_000)
      expect((yield* client.lookup("tk_deadline")).state).toBe("queued")
      const record = yield* advanceUntilDone(yield* Effect.fork(client.wait("tk_deadline")))
      expect(record.state).toBe("completed")
      expect((yield* recording).submits.map((call) => call.failedWith ?? "created")).toEqual(["RateLimited", "created"])
      expect((yield* recording).submits[1]!.at).toBeGreaterThanOrEqual(60_000)
    }).pipe(
      Effect.provide(
        clientLayer({
          script: () => ({
            submitFailures: [new TaskError.RateLimited({ message: "slow down", retryAfterMillis: 60_000 })],
            statuses: [video("deadline")]
          })
        })
      )
    )
  )

  it.effect("ends a start at once when the account is paused past its deadline, nothing sent and the row free", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      yield* (yield* limits).backOff(Duration.hours(1))
      const exit = yield* runToExit(client.start(input, { taskKey: "tk_paused", deadline: "10 seconds" }))
      const error = failureOf(exit)
      expect(error?._tag === "RetryLater" && [error.retryAt, error.reason]).toEqual([
        3_600_000,
        "the account is paused after a 429"
      ])
      expect(yield* submitsOf("tk_paused")).toBe(0)
      const row = yield* client.lookup("tk_paused")
      expect([row.state, row.leaseOwner]).toEqual(["queued", undefined])
      expect(yield* (yield* limits).holdsTaskSlot("tk_paused")).toBe(false)
    }).pipe(Effect.provide(clientLayer()))
  )

  it.effect("ends a start at its deadline while it waits for a slot, giving back the slot and the lease", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const first = yield* client.start(input, { taskKey: "tk_first" })
      const exit = yield* runToExit(client.start(input, { taskKey: "tk_second", deadline: "10 seconds" }))
      const error = failureOf(exit)
      expect(error?._tag === "RetryLater" && [error.retryAt, error.reason]).toEqual([
        10_000,
        "waiting for a concurrent-task slot"
      ])
      const row = yield* client.lookup("tk_second")
      expect([row.state, row.leaseOwner]).toEqual(["queued", undefined])
      expect(yield* (yield* limits).holdsTaskSlot("tk_second")).toBe(false)
      // Once the first is done, a reconcile sends the second, once.
      yield* advanceUntilDone(yield* Effect.fork(client.wait(first)))
      const summary = yield* advanceUntilDone(yield* Effect.fork(client.reconcile()))
      expect(summary.completed).toEqual(["tk_second"])
      expect(yield* submitsOf("tk_second")).toBe(1)
    }).pipe(Effect.provide(clientLayer({ limits: { concurrentTasks: 1 }, script: () => ({ statuses: [video("x")] }) })))
  )
})

describe("interrupting generate (or wait)", () => {
  it.effect("while queued: the row stays queued with no lease and no slot; reconcile sends it exactly once", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const first = yield* client.start(input, { taskKey: "tk_first" })
      const fiber = yield* Effect.fork(client.generate(input, { taskKey: "tk_queued" }))
      yield* TestClock.adjust("1 second")
      expect((yield* client.lookup("tk_queued")).state).toBe("queued")
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      const row = yield* client.lookup("tk_queued")
      expect([row.state, row.leaseOwner]).toEqual(["queued", undefined])
      expect(yield* (yield* limits).holdsTaskSlot("tk_queued")).toBe(false)
      expect(yield* submitsOf("tk_queued")).toBe(0)
      yield* advanceUntilDone(yield* Effect.fork(client.wait(first)))
      const summary = yield* advanceUntilDone(yield* Effect.fork(client.reconcile()))
      expect(summary.completed).toEqual(["tk_queued"])
      expect(yield* submitsOf("tk_queued")).toBe(1)
    }).pipe(Effect.provide(clientLayer({ limits: { concurrentTasks: 1 }, script: () => ({ statuses: [video("q")] }) })))
  )

  it.effect("while sending: the interrupt ends the call at once and the row becomes ambiguous, never re-sent", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const fiber = yield* Effect.fork(client.generate(input, { taskKey: "tk_on_wire" }))
      yield* TestClock.adjust("1 second")
      expect((yield* client.lookup("tk_on_wire")).state).toBe("sending")
      const before = yield* TestClock.currentTimeMillis
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(yield* TestClock.currentTimeMillis).toBe(before)
      const row = yield* client.lookup("tk_on_wire")
      expect([row.state, row.leaseOwner]).toEqual(["ambiguous", undefined])
      expect(row.failMessage).toContain("interrupted")
      expect((yield* (yield* limits).snapshot).tasksInFlight).toBe(0)
      const summary = yield* advanceUntilDone(yield* Effect.fork(client.reconcile()))
      expect(summary.claimed).toBe(0)
      expect(yield* submitsOf("tk_on_wire")).toBe(1)
    }).pipe(Effect.provide(clientLayer({ provider: silentSubmit })))
  )

  it.scoped(
    "while waiting: polling stops, the row stays in flight with no lease, and another process finishes it",
    () =>
      Effect.gen(function* () {
        const { a, b, ledger, scripted } = yield* twoProcesses({
          script: () => ({
            timeline: [
              { after: 0, status: processing },
              { after: "2 minutes", status: video("w") }
            ]
          })
        })
        const handle = yield* a.start(input, { taskKey: "tk_waiting" })
        const fiber = yield* Effect.fork(a.wait(handle))
        yield* TestClock.adjust("30 seconds")
        const polls = (yield* scripted.recording).statusCalls.length
        expect(polls).toBeGreaterThan(0)
        expect(Exit.isInterrupted(yield* Fiber.interrupt(fiber))).toBe(true)
        yield* TestClock.adjust("5 minutes")
        expect((yield* scripted.recording).statusCalls.length).toBe(polls)
        const row = Option.getOrThrow(yield* ledger.get("tk_waiting"))
        expect([row.state, row.remoteTaskId, row.leaseOwner]).toEqual(["processing", handle.remoteTaskId, undefined])
        const summary = yield* advanceUntilDone(yield* Effect.fork(b.reconcile()))
        expect(summary.completed).toEqual(["tk_waiting"])
        expect((yield* scripted.recording).submits).toHaveLength(1)
      })
  )
  it.effect(
    "interrupting one of two callers sharing a submit on the wire leaves the other with SubmitOutcomeUnknown",
    () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const first = yield* Effect.fork(client.start(input, { taskKey: "tk_shared", idempotencyKey: "order-1" }))
        yield* TestClock.adjust("1 second")
        const second = yield* Effect.fork(client.start(input, { idempotencyKey: "order-1" }))
        yield* TestClock.adjust("1 second")
        expect(Exit.isInterrupted(yield* Fiber.interrupt(first))).toBe(true)
        const exit = yield* Fiber.await(second)
        expect(Exit.isInterrupted(exit) ? "interrupted" : failureTag(exit)).toBe("SubmitOutcomeUnknown")
        expect((yield* client.lookup("tk_shared")).state).toBe("ambiguous")
        expect(yield* submitsOf("tk_shared")).toBe(1)
      }).pipe(Effect.provide(clientLayer({ provider: silentSubmit })))
  )

  it.effect("interrupting one of two callers sharing a queued submit lets the other send it, once", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const blocker = yield* client.start(input, { taskKey: "tk_blocker" })
      const first = yield* Effect.fork(client.start(input, { taskKey: "tk_shared", idempotencyKey: "order-2" }))
      yield* TestClock.adjust("1 second")
      const second = yield* Effect.fork(client.start(input, { idempotencyKey: "order-2" }))
      yield* TestClock.adjust("1 second")
      expect(Exit.isInterrupted(yield* Fiber.interrupt(first))).toBe(true)
      yield* advanceUntilDone(yield* Effect.fork(client.wait(blocker)))
      const handle = yield* advanceUntilDone(second)
      expect(handle.taskKey).toBe("tk_shared")
      expect(yield* submitsOf("tk_shared")).toBe(1)
    }).pipe(Effect.provide(clientLayer({ limits: { concurrentTasks: 1 }, script: () => ({ statuses: [video("s")] }) })))
  )
})

describe("a lost lease", () => {
  it.scoped("a process whose queued row was taken over while it stalled neither writes nor sends it", () =>
    Effect.gen(function* () {
      // Process A's ledger connection stalls (its writes hang) until released: its lease runs out.
      let stalled = false
      let appliedWhileStalled = 0
      const released = yield* Deferred.make<void>()
      const { a, b, ledger, scripted } = yield* twoProcesses({
        script: () => ({ statuses: [video("taken")] }),
        a: { submitLeaseMillis: 3000 },
        aLimits: { requestsPerWindow: 1 },
        ledgerOfA: (ledger) => ({
          ...ledger,
          transition: (expected, patch) =>
            stalled
              ? Deferred.await(released).pipe(
                  Effect.zipRight(ledger.transition(expected, patch)),
                  Effect.tap(() => {
                    appliedWhileStalled += 1
                  })
                )
              : ledger.transition(expected, patch)
        })
      })
      yield* a.start(input, { taskKey: "tk_first" })
      // A's only request this minute is spent: the second waits, queued and held by A.
      const lost = yield* Effect.fork(a.start(input, { taskKey: "tk_lost" }))
      yield* TestClock.adjust("100 millis")
      expect(Option.getOrThrow(yield* ledger.get("tk_lost")).leaseOwner).toMatch(/^a-/)
      stalled = true
      yield* TestClock.adjust("5 seconds")
      // B finds the queued row free (A's lease expired) and sends it: its first and only submit.
      const summary = yield* advanceUntilDone(yield* Effect.fork(b.reconcile()))
      expect([...summary.completed].sort()).toEqual(["tk_first", "tk_lost"])
      stalled = false
      yield* Deferred.succeed(released, undefined)
      const exit = yield* runToExit(Fiber.join(lost))
      // A learns what became of the row; no internal race signal reaches its caller.
      expect(Exit.isSuccess(exit) ? exit.value.remoteTaskId : String(exit)).toBe(
        Option.getOrThrow(yield* ledger.get("tk_lost")).remoteTaskId
      )
      expect(appliedWhileStalled).toBe(0)
      const { submits, created } = yield* scripted.recording
      expect(submits.filter((call) => call.taskKey === "tk_lost")).toHaveLength(1)
      expect(created.size).toBe(2)
    })
  )

  it.scoped(
    "a submit that outlives its lease is judged ambiguous by another process, and its answer still records the remote id",
    () =>
      Effect.gen(function* () {
        // The server creates the task at once and answers after 5 s; A's submit lease is 1 s.
        const { a, b, ledger, scripted } = yield* twoProcesses({
          provider: (scripted) => ({
            ...scripted,
            submit: (request) => Effect.zipLeft(scripted.submit(request), Effect.sleep("5 seconds"))
          }),
          a: { submitLeaseMillis: 1000 }
        })
        const fiber = yield* Effect.fork(a.start(input, { taskKey: "tk_slow_answer" }))
        yield* TestClock.adjust("2 seconds")
        const summary = yield* b.reconcile({ deadline: "1 second" })
        expect(summary.ambiguous).toEqual(["tk_slow_answer"])
        expect(Option.getOrThrow(yield* ledger.get("tk_slow_answer")).state).toBe("ambiguous")
        const handle = yield* advanceUntilDone(fiber)
        const [remoteTaskId] = [...(yield* scripted.recording).created.keys()]
        expect(handle.remoteTaskId).toBe(remoteTaskId)
        const row = Option.getOrThrow(yield* ledger.get("tk_slow_answer"))
        expect([row.state, row.remoteTaskId]).toEqual(["submitted", remoteTaskId])
        expect((yield* scripted.recording).submits).toHaveLength(1)
      })
  )
})

describe("TaskClient.cancel", () => {
  it.effect("cancels a queued row with a ledger write only: no provider call, and nothing is sent later", () => {
    const cancels: Array<string> = []
    return Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      expect(failureTag(yield* Effect.exit(client.start(input, { taskKey: "tk_unsent" })))).toBe("RetryLater")
      const cancelled = yield* client.cancel("tk_unsent")
      expect([cancelled.state, cancelled.leaseOwner]).toEqual(["cancelled", undefined])
      expect(cancels).toEqual([])
      yield* TestClock.adjust(Duration.hours(2))
      const summary = yield* advanceUntilDone(yield* Effect.fork(client.reconcile()))
      expect(summary.claimed).toBe(0)
      expect(yield* submitsOf("tk_unsent")).toBe(1)
      expect(failureTag(yield* Effect.exit(client.wait("tk_unsent")))).toBe("TaskCancelled")
    }).pipe(
      Effect.provide(
        clientLayer({
          provider: withCancel(cancels),
          script: () => ({
            submitFailures: [new TaskError.RateLimited({ message: "later", retryAfterMillis: 3_600_000 })]
          })
        })
      )
    )
  })

  it.effect(
    "cancels a row this process is still waiting to send: its start ends with TaskCancelled and nothing is sent",
    () => {
      const cancels: Array<string> = []
      return Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const first = yield* client.start(input, { taskKey: "tk_first" })
        const second = yield* Effect.fork(client.start(input, { taskKey: "tk_second" }))
        yield* TestClock.adjust("1 second")
        const cancelled = yield* runToExit(client.cancel("tk_second"))
        expect(Exit.isSuccess(cancelled) && cancelled.value.state).toBe("cancelled")
        yield* advanceUntilDone(yield* Effect.fork(client.wait(first)))
        expect(failureTag(yield* runToExit(Fiber.join(second)))).toBe("TaskCancelled")
        expect(yield* submitsOf("tk_second")).toBe(0)
        expect(cancels).toEqual([])
        expect(yield* (yield* limits).holdsTaskSlot("tk_second")).toBe(false)
      }).pipe(
        Effect.provide(
          clientLayer({
            limits: { concurrentTasks: 1 },
            provider: withCancel(cancels),
            script: () => ({ statuses: [video("c")] })
          })
        )
      )
    }
  )

  it.scoped("cancels a queued row another process holds once that process lets go of it, never sending it", () =>
    Effect.gen(function* () {
      const { a, b, ledger, scripted } = yield* twoProcesses({ aLimits: { requestsPerWindow: 1 } })
      yield* a.start(input, { taskKey: "tk_first" })
      const sending = yield* Effect.fork(a.start(input, { taskKey: "tk_held" }))
      yield* TestClock.adjust("100 millis")
      const cancelling = yield* Effect.fork(b.cancel("tk_held"))
      yield* TestClock.adjust("10 seconds")
      // A holds it and may send it any moment: B may not cancel it under A's feet.
      expect(Option.isNone(yield* Fiber.poll(cancelling))).toBe(true)
      expect(Option.getOrThrow(yield* ledger.get("tk_held")).state).toBe("queued")
      // A gives up (Ctrl-C): its lease is given back and B's cancel goes through.
      yield* Fiber.interrupt(sending)
      const cancelled = yield* advanceUntilDone(cancelling)
      expect(cancelled.state).toBe("cancelled")
      yield* TestClock.adjust("2 minutes")
      expect((yield* scripted.recording).submits.filter((call) => call.taskKey === "tk_held")).toHaveLength(0)
    })
  )

  it.effect(
    "cancels a task whose submit is on the wire as soon as the provider accepts it, not when it finishes",
    () => {
      const cancels: Array<string> = []
      return Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const starting = yield* Effect.fork(client.start(input, { taskKey: "tk_in_flight" }))
        yield* TestClock.adjust("1 second")
        expect((yield* client.lookup("tk_in_flight")).state).toBe("sending")
        const cancelling = yield* Effect.fork(client.cancel("tk_in_flight"))
        yield* TestClock.adjust("4 seconds")
        const handle = yield* Fiber.join(starting)
        const cancelled = yield* Fiber.join(cancelling)
        expect([cancelled.state, cancels]).toEqual(["cancelled", [handle.remoteTaskId]])
        // It never waited for the task itself: the one status request is the cancel's confirmation.
        expect((yield* recording).statusCalls).toHaveLength(1)
      }).pipe(
        Effect.provide(
          clientLayer({
            script: () => ({ statuses: [processing] }),
            provider: (scripted) => ({
              ...withCancel(cancels)(scripted),
              submit: (request) => Effect.zipLeft(scripted.submit(request), Effect.sleep("5 seconds"))
            })
          })
        )
      )
    }
  )

  it.effect("cancels a running task with the provider, then records it cancelled and ends its waiters", () => {
    const cancels: Array<string> = []
    return Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const handle = yield* client.start(input, { taskKey: "tk_running" })
      const waiting = yield* Effect.fork(client.wait(handle))
      yield* TestClock.adjust("15 seconds")
      const polls = (yield* recording).statusCalls.length
      expect(polls).toBeGreaterThan(0)
      const cancelled = yield* client.cancel("tk_running")
      expect([cancelled.state, cancelled.leaseOwner]).toEqual(["cancelled", undefined])
      expect(cancels).toEqual([handle.remoteTaskId])
      expect(failureTag(yield* Fiber.await(waiting))).toBe("TaskCancelled")
      // One status request confirmed the task was still running when the cancel landed; then no more.
      const after = (yield* recording).statusCalls.length
      expect(after).toBe(polls + 1)
      yield* TestClock.adjust("5 minutes")
      expect((yield* recording).statusCalls.length).toBe(after)
      expect((yield* (yield* limits).snapshot).tasksInFlight).toBe(0)
    }).pipe(Effect.provide(clientLayer({ provider: withCancel(cancels), script: () => ({ statuses: [processing] }) })))
  })

  it.effect("records a task that finished before its cancel landed as finished, not cancelled", () => {
    const cancels: Array<string> = []
    return Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const handle = yield* client.start(input, { taskKey: "tk_too_late" })
      const row = yield* client.cancel("tk_too_late")
      expect(cancels).toEqual([handle.remoteTaskId])
      expect([row.state, row.resultUrls]).toEqual(["completed", ["https://results.example/done-first.mp4"]])
      expect((yield* client.lookup("tk_too_late")).state).toBe("completed")
    }).pipe(
      Effect.provide(
        clientLayer({ provider: withCancel(cancels), script: () => ({ statuses: [video("done-first")] }) })
      )
    )
  })

  it.effect("fails with CancelNotSupported when the provider documents no cancel, changing nothing", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      yield* client.start(input, { taskKey: "tk_stuck" })
      const error = yield* Effect.flip(client.cancel("tk_stuck"))
      expect(error).toMatchObject({ _tag: "CancelNotSupported", providerId: "scripted", modelId: "scripted-model" })
      expect(error.message).toContain("scripted")
      expect((yield* client.lookup("tk_stuck")).state).toBe("submitted")
      expect((yield* recording).statusCalls).toHaveLength(0)
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing] }) })))
  )
})

describe("TaskClient.reconcile", () => {
  it.scoped(
    "after a restart: tracks what was submitted, sends what was provably never sent, marks what was on the wire ambiguous",
    () =>
      Effect.gen(function* () {
        const ledger = yield* TaskLedger.makeMemory
        const scripted = yield* ScriptedProvider.make({
          script: () => ({
            timeline: [
              { after: 0, status: processing },
              { after: "3 minutes", status: video("r") }
            ]
          }),
          hints: { pollPlan: { ...testPlan, deadline: Duration.hours(1) } }
        })
        // First process: two tasks submitted, then it "dies" (its scope closes) before waiting.
        yield* Effect.scoped(
          Effect.gen(function* () {
            const client = yield* makeClient({ ledger, provider: scripted.provider })
            yield* client.start(input, { taskKey: "tk_a" })
            yield* client.start({ ...input, prompt: "second" }, { taskKey: "tk_b" })
          })
        )
        // Rows as a crashed process leaves them, their claims expired: one still queued (never
        // sent), one caught sending.
        const prepared = yield* scripted.provider.prepare({ input })
        for (const [taskKey, state] of [
          ["tk_queued", "queued"],
          ["tk_sending", "sending"]
        ] as const) {
          const { record } = yield* ledger.create({
            taskKey,
            providerId: "scripted",
            modelId: "scripted-model",
            input: prepared.input,
            request: prepared.wire,
            leaseOwner: "dead-process",
            leaseExpiresAt: 1
          })
          if (state === "sending") yield* ledger.transition(TaskLedger.fence(record, "dead-process"), { state })
        }
        yield* TestClock.adjust("1 second")
        const client = yield* makeClient({ ledger, provider: scripted.provider })
        const summary = yield* advanceUntilDone(yield* Effect.fork(client.reconcile()))
        expect(summary.claimed).toBe(4)
        expect([...summary.completed].sort()).toEqual(["tk_a", "tk_b", "tk_queued"])
        expect(summary.ambiguous).toEqual(["tk_sending"])
        expect(Option.getOrThrow(yield* ledger.get("tk_sending")).state).toBe("ambiguous")
        const { submits } = yield* scripted.recording
        expect(submits.map((call) => call.taskKey).sort()).toEqual(["tk_a", "tk_b", "tk_queued"])
      })
  )

  it.scoped("leaves a live process's submit and tracked task to it, and reports why", () =>
    Effect.gen(function* () {
      const { a, b, ledger } = yield* twoProcesses({
        script: () => ({ statuses: [processing, video("held")] }),
        a: { submitLeaseMillis: 300_000 },
        aLimits: { requestsPerWindow: 1 }
      })
      const tracked = yield* a.start(input, { taskKey: "tk_tracked" })
      const waiting = yield* Effect.fork(a.wait(tracked))
      // A's submit of the next task waits a long while for the request budget.
      const pending = yield* Effect.fork(a.start(input, { taskKey: "tk_pending" }))
      yield* TestClock.adjust("10 seconds")
      expect(Option.getOrThrow(yield* ledger.get("tk_pending")).state).toBe("queued")
      const summary = yield* b.reconcile({ deadline: "10 seconds" })
      expect([...summary.unfinished].map((entry) => [entry.taskKey, entry.error]).sort()).toEqual([
        ["tk_pending", "SubmitInProgress"],
        ["tk_tracked", "HeldElsewhere"]
      ])
      expect(summary.unfinished[0]!.reason).toContain("a-")
      expect([summary.claimed, summary.ambiguous]).toEqual([0, []])
      // A carries on as if nothing happened.
      const handle = yield* advanceUntilDone(pending)
      expect((yield* advanceUntilDone(waiting)).state).toBe("completed")
      const row = Option.getOrThrow(yield* ledger.get("tk_pending"))
      expect([row.state, row.remoteTaskId, row.leaseOwner]).toEqual(["submitted", handle.remoteTaskId, undefined])
    })
  )

  it.effect("stops every poll and gives every lease back when it is interrupted, leaving the rows resumable", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const keys = ["tk_1", "tk_2", "tk_3"]
      for (const taskKey of keys) yield* client.start(input, { taskKey })
      const fiber = yield* Effect.fork(client.reconcile())
      yield* TestClock.adjust("30 seconds")
      const polls = (yield* recording).statusCalls.length
      expect(polls).toBeGreaterThanOrEqual(keys.length)
      expect(Exit.isInterrupted(yield* Fiber.interrupt(fiber))).toBe(true)
      yield* TestClock.adjust("5 minutes")
      expect((yield* recording).statusCalls.length).toBe(polls)
      const rows = yield* Effect.forEach(keys, (taskKey) => client.lookup(taskKey))
      expect(rows.map((row) => [row.state, row.leaseOwner])).toEqual(keys.map(() => ["processing", undefined]))
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [processing] }) })))
  )

  it.effect(
    "reports a task still running at the deadline as unfinished with DeadlineExceeded, and a failed one as failed",
    () =>
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        yield* client.start(input, { taskKey: "tk_long" })
        yield* client.start({ ...input, prompt: "fails" }, { taskKey: "tk_fails" })
        const summary = yield* advanceUntilDone(yield* Effect.fork(client.reconcile({ deadline: "1 minute" })))
        expect(summary.unfinished.map((entry) => [entry.taskKey, entry.error])).toEqual([
          ["tk_long", "DeadlineExceeded"]
        ])
        expect(summary.unfinished[0]!.reason).toContain("tk_long")
        expect([summary.failed, summary.claimed]).toEqual([["tk_fails"], 2])
        const row = yield* client.lookup("tk_long")
        expect([row.state, row.leaseOwner]).toEqual(["processing", undefined])
      }).pipe(
        Effect.provide(
          clientLayer({
            script: (_input, taskKey) =>
              taskKey === "tk_fails"
                ? { statuses: [new TaskStatus.Failed({ code: "NSFW", message: "no" })] }
                : { statuses: [processing] }
          })
        )
      )
  )
})

describe("TaskClient.resume", () => {
  const handleFor = (taskKey: string, remoteTaskId: string) =>
    new TaskHandle({ providerId: "scripted", modelId: "scripted-model", taskKey, remoteTaskId, submittedAt: 0 })

  it.effect("resumes a handle from another process into an empty ledger", () =>
    Effect.gen(function* () {
      const scripted = yield* ScriptedProvider.ScriptedProvider
      const client = yield* TaskClient.TaskClient
      const prepared = yield* scripted.provider.prepare({ input })
      const accepted = yield* scripted.provider.submit({ taskKey: "elsewhere", wire: prepared.wire })
      const record = yield* advanceUntilDone(
        yield* Effect.fork(client.resume(handleFor("elsewhere", accepted.remoteTaskId)))
      )
      expect([record.state, record.remoteTaskId, record.taskKey]).toEqual([
        "completed",
        accepted.remoteTaskId,
        "elsewhere"
      ])
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [video("elsewhere")] }) })))
  )

  it.effect("waits on the row that already has the handle's remote id instead of writing a second one", () =>
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const original = yield* client.start(input, { taskKey: "tk_original" })
      const record = yield* advanceUntilDone(
        yield* Effect.fork(client.resume(handleFor("tk_copy", original.remoteTaskId)))
      )
      expect([record.taskKey, record.state]).toEqual(["tk_original", "completed"])
      expect(Option.isNone(yield* (yield* TaskLedger.TaskLedger).get("tk_copy"))).toBe(true)
    }).pipe(Effect.provide(clientLayer({ script: () => ({ statuses: [video("copy")] }) })))
  )
})
