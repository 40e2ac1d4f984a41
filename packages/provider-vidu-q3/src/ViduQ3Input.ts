/**
 * Vidu Q3's input, declared once for every transport: one schema per mode, a union discriminated
 * on `mode`. Text modes take `style` and `aspect_ratio` and no images; image modes take 1 or 2
 * `image_urls` (animate one image, or first and last frame) and no `style` or `aspect_ratio`.
 * Field names are apixo's snake_case (the model's first documentation), so on apixo the input is
 * its own wire form; each transport encodes it (`ViduQ3` for apixo, `ViduQ3Vidu` for the official
 * Vidu API). Fields left out stay out.
 *
 * Each rule is stated once, in `rules`, and attached to its schema as the `message` annotation:
 * the TypeScript type and the runtime check both come from these schemas.
 *
 * @since 0.1.0
 */
import { HttpTransport } from "@reelkit/core"
import * as Schema from "effect/Schema"

/** The modes of the standard tier. */
export const standardModes = ["text-to-video", "image-to-video"] as const

/** The modes of the turbo tier. */
export const turboModes = ["turbo-text-to-video", "turbo-image-to-video"] as const

/** Modes that generate from text alone. */
export const textModes = ["text-to-video", "turbo-text-to-video"] as const

/** Modes that animate 1 or 2 images. */
export const imageModes = ["image-to-video", "turbo-image-to-video"] as const

/** Any Vidu Q3 mode. */
export const Mode = Schema.Literal(...textModes, ...imageModes)

/** Any Vidu Q3 mode. */
export type Mode = typeof Mode.Type

/** A text mode. */
export type TextMode = (typeof textModes)[number]

/** An image mode. */
export type ImageMode = (typeof imageModes)[number]

/** Output resolutions. */
export const Resolution = Schema.Literal("540p", "720p", "1080p")

/** An output resolution. */
export type Resolution = typeof Resolution.Type

/** Style presets (text modes only). */
export const Style = Schema.Literal("general", "anime")

/** A style preset. */
export type Style = typeof Style.Type

/** Aspect ratios (text modes only; image modes follow their images). */
export const AspectRatio = Schema.Literal("16:9", "9:16", "4:3", "3:4", "1:1")

/** An aspect ratio. */
export type AspectRatio = typeof AspectRatio.Type

/** Motion amplitude. */
export const Movement = Schema.Literal("auto", "small", "medium", "large")

/** A motion amplitude. */
export type Movement = typeof Movement.Type

/** An absolute http(s) URL (an image the provider downloads). */
export const HttpUrl = HttpTransport.HttpUrl

/** Pricing tier of a mode: the `turbo-` modes are `turbo`, the others `standard`. */
export type Tier = "standard" | "turbo"

/** Every rule of the model, in words. The schemas below report exactly these texts. */
export const rules = {
  input: `must be an object whose "mode" is one of ${[...textModes, ...imageModes].map((mode) => `"${mode}"`).join(", ")}`,
  prompt: "must be a string of 1 to 5000 characters",
  resolution: 'must be one of "540p", "720p", "1080p"',
  duration: "must be an integer from 1 to 16 (seconds)",
  movement: 'must be one of "auto", "small", "medium", "large"',
  sound: "must be a boolean",
  bgm: "must be a boolean",
  seed: "must be an integer from -1 to 2147483647",
  style: 'must be "general" or "anime"',
  aspect_ratio: 'must be one of "16:9", "9:16", "4:3", "3:4", "1:1"',
  image_urls: "must be 1 or 2 absolute http(s) URLs (one image, or first and last frame)",
  image_urls_required: "is required in image modes (1 or 2 http(s) URLs)",
  image_only: "is only allowed in image modes",
  text_only: "is only allowed in text modes"
} as const

// `override: true` so a nested failure (a bad URL inside `image_urls`, a float `duration`) reports
// the field's one rule rather than Effect's generic wording.
const withRule = <A, I>(schema: Schema.Schema<A, I>, rule: string): Schema.Schema<A, I> =>
  schema.annotations({ message: () => ({ message: rule, override: true }) })

// A field a mode forbids: typed `?: undefined`, so setting it does not compile, and rejected at
// runtime with the rule.
const forbidden = (rule: string) => Schema.optional(withRule(Schema.Undefined, rule))

