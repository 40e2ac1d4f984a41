// ESM import of @reelkit/testing from its packed tarball, driving the scripted provider.
import { ScriptedProvider } from "@reelkit/testing"
import { Effect } from "effect"
import assert from "node:assert/strict"

const recording = await Effect.runPromise(
  Effect.gen(function* () {
    const scripted = yield* ScriptedProvider.make()
    const accepted = yield* scripted.provider.submit({ taskKey: "tk_1", input: { prompt: "x" } })
    const status = yield* scripted.provider.status(accepted.remoteTaskId)
    assert.equal(status._tag, "Succeeded")
    return yield* scripted.recording
  })
)
assert.equal(recording.submits.length, 1)
console.log("@reelkit/testing ESM ok")
