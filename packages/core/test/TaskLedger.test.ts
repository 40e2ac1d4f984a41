// The memory ledger, the reference for every adapter: fenced writes (version and lease holder),
// transitions only as TaskState allows them, remote ids unique, claims only of free rows.
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Option, TestClock } from "effect"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskState from "../src/TaskState.js"

const newTask = (taskKey: string, idempotencyKey?: string, prompt = "a city at dawn"): TaskLedger.NewTask => ({
  taskKey,
  providerId: "apixo",
  modelId: "vidu-q3",
  idempotencyKey,
  input: { mode: "text-to-video", prompt }
})

/** The shortest list of allowed moves from queued to `target` (every state is reachable). */
const pathTo = (target: TaskState.State): ReadonlyArray<TaskState.State> => {
  const previous = new Map<TaskState.State, TaskState.State>()
  const frontier: Array<TaskState.State> = ["queued"]
  const seen = new Set<TaskState.State>(["queued"])
  while (frontier.length > 0) {
    const state = frontier.shift()!
    for (const next of TaskState.transitions[state]) {
      if (seen.has(next)) continue
      seen.add(next)
      previous.set(next, state)
      frontier.push(next)
    }
  }
  const path: Array<TaskState.State> = []
  for (let state = target; state !== "queued"; state = previous.get(state)!) path.unshift(state)
  return path
}

