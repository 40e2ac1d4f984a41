// Turns the AI SDK's call options into Vidu Q3's apixo input. Only the translation lives here:
// whether the result is a valid Vidu Q3 input is decided by reelkit's own gate (the model's schema,
// applied by `TaskClient.start`), so every rule is stated once, in `@reelkit/provider-vidu-q3`.
import type {
  Experimental_VideoModelV4CallOptions,
  Experimental_VideoModelV4File,
  SharedV4Warning
} from "@ai-sdk/provider"
import { TaskError } from "@reelkit/core"
import { ViduQ3Input } from "@reelkit/provider-vidu-q3"
import * as Effect from "effect/Effect"
import { type ApixoVideoProviderOptions, providerOptionKeys, resolutions, type Tier } from "../ApixoVideoOptions.js"

/** What a start sends: the input for reelkit's gate, the routing channel, and the SDK warnings. */
export interface MappedCall {
  readonly input: Record<string, unknown>
  readonly provider: string | undefined
  readonly warnings: Array<SharedV4Warning>
}

const invalid = (path: string, rule: string) => new TaskError.InvalidInput({ path, rule })

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const readProviderOptions = (raw: unknown): Effect.Effect<ApixoVideoProviderOptions, TaskError.InvalidInput> => {
  if (raw === undefined) return Effect.succeed({})
  if (!isRecord(raw)) return Effect.fail(invalid("providerOptions.apixo", "must be an object"))
  const unknownKey = Object.keys(raw).find((key) => !(providerOptionKeys as ReadonlyArray<string>).includes(key))
  if (unknownKey !== undefined) {
    return Effect.fail(
      invalid(
        `providerOptions.apixo.${unknownKey}`,
        `is not an option of apixo's video models (known: ${providerOptionKeys.join(", ")})`
      )
    )
  }
  if (raw.tier !== undefined && raw.tier !== "standard" && raw.tier !== "turbo") {
    return Effect.fail(invalid("providerOptions.apixo.tier", 'must be "standard" or "turbo"'))
  }
  if (raw.provider !== undefined && (typeof raw.provider !== "string" || raw.provider === "")) {
    return Effect.fail(
      invalid("providerOptions.apixo.provider", 'must be "auto", "value", "official" or a channel name')
    )
  }
  // The remaining fields (mode, style, movement, bgm) are checked by the model's schema.
  return Effect.succeed(raw as ApixoVideoProviderOptions)
}

const imageUrl = (file: Experimental_VideoModelV4File, path: string) =>
  file.type === "url"
    ? Effect.succeed(file.url)
    : Effect.fail(invalid(path, "must be an http(s) URL: apixo takes image URLs, not file data (upload it first)"))

/** The image URLs: the SDK's `image` (from `prompt.image` or a `first_frame`) and a `last_frame`. */
const imageUrlsOf = (options: Experimental_VideoModelV4CallOptions) =>
  Effect.gen(function* () {
    const frames = options.frameImages ?? []
    const firsts = frames.filter((frame) => frame.frameType === "first_frame")
    const lasts = frames.filter((frame) => frame.frameType === "last_frame")
    if (firsts.length > 1 || lasts.length > 1) {
      return yield* invalid("frameImages", "must hold at most one first_frame and one last_frame")
    }
    if (lasts.length === 1 && options.image === undefined) {
      return yield* invalid(
        "frameImages",
        "a last_frame needs a first_frame (or prompt.image): Vidu Q3 animates from the first frame"
      )
    }
    const urls: Array<string> = []
    if (options.image !== undefined) urls.push(yield* imageUrl(options.image, "image"))
    if (lasts[0] !== undefined) urls.push(yield* imageUrl(lasts[0].image, "frameImages"))
    return urls
  })

const modeFor = (
  explicit: ViduQ3Input.Mode | undefined,
  tier: Tier | undefined,
  hasImages: boolean
): Effect.Effect<ViduQ3Input.Mode, TaskError.InvalidInput> => {
  if (explicit !== undefined) {
    // A mode the schema does not know is reported by the schema itself.
    if (tier !== undefined && typeof explicit === "string" && ViduQ3Input.tierOf(explicit) !== tier) {
      return Effect.fail(
        invalid(
          "providerOptions.apixo.tier",
          `must match the tier of mode "${explicit}" (${ViduQ3Input.tierOf(explicit)})`
        )
      )
    }
    return Effect.succeed(explicit)
  }
  const prefix = tier === "turbo" ? "turbo-" : ""
  return Effect.succeed(`${prefix}${hasImages ? "image-to-video" : "text-to-video"}` as ViduQ3Input.Mode)
}

const withoutUndefined = (record: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined))

/**
 * Maps the SDK's options to a Vidu Q3 input. Fails, sending nothing, on what cannot be expressed
 * (file images, an unknown size, stray provider options); options Vidu Q3 has no use for become
 * `unsupported` warnings.
 */
export const toViduQ3Call = (
  options: Experimental_VideoModelV4CallOptions
): Effect.Effect<MappedCall, TaskError.InvalidInput> =>
  Effect.gen(function* () {
    const warnings: Array<SharedV4Warning> = []
    if (options.n > 1) return yield* invalid("n", "must be 1: Vidu Q3 makes one video per task")
    const apixo = yield* readProviderOptions(options.providerOptions.apixo)
    const imageUrls = yield* imageUrlsOf(options)
    const mode = yield* modeFor(apixo.mode, apixo.tier, imageUrls.length > 0)
    const textMode = (ViduQ3Input.textModes as ReadonlyArray<string>).includes(mode)

    const size = options.resolution === undefined ? undefined : resolutions.get(options.resolution)
    if (options.resolution !== undefined && size === undefined) {
      return yield* invalid(
        "resolution",
        "must be a Vidu Q3 size: 540p, 720p or 1080p at 16:9, 9:16, 4:3, 3:4 or 1:1 (e.g. 1280x720, 720x1280, 1080x1080)"
      )
    }
    let aspectRatio: string | undefined = options.aspectRatio
    if (aspectRatio === "adaptive") {
      // Image modes always follow their images; text modes have nothing to adapt to.
      if (textMode) {
        warnings.push({
          type: "unsupported",
          feature: "aspectRatio",
          details: "adaptive needs an input image; the model's default aspect ratio is used"
        })
      }
      aspectRatio = undefined
    }
    if (textMode && size !== undefined) {
      if (aspectRatio === undefined) aspectRatio = size.aspectRatio
      else if (aspectRatio !== size.aspectRatio) {
        return yield* invalid("resolution", `must have the aspect ratio given in aspectRatio (${aspectRatio})`)
      }
    }
    if (options.fps !== undefined) {
      warnings.push({ type: "unsupported", feature: "fps", details: "Vidu Q3 chooses its own frame rate" })
    }
    if (options.inputReferences !== undefined && options.inputReferences.length > 0) {
      warnings.push({
        type: "unsupported",
        feature: "inputReferences",
        details: "Vidu Q3 on apixo takes a first and last frame, not reference media"
      })
    }

    const input = withoutUndefined({
      mode,
      prompt: options.prompt,
      resolution: size?.resolution,
      duration: options.duration,
      style: apixo.style,
      aspect_ratio: aspectRatio,
      movement: apixo.movement,
      sound: options.generateAudio,
      bgm: apixo.bgm,
      seed: options.seed,
      image_urls: imageUrls.length > 0 ? imageUrls : undefined
    })
    return { input, provider: apixo.provider, warnings }
  })
