// The models this provider serves: for each id, its apixo definition (what reelkit's TaskClient
// checks and sends) and the mapping of the AI SDK's call options to its input. A later apixo
// model is one more entry here.
import type { Experimental_VideoModelV4CallOptions } from "@ai-sdk/provider"
import type { ApixoModel } from "@reelkit/apixo"
import type { TaskError } from "@reelkit/core"
import { ViduQ3 } from "@reelkit/provider-vidu-q3"
import type * as Effect from "effect/Effect"
import type { ApixoVideoModelId } from "../ApixoVideoOptions.js"
import { type MappedCall, toViduQ3Call } from "./viduQ3CallOptions.js"

/** One served model. */
export interface ServedModel {
  readonly definition: ApixoModel.Definition<any, any>
  readonly toCall: (options: Experimental_VideoModelV4CallOptions) => Effect.Effect<MappedCall, TaskError.InvalidInput>
}

/** Every served model, by id. */
export const models: Readonly<Record<ApixoVideoModelId, ServedModel>> = {
  "vidu-q3": { definition: ViduQ3.model, toCall: toViduQ3Call }
}

/** Whether a string names a served model. */
export const isServed = (modelId: string): modelId is ApixoVideoModelId => Object.hasOwn(models, modelId)