describe("TaskLedger.layerMemory", () => {
  it.effect("returns the first task for a reused idempotency key and rejects a different input", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const first = yield* ledger.create(newTask("tk_1", "order-42"))
      const second = yield* ledger.create(newTask("tk_2", "order-42"))
      expect(first._tag).toBe("Created")
      expect([first.record.state, first.record.version]).toEqual(["queued", 1])
      expect(second._tag).toBe("Existing")
      expect(second.record.taskKey).toBe("tk_1")
      expect(Option.isNone(yield* ledger.get("tk_2"))).toBe(true)
      const conflict = yield* Effect.either(ledger.create(newTask("tk_3", "order-42", "another prompt")))
      expect(Either.isLeft(conflict) && conflict.left._tag).toBe("IdempotencyConflict")
      const sameKey = yield* Effect.either(ledger.create(newTask("tk_1")))
      expect(Either.isLeft(sameKey) && sameKey.left._tag).toBe("LedgerError")
    })
  )

  it.effect("applies a write only at the version the writer last saw", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const { record } = yield* ledger.create(newTask("tk_1"))
      const sending = yield* ledger.transition(TaskLedger.fence(record, "me"), { state: "sending" })
      expect([sending.state, sending.version]).toEqual(["sending", 2])
      // A second writer that read version 1 is refused, and told what the row is now.
      const stale = yield* Effect.flip(ledger.transition(TaskLedger.fence(record, "me"), { state: "cancelled" }))
      expect(stale).toMatchObject({
        _tag: "StaleTransition",
        taskKey: "tk_1",
        expectedVersion: 1,
        actualVersion: 2,
        actual: "sending"
      })
      const submitted = yield* ledger.transition(TaskLedger.fence(sending, "me"), {
        state: "submitted",
        remoteTaskId: "r1"
      })
      expect(Option.getOrThrow(yield* ledger.findByRemoteId("r1")).version).toBe(submitted.version)
      const unknown = yield* Effect.flip(
        ledger.transition({ ...TaskLedger.fence(record, "me"), taskKey: "tk_none" }, {})
      )
      expect(unknown._tag).toBe("UnknownTask")
    })
  )

  it.effect("refuses a move the transitions table does not allow, whatever the version", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const { record } = yield* ledger.create(newTask("tk_1"))
      const illegal = yield* Effect.flip(ledger.transition(TaskLedger.fence(record, "me"), { state: "submitted" }))
      expect(illegal._tag).toBe("LedgerError")
      expect(illegal.message).toContain("queued to submitted")
      expect(Option.getOrThrow(yield* ledger.get("tk_1")).version).toBe(1)
    })
  )

  it.effect("refuses writes by anyone but a live lease holder, until the lease expires", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const { record } = yield* ledger.create({ ...newTask("tk_1"), leaseOwner: "a", leaseExpiresAt: 10_000 })
      const refused = yield* Effect.flip(ledger.transition(TaskLedger.fence(record, "b"), { state: "sending" }))
      expect(refused).toMatchObject({ _tag: "StaleTransition", heldBy: "a", expectedVersion: 1, actualVersion: 1 })
      expect(refused.message).toContain("held by a")
      // The holder itself may write (here: renew its lease).
      const renewed = yield* ledger.transition(TaskLedger.fence(record, "a"), { leaseExpiresAt: 20_000 })
      yield* TestClock.adjust(Duration.seconds(20))
      // Expired: another owner may take it.
      const taken = yield* ledger.transition(TaskLedger.fence(renewed, "b"), {
        leaseOwner: "b",
        leaseExpiresAt: 60_000
      })
      expect([taken.leaseOwner, taken.version]).toEqual(["b", 3])
      const lost = yield* Effect.flip(ledger.transition(TaskLedger.fence(taken, "a"), { state: "sending" }))
      expect(lost).toMatchObject({ _tag: "StaleTransition", heldBy: "b" })
    })
  )

  it.effect("keeps remote ids unique across rows, on create and on transition", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      yield* ledger.create({ ...newTask("tk_1"), state: "submitted", remoteTaskId: "r1" })
      const { record } = yield* ledger.create(newTask("tk_2"))
      const onCreate = yield* Effect.flip(ledger.create({ ...newTask("tk_3"), state: "submitted", remoteTaskId: "r1" }))
      expect(onCreate).toMatchObject({ _tag: "DuplicateRemoteId", remoteTaskId: "r1", taskKey: "tk_3", heldBy: "tk_1" })
      const sending = yield* ledger.transition(TaskLedger.fence(record, "me"), { state: "sending" })
      const onWrite = yield* Effect.flip(
        ledger.transition(TaskLedger.fence(sending, "me"), { state: "submitted", remoteTaskId: "r1" })
      )
      expect(onWrite).toMatchObject({ _tag: "DuplicateRemoteId", heldBy: "tk_1" })
      expect(Option.getOrThrow(yield* ledger.get("tk_2")).state).toBe("sending")
      expect(Option.getOrThrow(yield* ledger.findByRemoteId("r1")).taskKey).toBe("tk_1")
    })
  )

  it.effect("clears a field patched with null and leaves absent fields alone", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const { record } = yield* ledger.create({ ...newTask("tk_1"), leaseOwner: "me", leaseExpiresAt: 5000 })
      const sending = yield* ledger.transition(TaskLedger.fence(record, "me"), { state: "sending" })
      const rejected = yield* ledger.transition(TaskLedger.fence(sending, "me"), {
        state: "rejected",
        failCode: "InsufficientCredits",
        failMessage: "top up"
      })
      expect([rejected.leaseOwner, rejected.failCode]).toEqual(["me", "InsufficientCredits"])
      const reopened = yield* ledger.transition(TaskLedger.fence(rejected, "me"), {
        state: "queued",
        failCode: null,
        failMessage: null,
        leaseOwner: null,
        leaseExpiresAt: null
      })
      expect([reopened.failCode, reopened.failMessage, reopened.leaseOwner, reopened.leaseExpiresAt]).toEqual([
        undefined,
        undefined,
        undefined,
        undefined
      ])
      expect(reopened.input).toEqual(record.input)
    })
  )

  it.effect("claims only unfinished rows whose lease is free or expired, never one a live owner holds", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      yield* ledger.create(newTask("tk_free"))
      yield* ledger.create({ ...newTask("tk_held"), leaseOwner: "worker-a", leaseExpiresAt: 30_000 })
      const { record } = yield* ledger.create(newTask("tk_done"))
      yield* ledger.transition(TaskLedger.fence(record, "x"), { state: "cancelled" })
      const first = yield* ledger.claimUnfinished({ owner: "worker-a", leaseMillis: 60_000 })
      expect(first.map((row) => [row.taskKey, row.leaseOwner, row.leaseExpiresAt])).toEqual([
        ["tk_free", "worker-a", 60_000]
      ])
      // worker-a's own live claims are not claimed again, nor taken by worker-b.
      expect(yield* ledger.claimUnfinished({ owner: "worker-a", leaseMillis: 60_000 })).toEqual([])
      expect(yield* ledger.claimUnfinished({ owner: "worker-b", leaseMillis: 60_000 })).toEqual([])
      yield* TestClock.adjust(Duration.seconds(30))
      expect(
        (yield* ledger.claimUnfinished({ owner: "worker-b", leaseMillis: 60_000 })).map((row) => row.taskKey)
      ).toEqual(["tk_held"])
    })
  )

  it.effect("accepts exactly the moves TaskState allows, from every state to every state", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      let index = 0
      const cases = TaskState.states.flatMap((from) => TaskState.states.map((to) => [from, to] as const))
      expect(cases).toHaveLength(121)
      for (const [from, to] of cases) {
        const taskKey = `tk_${index++}`
        let row = (yield* ledger.create(newTask(taskKey))).record
        for (const state of pathTo(from)) {
          row = yield* ledger.transition(TaskLedger.fence(row, "me"), {
            state,
            ...(state === "submitted" && row.remoteTaskId === undefined ? { remoteTaskId: `r_${taskKey}` } : {})
          })
        }
        expect(row.state).toBe(from)
        const result = yield* Effect.either(ledger.transition(TaskLedger.fence(row, "me"), { state: to }))
        expect([from, to, Either.isRight(result)]).toEqual([from, to, TaskState.canTransition(from, to)])
        if (Either.isLeft(result)) expect(result.left._tag).toBe("LedgerError")
      }
    })
  )
})
