// The progress line's state machine: it never moves back, and it says when it waits or retries.
import { describe, expect, it } from "@effect/vitest"
import { TaskEvent } from "@reelkit/core"
import * as Progress from "../src/Progress.js"

const at = 1_000
const start: Progress.View = { state: "submitted", nextPollAt: 2_000, note: undefined }

describe("Progress.viewAfter", () => {
  it("moves forward through pending and processing, showing the percentage", () => {
    const pending = Progress.viewAfter(start, TaskEvent.TaskEvent.Pending({ taskKey: "tk_a", at, nextPollAt: 3_000 }))
    expect(pending).toEqual({ state: "pending", nextPollAt: 3_000, note: undefined })
    const processing = Progress.viewAfter(
      pending!,
      TaskEvent.TaskEvent.Processing({ taskKey: "tk_a", at, progress: 40, nextPollAt: 4_000 })
    )
    expect(processing).toEqual({ state: "processing", nextPollAt: 4_000, note: "40%" })
  })

  it("never moves back: a late Pending or a replayed Submitted after processing changes nothing", () => {
    const processing: Progress.View = { state: "processing", nextPollAt: 4_000, note: undefined }
    expect(
      Progress.viewAfter(processing, TaskEvent.TaskEvent.Pending({ taskKey: "tk_a", at, nextPollAt: 5_000 }))
    ).toBeUndefined()
    expect(
      Progress.viewAfter(processing, TaskEvent.TaskEvent.Submitted({ taskKey: "tk_a", remoteTaskId: "task_1", at }))
    ).toBeUndefined()
    const completed: Progress.View = { state: "completed", nextPollAt: undefined, note: undefined }
    expect(
      Progress.viewAfter(completed, TaskEvent.TaskEvent.Submitted({ taskKey: "tk_a", remoteTaskId: "task_1", at }))
    ).toBeUndefined()
  })

  it("a retry keeps the state and says what it waits for and until when", () => {
    const retrying = Progress.viewAfter(
      { state: "pending", nextPollAt: 3_000, note: undefined },
      TaskEvent.TaskEvent.Retrying({ taskKey: "tk_a", at, reason: "apixo answered 503", nextPollAt: 9_000 })
    )
    expect(retrying).toEqual({ state: "pending", nextPollAt: 9_000, note: "retrying after: apixo answered 503" })
  })

  it("an event this CLI does not know yet still shows that the task waits", () => {
    const unknown = { _tag: "QueuedForSlot", taskKey: "tk_a", at, reason: "10 tasks in flight", nextPollAt: 7_000 }
    expect(Progress.viewAfter(start, unknown as unknown as TaskEvent.TaskEvent)).toEqual({
      state: "submitted",
      nextPollAt: 7_000,
      note: "QueuedForSlot: 10 tasks in flight"
    })
  })
})
