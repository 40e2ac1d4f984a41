import { describe, expect, it } from "@effect/vitest"
import { ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import { ConfigProvider, Effect, Option } from "effect"

// Made-up figures for the test only: the library ships no prices.
const pricing: ViduQ3Pricing.ViduQ3Pricing = {
  currency: "credits",
  standard: { "540p": 2, "720p": 3, "1080p": 5 },
  turbo: { "720p": 1 }
}

describe("ViduQ3Pricing", () => {
  it("estimates duration x the price of the tier and resolution", () => {
    expect(
      ViduQ3Pricing.estimateCost(
        {
          mode: "image-to-video",
          prompt: "x",
          image_urls: ["https://a.example/1.png"],
          duration: 4,
          resolution: "1080p"
        },
        pricing
      )
    ).toEqual(Option.some({ amount: 20, currency: "credits", seconds: 4, pricePerSecond: 5 }))
    expect(
      ViduQ3Pricing.estimateCost({ mode: "turbo-text-to-video", prompt: "x", duration: 8, resolution: "720p" }, pricing)
    ).toEqual(Option.some({ amount: 8, currency: "credits", seconds: 8, pricePerSecond: 1 }))
  })

  it("gives no estimate when the duration, the resolution or the price is unknown", () => {
    expect(ViduQ3Pricing.estimateCost({ mode: "text-to-video", prompt: "x", resolution: "720p" }, pricing)).toEqual(
      Option.none()
    )
    expect(ViduQ3Pricing.estimateCost({ mode: "text-to-video", prompt: "x", duration: 5 }, pricing)).toEqual(
      Option.none()
    )
    expect(
      ViduQ3Pricing.estimateCost(
        { mode: "turbo-text-to-video", prompt: "x", duration: 5, resolution: "1080p" },
        pricing
      )
    ).toEqual(Option.none())
  })

  it.effect("reads the table from configuration as JSON and rejects a malformed one", () =>
    Effect.gen(function* () {
      const read = (json: string) =>
        Effect.withConfigProvider(ViduQ3Pricing.config(), ConfigProvider.fromMap(new Map([["VIDU_Q3_PRICING", json]])))
      expect(yield* read(JSON.stringify(pricing))).toEqual(pricing)
      const negative = yield* Effect.flip(read(JSON.stringify({ ...pricing, turbo: { "720p": -1 } })))
      expect(String(negative)).toContain("not a Vidu Q3 price table")
      const garbage = yield* Effect.flip(read("{"))
      expect(String(garbage)).toContain("VIDU_Q3_PRICING")
    })
  )
})
