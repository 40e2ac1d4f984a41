// Runs in an empty npm project against the packed tarball: CommonJS require of real exports.
const { TaskError, AccountLimits } = require("@reelkit/core")
const { Effect } = require("effect")
const assert = require("node:assert/strict")

const error = new TaskError.InvalidInput({ path: "input.duration", rule: "must be an integer from 1 to 16" })
assert.equal(error.message, "Invalid input at input.duration: must be an integer from 1 to 16")
assert.equal(TaskError.isSafeToResubmit(new TaskError.RateLimited({ message: "429" })), true)

Effect.runPromise(
  Effect.flatMap(AccountLimits.makeMemory({ concurrentTasks: 1 }), (limits) =>
    Effect.zipRight(limits.acquireTaskSlot("a"), limits.snapshot)
  )
).then((snapshot) => {
  assert.equal(snapshot.tasksInFlight, 1)
  console.log("@reelkit/core CJS ok")
})
