/**
 * Cost estimates for Vidu Q3. apixo bills per second of `duration`, at a price that depends on the
 * tier (standard or turbo) and the resolution. apixo publishes no stable price list, so prices are
 * configuration you supply: this module holds no numbers of its own.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { type Resolution, type ViduQ3Input, tierOf } from "./ViduQ3Input.js"

const PricePerSecond = Schema.NonNegative.annotations({ description: "price of one generated second" })

const ByResolution = Schema.Struct({
  "540p": Schema.optional(PricePerSecond),
  "720p": Schema.optional(PricePerSecond),
  "1080p": Schema.optional(PricePerSecond)
})

/**
 * A price table: per tier, per resolution, the price of one second, in `currency` (any unit you
 * choose: USD, credits...). Resolutions you never use may be left out.
 */
export const ViduQ3Pricing = Schema.Struct({
  currency: Schema.NonEmptyString,
  standard: ByResolution,
  turbo: ByResolution
})

/** A price table. */
export type ViduQ3Pricing = typeof ViduQ3Pricing.Type

/** An estimated cost. */
export interface Cost {
  readonly amount: number
  readonly currency: string
  readonly seconds: number
  readonly pricePerSecond: number
}

/**
 * Estimates an input's cost: `duration` x the table's price for its tier and resolution. None when
 * the input omits `duration` or `resolution` (the server's defaults are undocumented) or the table
 * has no price for that tier and resolution.
 */
export const estimateCost = (input: ViduQ3Input, pricing: ViduQ3Pricing): Option.Option<Cost> => {
  if (input.duration === undefined || input.resolution === undefined) return Option.none()
  const resolution: Resolution = input.resolution
  const pricePerSecond = pricing[tierOf(input.mode)][resolution]
  if (pricePerSecond === undefined) return Option.none()
  return Option.some({
    amount: pricePerSecond * input.duration,
    currency: pricing.currency,
    seconds: input.duration,
    pricePerSecond
  })
}

/** Parses a price table from JSON text. */
export const PricingFromJson = Schema.parseJson(ViduQ3Pricing)

/**
 * Reads a price table from configuration: JSON text under `name` (default `VIDU_Q3_PRICING`),
 * e.g. `{"currency":"USD","standard":{"720p":0.1},"turbo":{"720p":0.05}}` (example figures).
 */
export const config = (name = "VIDU_Q3_PRICING"): Config.Config<ViduQ3Pricing> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      Either.mapLeft(Schema.decodeEither(PricingFromJson)(text), (error) =>
        ConfigError.InvalidData([], `not a Vidu Q3 price table: ${ParseResult.TreeFormatter.formatErrorSync(error)}`)
      )
    )
  )
