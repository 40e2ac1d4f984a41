/**
 * @reelkit/provider-vidu-q3: the Vidu Q3 video model, through apixo.ai or the official Vidu API.
 *
 * @since 0.1.0
 */

/** The `vidu-q3` provider on apixo: hints and layers (and `layerVidu` for the official Vidu API). */
export * as ViduQ3 from "./ViduQ3.js"
/** The `vidu-q3` provider on the official Vidu API: encoding, warnings, hints and layers. */
export * as ViduQ3Vidu from "./ViduQ3Vidu.js"
/** Per-mode input schemas and their rules. */
export * as ViduQ3Input from "./ViduQ3Input.js"
/** Cost estimates from a price table you supply. */
export * as ViduQ3Pricing from "./ViduQ3Pricing.js"
