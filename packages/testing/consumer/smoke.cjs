// CommonJS require of @reelkit/testing from its packed tarball.
const { ScriptedProvider } = require("@reelkit/testing")
const { Effect } = require("effect")
const assert = require("node:assert/strict")

Effect.runPromise(
  Effect.flatMap(ScriptedProvider.make({ modelId: "m" }), (scripted) =>
    Effect.either(scripted.provider.prepare("not an object"))
  )
).then((result) => {
  assert.equal(result._tag, "Left")
  assert.equal(result.left.path, "input")
  console.log("@reelkit/testing CJS ok")
})
