import { describe, expect, it } from "@effect/vitest"
import type { Experimental_VideoModelV4CallOptions } from "@ai-sdk/provider"
import { Effect } from "effect"
import { optionNameOf, resolutions } from "../src/ApixoVideoOptions.js"
import { toViduQ3Call } from "../src/internal/viduQ3CallOptions.js"

const callOptions = (
  overrides: Partial<Experimental_VideoModelV4CallOptions>
): Experimental_VideoModelV4CallOptions => ({
  prompt: "a paper boat",
  n: 1,
  aspectRatio: undefined,
  resolution: undefined,
  duration: undefined,
  fps: undefined,
  seed: undefined,
  image: undefined,
  frameImages: undefined,
  inputReferences: undefined,
  generateAudio: undefined,
  providerOptions: {},
  ...overrides
})

const image = { type: "url" as const, url: "https://example.com/start.jpg" }

describe("resolutions", () => {
  it("names the tier by the short side and the shape by the ratio, in every orientation", () => {
    expect(
      ["960x540", "1280x720", "720x1280", "960x720", "720x960", "1080x1080", "1920x1080"].map((size) =>
        resolutions.get(size)
      )
    ).toEqual([
      { resolution: "540p", aspectRatio: "16:9" },
      { resolution: "720p", aspectRatio: "16:9" },
      { resolution: "720p", aspectRatio: "9:16" },
      { resolution: "720p", aspectRatio: "4:3" },
      { resolution: "720p", aspectRatio: "3:4" },
      { resolution: "1080p", aspectRatio: "1:1" },
      { resolution: "1080p", aspectRatio: "16:9" }
    ])
    expect(resolutions.size).toBe(15)
    expect(resolutions.get("640x480")).toBeUndefined()
  })

  it("reports reelkit's input paths under the SDK's option names", () => {
    expect(
      ["input.sound", "input.image_urls.1", "input", "input.bgm", "options.provider", "frameImages"].map(optionNameOf)
    ).toEqual([
      "generateAudio",
      "image/frameImages",
      "providerOptions.apixo.mode",
      "providerOptions.apixo.bgm",
      "providerOptions.apixo.provider",
      "frameImages"
    ])
  })
})

describe("call options to Vidu Q3's input", () => {
  it.effect("text by default; a size without aspectRatio gives its shape", () =>
    Effect.gen(function* () {
      const call = yield* toViduQ3Call(callOptions({ resolution: "720x1280", seed: 7, generateAudio: false }))
      expect(call).toEqual({
        input: {
          mode: "text-to-video",
          prompt: "a paper boat",
          resolution: "720p",
          aspect_ratio: "9:16",
          sound: false,
          seed: 7
        },
        provider: undefined,
        warnings: []
      })
    })
  )

  it.effect("the turbo tier picks the turbo mode of the images' kind; routing goes to provider", () =>
    Effect.gen(function* () {
      const call = yield* toViduQ3Call(
        callOptions({ image, providerOptions: { apixo: { tier: "turbo", provider: "official" } } })
      )
      expect(call.input).toEqual({ mode: "turbo-image-to-video", prompt: "a paper boat", image_urls: [image.url] })
      expect(call.provider).toBe("official")
    })
  )

  it.effect("an image mode ignores the size's shape and an adaptive ratio, without a warning", () =>
    Effect.gen(function* () {
      const call = yield* toViduQ3Call(callOptions({ image, resolution: "1080x1920", aspectRatio: "adaptive" }))
      expect(call.input).toEqual({
        mode: "image-to-video",
        prompt: "a paper boat",
        resolution: "1080p",
        image_urls: [image.url]
      })
      expect(call.warnings).toEqual([])
    })
  )

  it.effect("adaptive in a text mode is left out with an unsupported warning", () =>
    Effect.gen(function* () {
      const call = yield* toViduQ3Call(callOptions({ aspectRatio: "adaptive" }))
      expect(call.input.aspect_ratio).toBeUndefined()
      expect(call.warnings).toEqual([
        {
          type: "unsupported",
          feature: "aspectRatio",
          details: "adaptive needs an input image; the model's default aspect ratio is used"
        }
      ])
    })
  )

  it.effect("more than one video per task, or two first frames, are refused", () =>
    Effect.gen(function* () {
      const many = yield* Effect.flip(toViduQ3Call(callOptions({ n: 2 })))
      expect([many.path, many.rule]).toEqual(["n", "must be 1: Vidu Q3 makes one video per task"])
      const twoFirsts = yield* Effect.flip(
        toViduQ3Call(
          callOptions({
            image,
            frameImages: [
              { image, frameType: "first_frame" },
              { image, frameType: "first_frame" }
            ]
          })
        )
      )
      expect(twoFirsts.path).toBe("frameImages")
    })
  )
})
