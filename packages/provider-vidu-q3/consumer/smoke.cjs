// Runs in an empty npm project against the packed tarball: CommonJS require of real exports.
const { ViduQ3, ViduQ3Input, ViduQ3Pricing } = require("@reelkit/provider-vidu-q3")
const { ApixoModel } = require("@reelkit/apixo")
const { Effect, Option } = require("effect")
const assert = require("node:assert/strict")

assert.equal(ViduQ3.modelId, "vidu-q3")
assert.equal(ViduQ3Input.tierOf("turbo-image-to-video"), "turbo")
const cost = ViduQ3Pricing.estimateCost(
  { mode: "text-to-video", prompt: "x", duration: 4, resolution: "720p" },
  { currency: "credits", standard: { "720p": 3 }, turbo: {} }
)
assert.equal(Option.getOrThrow(cost).amount, 12)
Effect.runPromise(
  Effect.flip(
    ApixoModel.prepare(ViduQ3.model)({
      input: { mode: "image-to-video", prompt: "x", image_urls: ["https://a.example/1.png"], style: "anime" }
    })
  )
).then((error) => {
  assert.equal(error.message, "Invalid input at input.style: is only allowed in text modes")
  console.log("@reelkit/provider-vidu-q3 CJS ok")
})
