/**
 * Exit codes and one-sentence error messages. The code comes from the error's `_tag` (for a
 * refused submit, from the tag it was recorded with): 2 invalid input (caught before sending, or
 * refused by apixo unbilled), 3 the task failed, 4 authentication or balance, 5 the deadline passed
 * (the task is still resumable), 1 anything else. Messages never carry a stack trace or the key.
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Option from "effect/Option"
import { flagOf } from "./Fields.js"

/** How messages name the service a command talks to (the pair's, from `Registry`). */
export interface Speaker {
  readonly serviceName: string
  readonly fakeName: string
  readonly keyVariable: string
  readonly baseUrlVariable: string
}

// The one CLI run's service: the command sets it once its pair is known, and main.ts describes
// the command's failure after it ended; a process runs one command, so one value is enough.
let speaker: Speaker = {
  serviceName: "apixo",
  fakeName: "fake apixo",
  keyVariable: "APIXO_API_KEY",
  baseUrlVariable: "APIXO_BASE_URL"
}

/** Makes messages name this pair's service, key and base URL variables. */
export const speakFor = (entry: Speaker): void => {
  speaker = entry
}

/** Ends the command with this exit code; its message (if any) was already printed. */
export class ExitWith extends Data.TaggedError("ExitWith")<{ readonly code: number }> {}

/** A task the in-process fake does not know: its id is not one a fake server of its transport makes. */
export class FakeForgotTask extends Data.TaggedError("FakeForgotTask")<{ readonly reference: string }> {
  override get message(): string {
    return `The ${speaker.fakeName} server of this run does not know task ${this.reference}: without ${speaker.keyVariable}, it answers only for task ids such a fake made`
  }
}

/** `--transport` names another transport than the one the task was sent on: nothing was sent. */
export class OtherTransport extends Data.TaggedError("OtherTransport")<{
  readonly taskKey: string
  readonly given: string
  readonly recorded: string
}> {
  override get message(): string {
    return `${this.taskKey} was sent on ${this.recorded}, not ${this.given}: run it with --transport ${this.recorded} (or without --transport); nothing was sent`
  }
}

/** A task whose submit was refused; `failCode` is the tag of the original error (e.g. `Unauthorized`). */
export class SubmitRefused extends Data.TaggedError("SubmitRefused")<{
  readonly taskKey: string
  readonly failCode: string
  readonly reason: string
}> {
  override get message(): string {
    return `${speaker.serviceName} refused the submit of ${this.taskKey}, so no task was created (${this.reason})`
  }
}

/** A setting from the environment that cannot be used; `hint` says what to set instead. */
export class InvalidSetting extends Data.TaggedError("InvalidSetting")<{
  readonly name: string
  readonly value: string
  readonly rule: string
  readonly hint: string
}> {
  override get message(): string {
    return `${this.name} ${this.rule} (got "${this.value}"); ${this.hint}`
  }
}

/** The service (or its base URL override) cannot be reached at all: nothing was sent. */
export class Unreachable extends Data.TaggedError("Unreachable")<{
  readonly baseUrl: string
  readonly reason: string
}> {
  override get message(): string {
    return `cannot reach ${speaker.serviceName} at ${this.baseUrl} (${this.reason}); check ${speaker.baseUrlVariable} and the network, then try again; nothing was sent`
  }
}

/** The CLI's exit codes. */
export const ExitCode = {
  success: 0,
  other: 1,
  invalidInput: 2,
  taskFailed: 3,
  account: 4,
  deadline: 5
} as const

const tagOf = (error: unknown): string =>
  typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"
    ? (error as { _tag: string })._tag
    : ""

/** The exit code of an error. */
export const exitCodeOf = (error: unknown): number => {
  switch (tagOf(error)) {
    case "InvalidInput":
    case "IdempotencyConflict":
    case "ConfigError":
    case "ValidationError":
    case "InvalidSetting":
    case "ConfirmationRequired":
    case "Declined":
    case "CannotEstimate":
    case "CancelNotSupported":
    case "OtherTransport":
      return ExitCode.invalidInput
    case "TaskFailed":
      return ExitCode.taskFailed
    case "Unauthorized":
    case "InsufficientCredits":
    case "Forbidden":
      return ExitCode.account
    case "DeadlineExceeded":
      return ExitCode.deadline
    case "SubmitRefused":
      return exitCodeOf({ _tag: (error as { readonly failCode: string }).failCode })
    default:
      return ExitCode.other
  }
}

