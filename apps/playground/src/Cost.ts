/**
 * What a submit would cost, and whether to ask first. Prices come from `REELKIT_PRICING` (core holds
 * no numbers: apixo publishes no stable price list); `REELKIT_CONFIRM_ABOVE` names an amount, in the
 * table's currency, above which a submit needs a yes (`--yes`, or an answer on a terminal). A cost
 * that cannot be estimated counts as above it: nothing proves it is below.
 */
import { ViduQ3Input, ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/** The cost of one input, or why there is none. */
export type Estimate =
  | { readonly _tag: "Priced"; readonly cost: ViduQ3Pricing.Cost; readonly tier: string; readonly resolution: string }
  | { readonly _tag: "Unpriced"; readonly reason: string }

/** The fields of a Vidu Q3 input a price depends on. */
export interface Priceable {
  readonly mode: string
  readonly resolution?: string | undefined
  readonly duration?: number | undefined
}

/** Estimates an input's cost from a price table (none when the table is absent). */
export const estimate = (input: Priceable, pricing: Option.Option<ViduQ3Pricing.ViduQ3Pricing>): Estimate => {
  if (Option.isNone(pricing)) {
    return {
      _tag: "Unpriced",
      reason:
        'no prices are configured; set REELKIT_PRICING to a price table, e.g. {"currency":"USD","standard":{"720p":0.1},"turbo":{"720p":0.05}}'
    }
  }
  if (input.duration === undefined || input.resolution === undefined) {
    return {
      _tag: "Unpriced",
      reason: "--duration and --resolution are needed (apixo does not document its defaults)"
    }
  }
  const tier = ViduQ3Input.tierOf(input.mode as ViduQ3Input.Mode)
  return Option.match(ViduQ3Pricing.estimateCost(input as ViduQ3Input.ViduQ3Input, pricing.value), {
    onNone: () => ({ _tag: "Unpriced", reason: `REELKIT_PRICING has no price for ${tier} ${input.resolution}` }),
    // Rounded to a millionth, so 6 s at 0.05 reads 0.3 and not 0.30000000000000004.
    onSome: (cost) => ({
      _tag: "Priced",
      cost: { ...cost, amount: Math.round(cost.amount * 1e6) / 1e6 },
      tier,
      resolution: input.resolution!
    })
  })
}

// Money to at most four decimals, without trailing zeros.
const amountText = (amount: number): string => String(Number(amount.toFixed(4)))

/** `0.4 USD (4 s at 0.1 USD per second, standard 720p)`. */
export const describe = (estimate: Estimate & { readonly _tag: "Priced" }): string => {
  const { cost } = estimate
  return `${amountText(cost.amount)} ${cost.currency} (${cost.seconds} s at ${amountText(cost.pricePerSecond)} ${cost.currency} per second, ${estimate.tier} ${estimate.resolution})`
}

/** The line printed on stderr before a paid submit. */
export const line = (estimate: Estimate): string =>
  estimate._tag === "Priced"
    ? `reelkit: estimated cost ${describe(estimate)}.`
    : `reelkit: the cost cannot be estimated: ${estimate.reason}.`

/** `REELKIT_CONFIRM_ABOVE`: an amount, 0 or more, in the price table's currency. */
export const confirmAbove: Config.Config<Option.Option<number>> = Config.option(
  Config.string("REELKIT_CONFIRM_ABOVE").pipe(
    Config.mapOrFail((text) => {
      const amount = Number(text.trim())
      return text.trim() !== "" && Number.isFinite(amount) && amount >= 0
        ? Either.right(amount)
        : Either.left(
            ConfigError.InvalidData(["REELKIT_CONFIRM_ABOVE"], `must be an amount, 0 or more (got "${text}")`)
          )
    })
  )
)

/** Whether a submit of this estimate needs a yes under `threshold`. */
export const needsConfirmation = (estimate: Estimate, threshold: Option.Option<number>): boolean =>
  Option.isSome(threshold) && (estimate._tag === "Unpriced" || estimate.cost.amount > threshold.value)

/** A submit above `REELKIT_CONFIRM_ABOVE` with no one to say yes: nothing was sent. */
export class ConfirmationRequired extends Data.TaggedError("ConfirmationRequired")<{
  readonly estimate: Estimate
  readonly threshold: number
}> {
  override get message(): string {
    const what =
      this.estimate._tag === "Priced"
        ? `this task would cost ${describe(this.estimate)}, above REELKIT_CONFIRM_ABOVE (${this.threshold})`
        : `the cost of this task is unknown (${this.estimate.reason}) and REELKIT_CONFIRM_ABOVE is set`
    return `${what}; pass --yes to submit it anyway; nothing was sent`
  }
}

/** The submit was declined at the prompt. */
export class Declined extends Data.TaggedError("Declined")<{}> {
  override get message(): string {
    return "not submitted (declined at the prompt); nothing was sent"
  }
}

/** `estimate` without a price for the input. */
export class CannotEstimate extends Data.TaggedError("CannotEstimate")<{ readonly reason: string }> {
  override get message(): string {
    return `cannot estimate the cost: ${this.reason}`
  }
}
