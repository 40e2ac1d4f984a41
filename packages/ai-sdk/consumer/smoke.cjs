// Runs in an empty npm project against the packed tarballs: CommonJS require of real exports; an
// invalid option is refused as the SDK's APICallError before any request (the base URL is unused).
const { createApixo, resolutions } = require("@reelkit/ai-sdk")
const { APICallError } = require("@ai-sdk/provider")
const assert = require("node:assert/strict")

const apixo = createApixo({ apiKey: "sk-smoke", baseURL: "http://127.0.0.1:9" })
const model = apixo.videoModel("vidu-q3")
assert.equal(model.provider, "apixo")
assert.equal(model.specificationVersion, "v4")
assert.equal(resolutions.get("1280x720").resolution, "720p")
model
  .doStart({ prompt: "hi", n: 1, duration: 20, providerOptions: {} })
  .then(
    () => assert.fail("an invalid duration must be refused"),
    (error) => {
      assert.ok(APICallError.isInstance(error))
      assert.equal(error.isRetryable, false)
      assert.match(error.message, /duration/)
      console.log("@reelkit/ai-sdk CJS ok")
    }
  )
  .finally(() => apixo.close())
