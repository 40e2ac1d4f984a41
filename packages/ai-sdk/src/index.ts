/**
 * @reelkit/ai-sdk: reelkit's video models inside the Vercel AI SDK.
 *
 * @since 0.1.0
 */

/** `createApixo` and the default `apixo` provider. */
export { type ApixoProvider, type ApixoProviderSettings, apixo, createApixo, defaultBaseURL } from "./ApixoProvider.js"
/** The video model type and the provider name. */
export { type ApixoVideoModel, providerName } from "./ApixoVideoModel.js"
/** `providerOptions.apixo`, the model ids, and the option mapping as data. */
export type { ApixoVideoModelId, ApixoVideoProviderOptions, Size, Tier } from "./ApixoVideoOptions.js"
/** The mapping tables: sizes the SDK's `resolution` may name, and the SDK option behind each input field. */
export { optionNameOf, optionNames, providerOptionKeys, resolutions } from "./ApixoVideoOptions.js"