/** The exit code of a ledger state reported by `status`: a failed task is 3, a refused submit by its cause. */
export const exitCodeOfState = (state: string, failCode: string | undefined): number =>
  state === "failed"
    ? ExitCode.taskFailed
    : state === "rejected"
      ? exitCodeOf({ _tag: failCode ?? "" })
      : state === "ambiguous"
        ? ExitCode.other
        : ExitCode.success

// How the transports word the rule of an InvalidInput made from the service's 400 to a submit:
// `rejected by apixo: ...` and `rejected by Vidu (...)`.
const serviceRejection = /^rejected by (?:apixo|Vidu)\b[:\s]*(?:\((.*)\)$)?/

const accountTags: ReadonlySet<string> = new Set(["Unauthorized", "Forbidden", "InsufficientCredits"])

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string"
    ? (error as { message: string }).message
    : String(error)

// One line, ending in a full stop, with any secret blanked out.
const sentence = (text: string, secrets: ReadonlyArray<string>): string => {
  let line = text.replace(/\s*\n\s*/g, " ").trim()
  for (const secret of secrets) if (secret.length >= 4) line = line.split(secret).join("***")
  return /[.!?]$/.test(line) ? line : `${line}.`
}

/** One sentence saying what went wrong, naming the field or the cause. */
export const describe = (error: unknown, secrets: ReadonlyArray<string> = []): string => {
  const tag = tagOf(error)
  const message = messageOf(error)
  switch (tag) {
    case "InvalidInput": {
      const invalid = error as { readonly path: string; readonly rule: string }
      // The service's own 400 arrives as an InvalidInput too, but the request was sent (and refused, unbilled).
      const rejection = serviceRejection.exec(invalid.rule)
      if (invalid.path === "input" && rejection !== null) {
        const reason = rejection[1] ?? invalid.rule.slice(rejection[0].length)
        return sentence(
          `${speaker.serviceName} refused the input (${reason}); no task was created and nothing was billed`,
          secrets
        )
      }
      return sentence(`Invalid ${flagOf(invalid)}: it ${invalid.rule}; nothing was sent`, secrets)
    }
    case "SubmitRefused": {
      const refused = error as { readonly failCode: string; readonly reason: string }
      return accountTags.has(refused.failCode)
        ? describe({ _tag: refused.failCode, message: refused.reason }, secrets)
        : sentence(message, secrets)
    }
    case "Unauthorized":
      return sentence(
        `${speaker.serviceName} refused the API key in ${speaker.keyVariable} (${message}); check the key on ${speaker.serviceName}'s dashboard`,
        secrets
      )
    case "Forbidden":
      return sentence(`${speaker.serviceName} refused the request (${message})`, secrets)
    case "InsufficientCredits":
      return sentence(
        `The ${speaker.serviceName} balance cannot pay for this task (${message}); top it up on ${speaker.serviceName}'s dashboard, then try again`,
        secrets
      )
    case "CancelNotSupported":
      return sentence(
        `${speaker.serviceName} offers no way to cancel a task, so nothing was sent and the task goes on; pick it up with "reelkit wait"`,
        secrets
      )
    case "DeadlineExceeded":
      return sentence(`${message} with "reelkit wait ${(error as { taskKey: string }).taskKey}"`, secrets)
    case "ConfigError": {
      // A setting's own check names it in the error's path (e.g. REELKIT_PRICING); Config prefixes
      // the variable's name again on the way out, so repeated names are said once.
      const path = [...new Set((error as { readonly path?: ReadonlyArray<string> }).path ?? [])]
      return path.length === 0
        ? sentence(`Invalid configuration: ${message}`, secrets)
        : sentence(`${path.join(".")} ${message}; fix it or unset it`, secrets)
    }
    case "UnknownTask":
      return sentence(`${message.replace(/[.]$/, "")}; run "reelkit list" to see the recorded tasks`, secrets)
    case "LedgerError":
      return sentence(`The task ledger failed (${message})`, secrets)
    case "ArtifactStoreError":
      return sentence(`The artifact store failed (${message})`, secrets)
    case "TaskNotFound":
      return sentence(`${speaker.serviceName} does not know this task (${message})`, secrets)
    case "TransportError":
      return sentence(
        `Could not reach ${speaker.serviceName} (${message}); check the network and ${speaker.baseUrlVariable}, then try again`,
        secrets
      )
    case "FakeApixoError":
    case "FakeViduError":
      return sentence(`The ${speaker.fakeName} server could not start (${message})`, secrets)
    default:
      return sentence(message === "" ? `Unexpected error ${tag}` : message, secrets)
  }
}

