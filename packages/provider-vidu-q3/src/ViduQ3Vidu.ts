/**
 * Vidu Q3 on the official Vidu API (`@reelkit/vidu`): the same `ViduQ3Input`, encoded for Vidu.
 * Text modes go to `POST /text2video`, image modes with one image to `/img2video` and with two
 * (first and last frame) to `/start-end2video`; the standard tier is model `viduq3-pro`, the turbo
 * tier `viduq3-turbo`. Fields Vidu's Q3 cannot carry (`style`, `movement`, `bgm`) are never dropped
 * silently: each is a `TaskProvider.Warning` on the prepared request (and so on the task handle),
 * or, with `unsupportedFields: "reject"`, an `InvalidInput` before any request. Result URLs live 24
 * hours; a task bills its `duration` (5 seconds when omitted, Vidu's default).
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { ApixoModel } from "@reelkit/apixo"
import { TaskError, type TaskProvider } from "@reelkit/core"
import { Vidu, ViduModel, type ViduProtocol } from "@reelkit/vidu"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ViduQ3Input from "./ViduQ3Input.js"

/** reelkit's model id, the same on every transport. */
export const modelId = "vidu-q3"

/** Vidu's model name per tier. */
export const viduModels = { standard: "viduq3-pro", turbo: "viduq3-turbo" } as const

/** The duration Vidu uses (and bills) when the input omits one. */
export const defaultDurationSeconds = 5

/**
 * Vidu publishes no polling advice; a Q3 generation takes a minute or more. First poll 30 s after
 * submit, then every 5 s; waiting stops (resumably) at 30 minutes.
 */
export const pollPlan: TaskProvider.PollPlan = {
  firstPollAfter: Duration.seconds(30),
  interval: Duration.seconds(5),
  deadline: Duration.minutes(30)
}

/** Result URLs expire 24 hours after completion. */
export const resultRetention: Duration.Duration = Duration.hours(24)

/** What to do with a field the caller set that Vidu's Q3 cannot carry. */
export type UnsupportedFields = "warn" | "reject"

/** The fields Vidu's Q3 cannot carry, and why (the warning's or the error's text). */
export const unsupported = {
  style: "is not sent: the official Vidu API takes no style for Q3 (Vidu documents style as having no effect on Q3)",
  movement:
    "is not sent: the official Vidu API takes no movement amplitude for Q3 (Vidu documents it as having no effect on Q3)",
  bgm: "is not sent: the official Vidu API takes no bgm for Q3 (Vidu documents bgm as having no effect on Q3)"
} as const

const checkInput = ApixoModel.prepareInput(
  ApixoModel.define({ modelId, input: ViduQ3Input.ViduQ3Input, billableSeconds: ViduQ3Input.billableSeconds })
)

/** The endpoint an input goes to. */
export const endpointOf = (input: ViduQ3Input.ViduQ3Input): ViduProtocol.Endpoint =>
  ViduQ3Input.isTextMode(input) ? "text2video" : input.image_urls.length === 2 ? "start-end2video" : "img2video"

/**
 * Encodes a checked input for Vidu: `model` by tier, then `images`, `prompt`, `duration`, `seed`
 * (`-1`, apixo's "random", is left out: Vidu picks a random seed when none is sent), `resolution`,
 * `aspect_ratio` (text modes), `audio` (from `sound`). Returns the body and the unsupported fields set.
 */
export const encodeInput = (
  input: ViduQ3Input.ViduQ3Input
): { readonly body: ViduProtocol.SubmitBody; readonly dropped: ReadonlyArray<keyof typeof unsupported> } => {
  const body: Record<string, unknown> = { model: viduModels[ViduQ3Input.tierOf(input.mode)] }
  if (!ViduQ3Input.isTextMode(input)) body.images = [...input.image_urls]
  body.prompt = input.prompt
  if (input.duration !== undefined) body.duration = input.duration
  if (input.seed !== undefined && input.seed !== -1) body.seed = input.seed
  if (input.resolution !== undefined) body.resolution = input.resolution
  if (ViduQ3Input.isTextMode(input) && input.aspect_ratio !== undefined) body.aspect_ratio = input.aspect_ratio
  if (input.sound !== undefined) body.audio = input.sound
  const dropped: Array<keyof typeof unsupported> = []
  if (ViduQ3Input.isTextMode(input) && input.style !== undefined) dropped.push("style")
  if (input.movement !== undefined) dropped.push("movement")
  if (input.bgm !== undefined) dropped.push("bgm")
  return { body: body as ViduProtocol.SubmitBody, dropped }
}

/** The Vidu definition of the model: checks with `ViduQ3Input`'s rules, then encodes. */
export const model = (
  options: { readonly unsupportedFields?: UnsupportedFields | undefined } = {}
): ViduModel.Definition => ({
  modelId,
  pollPlan,
  resultRetention,
  outputContentType: "video/mp4",
  encode: (raw) =>
    Effect.gen(function* () {
      const prepared = yield* checkInput(raw)
      // Checked above: the wire form is a valid input.
      const input = prepared.input as ViduQ3Input.ViduQ3Input
      const { body, dropped } = encodeInput(input)
      if (options.unsupportedFields === "reject" && dropped.length > 0) {
        return yield* new TaskError.InvalidInput({ path: `input.${dropped[0]}`, rule: unsupported[dropped[0]!] })
      }
      return {
        input: prepared.input,
        endpoint: endpointOf(input),
        body,
        billableSeconds: input.duration ?? defaultDurationSeconds,
        warnings: dropped.map((field) => ({ field: `input.${field}`, message: unsupported[field] }))
      }
    })
})

/** Options of the Vidu layers: how to reach Vidu, hint overrides, and what to do with unsupported fields. */
export interface Options extends Vidu.Options, ViduModel.Overrides {
  /** `warn` (default): a `Warning` per unsupported field set; `reject`: `InvalidInput` before any request. */
  readonly unsupportedFields?: UnsupportedFields | undefined
}

/** Core's `TaskProvider` for `vidu-q3` on the official Vidu API, with its own client. Needs an `HttpClient`. */
export const layer = (options: Options): Layer.Layer<TaskProvider.TaskProvider, never, HttpClient.HttpClient> =>
  ViduModel.layer(model(options), options).pipe(Layer.provide(Vidu.layer(options)))

/** Like `layer`, with Vidu's settings from configuration (by default `VIDU_API_KEY` and `VIDU_BASE_URL`). */
export const layerConfig = (
  config: Config.Config.Wrap<Vidu.Options> = Vidu.config,
  overrides: ViduModel.Overrides & { readonly unsupportedFields?: UnsupportedFields | undefined } = {}
): Layer.Layer<TaskProvider.TaskProvider, ConfigError.ConfigError, HttpClient.HttpClient> =>
  ViduModel.layer(model(overrides), overrides).pipe(Layer.provide(Vidu.layerConfig(config)))
