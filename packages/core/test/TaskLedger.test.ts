import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as TaskLedger from "../src/TaskLedger.js"

const newTask = (taskKey: string, idempotencyKey?: string, prompt = "a city at dawn"): TaskLedger.NewTask => ({
  taskKey,
  providerId: "apixo",
  modelId: "vidu-q3",
  idempotencyKey,
  input: { mode: "text-to-video", prompt }
})

describe("TaskLedger.layerMemory", () => {
  it.effect("returns the first task for a reused idempotency key and rejects a different input", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      const first = yield* ledger.create(newTask("tk_1", "order-42"))
      const second = yield* ledger.create(newTask("tk_2", "order-42"))
      expect(first._tag).toBe("Created")
      expect(second._tag).toBe("Existing")
      expect(second.record.taskKey).toBe("tk_1")
      expect(Option.isNone(yield* ledger.get("tk_2"))).toBe(true)
      const conflict = yield* Effect.either(ledger.create(newTask("tk_3", "order-42", "another prompt")))
      expect(Either.isLeft(conflict) && conflict.left._tag).toBe("IdempotencyConflict")
    })
  )

  it.effect("applies a transition only from the expected state", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      yield* ledger.create(newTask("tk_1"))
      const submitted = yield* ledger.transition("tk_1", ["submitting"], { state: "submitted", remoteTaskId: "r1" })
      expect(submitted.state).toBe("submitted")
      expect(submitted.version).toBe(2)
      const stale = yield* Effect.either(ledger.transition("tk_1", ["submitting"], { state: "ambiguous" }))
      expect(Either.isLeft(stale) && stale.left._tag).toBe("StaleTransition")
      expect(Option.getOrThrow(yield* ledger.findByRemoteId("r1")).state).toBe("submitted")
    })
  )

  it.effect("claims unfinished tasks once per lease", () =>
    Effect.gen(function* () {
      const ledger = yield* TaskLedger.makeMemory
      yield* ledger.create(newTask("tk_1"))
      yield* ledger.create(newTask("tk_2"))
      yield* ledger.transition("tk_2", [], { state: "failed" })
      const first = yield* ledger.claimUnfinished({ owner: "worker-a", leaseMillis: 60_000 })
      const second = yield* ledger.claimUnfinished({ owner: "worker-b", leaseMillis: 60_000 })
      expect(first.map((record) => record.taskKey)).toEqual(["tk_1"])
      expect(second).toEqual([])
    })
  )
})
