// Runs in an empty npm project against the packed tarball: ESM import of real exports.
import { TaskHandle, TaskLedger, TaskState } from "@reelkit/core"
import { Effect } from "effect"
import assert from "node:assert/strict"

const handle = new TaskHandle.TaskHandle({
  providerId: "apixo",
  modelId: "vidu-q3",
  taskKey: "tk_1",
  remoteTaskId: "task_1",
  submittedAt: 1
})
const decoded = await Effect.runPromise(TaskHandle.fromJson(TaskHandle.toJson(handle)))
assert.equal(decoded.remoteTaskId, "task_1")

const created = await Effect.runPromise(
  Effect.flatMap(TaskLedger.TaskLedger, (ledger) =>
    ledger.create({ taskKey: "tk_1", providerId: "apixo", modelId: "vidu-q3", input: { prompt: "x" } })
  ).pipe(Effect.provide(TaskLedger.layerMemory))
)
assert.equal(created.record.state, "queued")
assert.equal(TaskState.canTransition("queued", "submitted"), false)
console.log("@reelkit/core ESM ok")