/** The prompt: 1 to 5000 characters. */
export const Prompt = withRule(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(5000)), rules.prompt)

/** Duration in whole seconds, 1 to 16; also the billed seconds. */
export const Duration = withRule(Schema.Int.pipe(Schema.between(1, 16)), rules.duration)

/** Seed: -1 (random) to 2147483647. */
export const Seed = withRule(Schema.Int.pipe(Schema.between(-1, 2147483647)), rules.seed)

/** 1 URL (animate that image) or 2 (first frame, last frame); a tuple, so a third does not compile. */
export const ImageUrls = withRule(Schema.Tuple(HttpUrl, Schema.optionalElement(HttpUrl)), rules.image_urls)

const common = {
  prompt: Prompt,
  resolution: Schema.optional(withRule(Resolution, rules.resolution)),
  duration: Schema.optional(Duration),
  movement: Schema.optional(withRule(Movement, rules.movement)),
  sound: Schema.optional(withRule(Schema.Boolean, rules.sound)),
  bgm: Schema.optional(withRule(Schema.Boolean, rules.bgm)),
  seed: Schema.optional(Seed)
}

const textOnly = {
  style: Schema.optional(withRule(Style, rules.style)),
  aspect_ratio: Schema.optional(withRule(AspectRatio, rules.aspect_ratio)),
  image_urls: forbidden(rules.image_only)
}

const imageOnly = {
  image_urls: Schema.propertySignature(ImageUrls).annotations({ missingMessage: () => rules.image_urls_required }),
  style: forbidden(rules.text_only),
  aspect_ratio: forbidden(rules.text_only)
}

/** `text-to-video`: standard tier, from text alone. */
export const TextToVideo = Schema.Struct({ mode: Schema.Literal("text-to-video"), ...common, ...textOnly }).annotations(
  { identifier: "ViduQ3TextToVideo" }
)

/** `turbo-text-to-video`: turbo tier, from text alone. */
export const TurboTextToVideo = Schema.Struct({
  mode: Schema.Literal("turbo-text-to-video"),
  ...common,
  ...textOnly
}).annotations({ identifier: "ViduQ3TurboTextToVideo" })

/** `image-to-video`: standard tier, from 1 image or a first and last frame. */
export const ImageToVideo = Schema.Struct({
  mode: Schema.Literal("image-to-video"),
  ...common,
  ...imageOnly
}).annotations({ identifier: "ViduQ3ImageToVideo" })

/** `turbo-image-to-video`: turbo tier, from 1 image or a first and last frame. */
export const TurboImageToVideo = Schema.Struct({
  mode: Schema.Literal("turbo-image-to-video"),
  ...common,
  ...imageOnly
}).annotations({ identifier: "ViduQ3TurboImageToVideo" })

/** Any Vidu Q3 input, discriminated on `mode`. */
export const ViduQ3Input = Schema.Union(TextToVideo, TurboTextToVideo, ImageToVideo, TurboImageToVideo).annotations({
  identifier: "ViduQ3Input",
  message: () => rules.input
})

/** Any Vidu Q3 input. */
export type ViduQ3Input = typeof ViduQ3Input.Type

/** A `text-to-video` input. */
export type TextToVideo = typeof TextToVideo.Type
/** A `turbo-text-to-video` input. */
export type TurboTextToVideo = typeof TurboTextToVideo.Type
/** An `image-to-video` input. */
export type ImageToVideo = typeof ImageToVideo.Type
/** A `turbo-image-to-video` input. */
export type TurboImageToVideo = typeof TurboImageToVideo.Type

/** The input of one mode. */
export type ForMode<M extends Mode> = Extract<ViduQ3Input, { readonly mode: M }>

/** Whether an input is in a text mode. */
export const isTextMode = (input: ViduQ3Input): input is TextToVideo | TurboTextToVideo =>
  input.mode === "text-to-video" || input.mode === "turbo-text-to-video"

/** The pricing tier of a mode. */
export const tierOf = (mode: Mode): Tier => (mode.startsWith("turbo-") ? "turbo" : "standard")

/** Seconds billed for an input: its `duration`. Undefined when omitted (the default is undocumented). */
export const billableSeconds = (input: ViduQ3Input): number | undefined => input.duration
