/**
 * What `providerOptions.apixo` may hold for apixo's video models, and how the AI SDK's call options
 * map to Vidu Q3's input. The mapping is data: `resolutions` lists every size the SDK may ask for,
 * `optionNames` names the SDK option behind each input field, so an invalid value is reported
 * under the name the caller wrote.
 *
 * @since 0.1.0
 */
import type { ViduQ3Input } from "@reelkit/provider-vidu-q3"

/** The model ids this provider serves. */
export type ApixoVideoModelId = "vidu-q3"

/** Vidu Q3's pricing tiers: `turbo` selects the `turbo-` modes. */
export type Tier = "standard" | "turbo"

/**
 * `providerOptions.apixo` of a video call: every Vidu Q3 field the SDK has no option for, and the
 * apixo routing channel. Unknown keys are refused before anything is sent.
 */
export interface ApixoVideoProviderOptions {
  /** The Vidu Q3 mode; by default `text-to-video`, or `image-to-video` when an image is given (turbo with `tier`). */
  readonly mode?: ViduQ3Input.Mode | undefined
  /** `standard` (default) or `turbo`; with `mode`, it must agree with the mode. */
  readonly tier?: Tier | undefined
  /** Style preset, text modes only: `general` or `anime`. */
  readonly style?: ViduQ3Input.Style | undefined
  /** Motion amplitude: `auto`, `small`, `medium` or `large`. */
  readonly movement?: ViduQ3Input.Movement | undefined
  /** Background music. */
  readonly bgm?: boolean | undefined
  /** apixo's routing channel: `auto` (the server's default), `value`, `official`, or a channel name. */
  readonly provider?: string | undefined
}

/** The keys `providerOptions.apixo` accepts. */
export const providerOptionKeys: ReadonlyArray<keyof ApixoVideoProviderOptions> = [
  "mode",
  "tier",
  "style",
  "movement",
  "bgm",
  "provider"
]

/** One size the SDK's `resolution` may name: Vidu Q3's quality tier and the size's aspect ratio. */
export interface Size {
  readonly resolution: ViduQ3Input.Resolution
  readonly aspectRatio: ViduQ3Input.AspectRatio
}

const sizesOf = (resolution: ViduQ3Input.Resolution, short: number): ReadonlyArray<[string, Size]> => {
  const long16x9 = Math.round((short * 16) / 9)
  const long4x3 = Math.round((short * 4) / 3)
  return [
    [`${long16x9}x${short}`, { resolution, aspectRatio: "16:9" }],
    [`${short}x${long16x9}`, { resolution, aspectRatio: "9:16" }],
    [`${long4x3}x${short}`, { resolution, aspectRatio: "4:3" }],
    [`${short}x${long4x3}`, { resolution, aspectRatio: "3:4" }],
    [`${short}x${short}`, { resolution, aspectRatio: "1:1" }]
  ]
}

/**
 * Every `resolution` the SDK may pass (`{width}x{height}`): Vidu Q3's 540p, 720p and 1080p at each
 * of its aspect ratios, the short side naming the tier (`1280x720` and `720x1280` are `720p`).
 */
export const resolutions: ReadonlyMap<string, Size> = new Map([
  ...sizesOf("540p", 540),
  ...sizesOf("720p", 720),
  ...sizesOf("1080p", 1080)
])

/** The SDK option (or `providerOptions.apixo` key) behind each Vidu Q3 input field. */
export const optionNames: Readonly<Record<string, string>> = {
  mode: "providerOptions.apixo.mode",
  prompt: "prompt",
  resolution: "resolution",
  duration: "duration",
  aspect_ratio: "aspectRatio",
  seed: "seed",
  image_urls: "image/frameImages",
  sound: "generateAudio",
  style: "providerOptions.apixo.style",
  movement: "providerOptions.apixo.movement",
  bgm: "providerOptions.apixo.bgm"
}

/**
 * The caller's name for a path reelkit reports: `input.aspect_ratio` is `aspectRatio`,
 * `options.provider` is `providerOptions.apixo.provider`; other paths are already the caller's.
 */
export const optionNameOf = (path: string): string => {
  if (path === "input") return optionNames.mode!
  if (path === "options.provider") return "providerOptions.apixo.provider"
  const field = /^input\.([a-z_]+)/.exec(path)?.[1]
  return field === undefined ? path : (optionNames[field] ?? path)
}
