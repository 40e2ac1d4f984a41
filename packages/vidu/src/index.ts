/**
 * @reelkit/vidu: the official Vidu API transport.
 *
 * @since 0.1.0
 */

/** The Vidu HTTP client: endpoints, Token auth, error mapping, cancel, callback verification. */
export * as Vidu from "./Vidu.js"
/** Turns a model's Vidu encoding into a `TaskProvider`. */
export * as ViduModel from "./ViduModel.js"
/** The wire protocol: endpoints, answers, states, callbacks. */
export * as ViduProtocol from "./ViduProtocol.js"
/** Signed callbacks: the signing string, signatures, and the verifier. */
export * as ViduSignature from "./ViduSignature.js"
