// Cost estimates and the confirmation rule, from a price table the user supplies.
import { describe, expect, it } from "@effect/vitest"
import * as Option from "effect/Option"
import * as Cost from "../src/Cost.js"

const pricing = Option.some({ currency: "USD", standard: { "720p": 0.1 }, turbo: { "720p": 0.05 } })

describe("Cost", () => {
  it("prices duration x the tier's price for the resolution", () => {
    const estimate = Cost.estimate({ mode: "turbo-image-to-video", resolution: "720p", duration: 6 }, pricing)
    expect(estimate).toMatchObject({ _tag: "Priced", cost: { amount: 0.3, seconds: 6 }, tier: "turbo" })
    expect(Cost.line(estimate)).toBe("reelkit: estimated cost 0.3 USD (6 s at 0.05 USD per second, turbo 720p).")
  })

  it("says why there is no price: no table, no duration, no price for the resolution", () => {
    expect(Cost.estimate({ mode: "text-to-video", resolution: "720p", duration: 4 }, Option.none())).toMatchObject({
      _tag: "Unpriced",
      reason: expect.stringContaining("REELKIT_PRICING")
    })
    expect(Cost.estimate({ mode: "text-to-video", resolution: "720p" }, pricing)).toMatchObject({
      reason: expect.stringContaining("--duration and --resolution")
    })
    expect(Cost.estimate({ mode: "text-to-video", resolution: "1080p", duration: 4 }, pricing)).toMatchObject({
      reason: "REELKIT_PRICING has no price for standard 1080p"
    })
  })

  it("asks above REELKIT_CONFIRM_ABOVE, and when the cost is unknown; never without a threshold", () => {
    const cheap = Cost.estimate({ mode: "text-to-video", resolution: "720p", duration: 2 }, pricing)
    const dear = Cost.estimate({ mode: "text-to-video", resolution: "720p", duration: 16 }, pricing)
    const unknown = Cost.estimate({ mode: "text-to-video" }, pricing)
    expect(Cost.needsConfirmation(cheap, Option.some(1))).toBe(false)
    expect(Cost.needsConfirmation(dear, Option.some(1))).toBe(true)
    expect(Cost.needsConfirmation(unknown, Option.some(1))).toBe(true)
    expect(Cost.needsConfirmation(dear, Option.none())).toBe(false)
  })
})
