/**
 * Exit codes and one-sentence error messages. The code comes from the error's `_tag` (for a
 * refused submit, from the tag it was recorded with): 2 invalid input (caught before sending, or
 * refused by apixo unbilled), 3 the task failed, 4 authentication or balance, 5 the deadline passed
 * (the task is still resumable), 1 anything else. Messages never carry a stack trace or the key.
 */
import * as Cause from "effect/Cause"
import * as Option from "effect/Option"
import { flagOf } from "./Fields.js"

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

// How the apixo client words the rule of an InvalidInput made from apixo's 400 to a submit.
const apixoRejection = "rejected by apixo"

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
      // apixo's own 400 arrives as an InvalidInput too, but the request was sent (and refused, unbilled).
      if (invalid.path === "input" && invalid.rule.startsWith(apixoRejection)) {
        const reason = invalid.rule.slice(apixoRejection.length).replace(/^[:\s]+/, "")
        return sentence(`apixo refused the input (${reason}); no task was created and nothing was billed`, secrets)
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
      return sentence(`apixo refused the API key in APIXO_API_KEY (${message})`, secrets)
    case "Forbidden":
      return sentence(`apixo refused the request (${message})`, secrets)
    case "InsufficientCredits":
      return sentence(`The apixo balance cannot pay for this task (${message})`, secrets)
    case "DeadlineExceeded":
      return sentence(`${message} with "reelkit wait ${(error as { taskKey: string }).taskKey}"`, secrets)
    case "ConfigError":
      return sentence(`Invalid configuration: ${message}`, secrets)
    case "LedgerError":
      return sentence(`The task ledger failed (${message})`, secrets)
    case "ArtifactStoreError":
      return sentence(`The artifact store failed (${message})`, secrets)
    case "TaskNotFound":
      return sentence(`apixo does not know this task (${message})`, secrets)
    case "TransportError":
      return sentence(`Could not reach apixo (${message})`, secrets)
    case "FakeApixoError":
      return sentence(`The fake apixo server could not start (${message})`, secrets)
    default:
      return sentence(message === "" ? `Unexpected error ${tag}` : message, secrets)
  }
}

/** The error inside a cause: its first failure, else its first defect. */
export const errorOfCause = <E>(cause: Cause.Cause<E>): unknown =>
  Option.getOrElse(Cause.failureOption(cause), () =>
    Option.getOrElse(Cause.dieOption(cause), () => new Error("interrupted"))
  )
