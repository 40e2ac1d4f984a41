// A provider status that reports a cancel (e.g. Vidu's `failed` with `UserCancelled`): what it does
// to a row, for every state a row can be in, and that it is final.
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskState from "../src/TaskState.js"
import * as TaskStatus from "../src/TaskStatus.js"

const now = 1_800_000_000_000
const context: TaskState.StatusContext = { now, resultRetention: Duration.days(1), maxOutputs: 3 }
const rowIn = (state: TaskState.State) =>
  new TaskLedger.TaskRecord({
    ...TaskLedger.newRecord({ taskKey: "tk_cancelled", providerId: "p", modelId: "m", input: {} }, now - 60_000),
    state
  })
const cancelled = new TaskStatus.Cancelled({ code: "UserCancelled", remoteCompletedAt: now - 5_000 })

describe("TaskStatus.Cancelled", () => {
  it.effect("finishes a running row as cancelled, with the provider's code and time", () =>
    Effect.sync(() => {
      for (const state of ["submitted", "pending", "processing"] as const) {
        expect(TaskState.applyStatus(rowIn(state), cancelled, context)).toEqual({
          _tag: "Finish",
          patch: { state: "cancelled", failCode: "UserCancelled", completedAt: now - 5_000 }
        })
      }
    })
  )

  it.effect("changes no row that cannot become cancelled (finished, ambiguous, unsent, already cancelled)", () =>
    Effect.sync(() => {
      const others = TaskState.states.filter((state) => !["submitted", "pending", "processing"].includes(state))
      expect(others.map((state) => TaskState.applyStatus(rowIn(state), cancelled, context)._tag)).toEqual(
        others.map(() => "Ignore")
      )
    })
  )

  it.effect("is terminal and survives a Schema round trip", () =>
    Effect.sync(() => {
      expect(TaskStatus.isTerminal(cancelled)).toBe(true)
      expect(TaskState.outcomeOf(new TaskLedger.TaskRecord({ ...rowIn("cancelled") }))).toEqual({ _tag: "Cancelled" })
    })
  )
})
