/**
 * The Vidu Q3 input fields as the CLI and the web form present them: which flag and form field
 * each wire field is, which modes allow it, and the rule it must follow (the provider's own words,
 * from `ViduQ3Input.rules`). Raw text from flags or forms becomes a wire input here; the provider's
 * `prepare` then checks every rule (`ApixoModel.prepare`), so the CLI, the web server and the
 * library agree.
 */
import { TaskError } from "@reelkit/core"
import { ViduQ3Input } from "@reelkit/provider-vidu-q3"

/** Which modes a field belongs to. */
export type Scope = "all" | "text" | "image"

/** One input field. */
export interface Field {
  /** The wire name, e.g. `aspect_ratio`. */
  readonly name: string
  /** The CLI flag, e.g. `--aspect-ratio`. */
  readonly flag: string
  readonly label: string
  readonly kind: "text" | "choice" | "integer" | "boolean" | "urls"
  readonly choices?: ReadonlyArray<string> | undefined
  readonly min?: number | undefined
  readonly max?: number | undefined
  readonly scope: Scope
  /** Required in its modes (`image_urls` in image modes, `prompt` everywhere). */
  readonly required: boolean
  /** The rule, in the provider's words. */
  readonly rule: string
  /** The message when a required field is missing. */
  readonly missing?: string | undefined
}

const rules = ViduQ3Input.rules

/** Every field of a Vidu Q3 input except `mode`, in form order. */
export const fields: ReadonlyArray<Field> = [
  {
    name: "prompt",
    flag: "--prompt",
    label: "Prompt",
    kind: "text",
    scope: "all",
    required: true,
    min: 1,
    max: 5000,
    rule: rules.prompt,
    missing: "is required"
  },
  {
    name: "image_urls",
    flag: "--image",
    label: "Image URLs (1 or 2: first and last frame)",
    kind: "urls",
    scope: "image",
    required: true,
    min: 1,
    max: 2,
    rule: rules.image_urls,
    missing: rules.image_urls_required
  },
  {
    name: "resolution",
    flag: "--resolution",
    label: "Resolution",
    kind: "choice",
    choices: ViduQ3Input.Resolution.literals,
    scope: "all",
    required: false,
    rule: rules.resolution
  },
  {
    name: "duration",
    flag: "--duration",
    label: "Duration (s)",
    kind: "integer",
    min: 1,
    max: 16,
    scope: "all",
    required: false,
    rule: rules.duration
  },
  {
    name: "style",
    flag: "--style",
    label: "Style",
    kind: "choice",
    choices: ViduQ3Input.Style.literals,
    scope: "text",
    required: false,
    rule: rules.style
  },
  {
    name: "aspect_ratio",
    flag: "--aspect-ratio",
    label: "Aspect ratio",
    kind: "choice",
    choices: ViduQ3Input.AspectRatio.literals,
    scope: "text",
    required: false,
    rule: rules.aspect_ratio
  },
  {
    name: "movement",
    flag: "--movement",
    label: "Movement",
    kind: "choice",
    choices: ViduQ3Input.Movement.literals,
    scope: "all",
    required: false,
    rule: rules.movement
  },
  { name: "sound", flag: "--sound", label: "Sound", kind: "boolean", scope: "all", required: false, rule: rules.sound },
  {
    name: "bgm",
    flag: "--bgm",
    label: "Background music",
    kind: "boolean",
    scope: "all",
    required: false,
    rule: rules.bgm
  },
  {
    name: "seed",
    flag: "--seed",
    label: "Seed",
    kind: "integer",
    min: -1,
    max: 2147483647,
    scope: "all",
    required: false,
    rule: rules.seed
  }
]

/** Every Vidu Q3 mode, text modes first. */
export const modes: ReadonlyArray<ViduQ3Input.Mode> = ViduQ3Input.Mode.literals

/** Which field scope a mode allows besides `all`. */
export const scopeOf = (mode: string): Scope =>
  (ViduQ3Input.imageModes as ReadonlyArray<string>).includes(mode) ? "image" : "text"

/**
 * Raw values, as text, keyed by wire name (booleans as `true`/`false`, URLs as a list). Empty text
 * means "not given" and leaves the field out, so the server's defaults apply.
 */
export interface RawInput {
  readonly mode: string
  readonly values: Readonly<Record<string, string | boolean | ReadonlyArray<string> | undefined>>
}

// Whole numbers become numbers; anything else stays text, so the provider's rule names the field.
const integerOrText = (text: string): number | string => (/^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text)

/** Builds the wire input from raw values: given fields only, typed where the text allows. */
export const toInput = (raw: RawInput): Record<string, unknown> => {
  const input: Record<string, unknown> = { mode: raw.mode }
  for (const field of fields) {
    const value = raw.values[field.name]
    if (value === undefined) continue
    if (typeof value === "boolean") input[field.name] = value
    else if (Array.isArray(value)) {
      const urls = (value as ReadonlyArray<string>).map((url) => url.trim()).filter((url) => url !== "")
      if (urls.length > 0) input[field.name] = urls
    } else if (typeof value === "string" && value.trim() !== "") {
      input[field.name] = field.kind === "integer" ? integerOrText(value) : field.kind === "text" ? value : value.trim()
    }
  }
  return input
}

/** The field an `InvalidInput` path names (`input.image_urls.1` is `image_urls`), or `mode` for the top level. */
export const fieldOf = (error: { readonly path: string }): string => {
  const [root, field] = error.path.split(".")
  if (root !== "input") return root ?? "input"
  return field ?? "mode"
}

/** The CLI flag an `InvalidInput` concerns. */
export const flagOf = (error: { readonly path: string }): string => {
  const name = fieldOf(error)
  const known = fields.find((field) => field.name === name)
  if (known !== undefined) return known.flag
  if (name === "mode" || name === "input") return "--mode"
  if (name === "callback_url" || name === "callbackUrl") return "--callback-url"
  if (name === "taskKey") return "--task-key"
  if (name === "options") return "--provider"
  return `--${name.replace(/_/g, "-")}`
}

/** `InvalidInput` for a field of the playground's own (flags that are not model input). */
export const invalid = (path: string, rule: string): TaskError.InvalidInput =>
  new TaskError.InvalidInput({ path, rule })