/** The error inside a cause: its first failure, else its first defect. */
export const errorOfCause = <E>(cause: Cause.Cause<E>): unknown =>
  Option.getOrElse(Cause.failureOption(cause), () =>
    Option.getOrElse(Cause.dieOption(cause), () => new Error("interrupted"))
  )

// ---- command-line parse errors ----------------------------------------------------------------

/** The edit distance of two strings (for "did you mean"). */
export const distance = (left: string, right: string): number => {
  let previous = Array.from({ length: right.length + 1 }, (_, index) => index)
  for (let i = 1; i <= left.length; i++) {
    const current = [i]
    for (let j = 1; j <= right.length; j++) {
      const cost = left[i - 1] === right[j - 1] ? 0 : 1
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost)
    }
    previous = current
  }
  return previous[right.length]!
}

/** The candidate closest to `text`, when it is close enough to be a typo. */
export const closest = (text: string, candidates: ReadonlyArray<string>): string | undefined => {
  let best: { readonly candidate: string; readonly distance: number } | undefined
  for (const candidate of candidates) {
    const score = distance(text.toLowerCase(), candidate.toLowerCase())
    if (best === undefined || score < best.distance) best = { candidate, distance: score }
  }
  return best !== undefined && best.distance <= Math.max(2, Math.floor(text.length / 3)) ? best.candidate : undefined
}

// The flag a value was given to on the command line (`--seed abc` or `--seed=abc`).
const flagOfValue = (argv: ReadonlyArray<string>, value: string): string | undefined => {
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!
    if (arg.startsWith("--") && arg.endsWith(`=${value}`)) return arg.slice(0, arg.indexOf("="))
    if (argv[index + 1] === value && arg.startsWith("-")) return arg
  }
  return undefined
}

/**
 * One `reelkit:`-free sentence for a parse error of @effect/cli (`text` is its message), naming
 * the option, with "did you mean" when a typo is likely and a hint to the command's `--help`.
 * `args` are the arguments after the script; `commands` the subcommand names.
 */
export const describeParseError = (
  text: string,
  args: ReadonlyArray<string>,
  commands: ReadonlyArray<string>
): string => {
  const message = text.replace(/\s+/g, " ").trim()
  const command = commands.includes(args[0] ?? "") ? args[0] : undefined
  const help = `run "reelkit${command === undefined ? "" : ` ${command}`} --help" for ${command === undefined ? "the commands" : "its options"}`
  for (const [pattern, say] of parseErrorForms) {
    const match = pattern.exec(message)
    if (match !== null) return sentence(`${say(match, args, commands)}; ${help}`, [])
  }
  return sentence(`${message.replace(/[.]$/, "")}; ${help}`, [])
}

// @effect/cli's messages, each with what reelkit says instead.
const parseErrorForms: ReadonlyArray<
  readonly [RegExp, (match: RegExpExecArray, args: ReadonlyArray<string>, commands: ReadonlyArray<string>) => string]
> = [
  [
    /^Invalid subcommand for \S+ - use one of (.*)$/,
    (_, args, commands) => {
      const given = args[0] ?? ""
      const suggestion = closest(given, commands)
      return `"${given}" is not a reelkit command${suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`}`
    }
  ],
  [
    /^The flag '(.+)' is not recognized\. Did you mean '(.+)'\?$/,
    (match) => `${match[1]} is not an option of this command (did you mean ${match[2]}?)`
  ],
  [/^Expected to find option: '(.+)'$/, (match) => `${match[1]} is required`],
  [
    /^'(.*)' is not a (integer|float|boolean|date)$/,
    (match, args) => {
      const flag = flagOfValue(args, match[1]!) ?? "an option"
      const kind = match[2] === "integer" ? "a whole number" : match[2] === "float" ? "a number" : `a ${match[2]}`
      return `${flag} must be ${kind} (got "${match[1]}")`
    }
  ],
  [
    /^Expected one of the following cases: (.*)$/,
    (match, args) => {
      const choices = match[1]!.split(/,\s*/)
      const given = args.find((arg, index) => index > 0 && args[index - 1]!.startsWith("--") && !choices.includes(arg))
      const flag = given === undefined ? "the option" : (flagOfValue(args, given) ?? "the option")
      const suggestion = given === undefined ? undefined : closest(given, choices)
      const got = given === undefined ? "" : ` (got "${given}")`
      return `${flag} must be one of ${choices.join(", ")}${got}${suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`}`
    }
  ],
  [
    /^Received unknown argument: '(.*)'$/,
    (match) => `unexpected argument "${match[1]}" (not an option of this command, or an option without its value)`
  ]
]
