/**
 * @reelkit/provider-vidu-q3: the Vidu Q3 video model through apixo.ai.
 *
 * @since 0.1.0
 */

/** The `vidu-q3` provider: hints and layers. */
export * as ViduQ3 from "./ViduQ3.js"
/** Per-mode input schemas and their rules. */
export * as ViduQ3Input from "./ViduQ3Input.js"
/** Cost estimates from a price table you supply. */
export * as ViduQ3Pricing from "./ViduQ3Pricing.js"
