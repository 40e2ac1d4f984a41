/**
 * @reelkit/apixo: the apixo.ai transport shared by every apixo model.
 *
 * @since 0.1.0
 */

/** The apixo HTTP client: endpoints, auth, error mapping. */
export * as Apixo from "./Apixo.js"
/** Turns a model's input schema into a `TaskProvider`. */
export * as ApixoModel from "./ApixoModel.js"
/** The wire protocol: bodies, envelope, states, fail codes, callbacks. */
export * as ApixoProtocol from "./ApixoProtocol.js"
