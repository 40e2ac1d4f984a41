/**
 * The Vidu Q3 model (`vidu-q3`) on apixo as core's `TaskProvider`: the input schema from
 * `ViduQ3Input`, apixo's advice for polling (first poll 60-90 s after submit, then every 5 s),
 * 15-day result retention, and billing by `duration`. The same model on the official Vidu API is
 * `layerVidu` / `layerViduConfig` (see `ViduQ3Vidu`): swapping transports is swapping the layer.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { Apixo, ApixoModel } from "@reelkit/apixo"
import type { TaskProvider } from "@reelkit/core"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import type * as Config from "effect/Config"
import * as Layer from "effect/Layer"
import * as ViduQ3Input from "./ViduQ3Input.js"
import * as ViduQ3Vidu from "./ViduQ3Vidu.js"

/** The apixo model id. */
export const modelId = "vidu-q3"

/**
 * apixo's advice: first poll 60-90 s after submit (75 s, the middle), then every 5 s. Generations
 * take minutes; give up waiting (the task stays resumable) after 30 minutes.
 */
export const pollPlan: TaskProvider.PollPlan = {
  firstPollAfter: Duration.seconds(75),
  interval: Duration.seconds(5),
  deadline: Duration.minutes(30)
}

/** Result URLs expire 15 days after completion. */
export const resultRetention: Duration.Duration = Duration.days(15)

/** The model as an apixo model definition, for `ApixoModel.layer` on a shared `Apixo` client. */
export const model: ApixoModel.Definition<ViduQ3Input.ViduQ3Input, typeof ViduQ3Input.ViduQ3Input.Encoded> =
  ApixoModel.define({
    modelId,
    input: ViduQ3Input.ViduQ3Input,
    billableSeconds: ViduQ3Input.billableSeconds,
    pollPlan,
    resultRetention,
    outputContentType: "video/mp4"
  })

/** Options of the Vidu Q3 layers: how to reach apixo, plus overrides of the model's hints. */
export interface Options extends Apixo.Options, ApixoModel.Overrides {}

/**
 * Core's `TaskProvider` for `vidu-q3`, with its own apixo client. Needs an `HttpClient`
 * (e.g. `NodeHttpClient.layerUndici` or `FetchHttpClient.layer`).
 */
export const layer = (options: Options): Layer.Layer<TaskProvider.TaskProvider, never, HttpClient.HttpClient> =>
  ApixoModel.layer(model, options).pipe(Layer.provide(Apixo.layer(options)))

/**
 * Like `layer`, with apixo's settings from configuration (by default `APIXO_API_KEY` and
 * `APIXO_BASE_URL`), and optional hint overrides.
 */
export const layerConfig = (
  config: Config.Config.Wrap<Apixo.Options> = Apixo.config,
  overrides: ApixoModel.Overrides = {}
): Layer.Layer<TaskProvider.TaskProvider, ConfigError.ConfigError, HttpClient.HttpClient> =>
  ApixoModel.layer(model, overrides).pipe(Layer.provide(Apixo.layerConfig(config)))

/** The same model on the official Vidu API (`ViduQ3Vidu.layer`): `VIDU_API_KEY`'s account instead of apixo's. */
export const layerVidu: typeof ViduQ3Vidu.layer = ViduQ3Vidu.layer

/** The same model on the official Vidu API from configuration (`ViduQ3Vidu.layerConfig`: `VIDU_API_KEY`, `VIDU_BASE_URL`). */
export const layerViduConfig: typeof ViduQ3Vidu.layerConfig = ViduQ3Vidu.layerConfig
