// Runs in an empty npm project against the packed tarball: CommonJS require of real exports.
const { ApixoProtocol, ApixoModel } = require("@reelkit/apixo")
const { Effect, Schema } = require("effect")
const assert = require("node:assert/strict")

assert.deepEqual(ApixoProtocol.makeGenerateTaskBody({ input: { a: 1 }, callbackUrl: "https://x.example/cb" }), {
  request_type: "callback",
  callback_url: "https://x.example/cb",
  input: { a: 1 }
})
const prepare = ApixoModel.prepare({ modelId: "m", input: Schema.Struct({ prompt: Schema.NonEmptyString }) })
Effect.runPromise(Effect.flip(prepare({ input: { prompt: "" } }))).then((error) => {
  assert.equal(error._tag, "InvalidInput")
  assert.equal(error.path, "input.prompt")
  return Effect.runPromise(
    ApixoProtocol.parseCallback({
      code: 200,
      message: "success",
      data: { taskId: "t", state: "failed", failCode: "CONTENT_VIOLATION" }
    })
  ).then((hint) => {
    assert.equal(hint.status.code, "CONTENT_VIOLATION")
    console.log("@reelkit/apixo CJS ok")
  })
})
