/**
 * The `reelkit` executable: runs the CLI and turns its outcome into an exit code and, on failure,
 * one `reelkit: ...` sentence on stderr with a hint (never a stack trace, never a secret). Ctrl-C
 * ends it with 130, after the command said how to resume.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Cli from "./Cli.js"
import { ExitCode, describe, describeParseError, errorOfCause } from "./Failure.js"
import * as Output from "./Output.js"

/** The exit code of a process stopped by SIGINT (128 + 2), as shells report it. */
const interrupted = 130

// The code the program decided; the runtime's teardown hands it to the process.
let exitCode: number = ExitCode.other

const say = (text: string) => Effect.sync(() => void process.stderr.write(`reelkit: ${text}\n`))

const program = Effect.gen(function* () {
  const exit = yield* Effect.exit(
    Output.withShapedConsole(Cli.run(process.argv), {
      colour: Output.colourAllowed(process.stdout),
      write: (text) => void process.stdout.write(text)
    })
  )
  if (Exit.isSuccess(exit)) return ExitCode.success
  if (Cause.isInterruptedOnly(exit.cause)) return interrupted
  const error = errorOfCause(exit.cause)
  if (ValidationError.isValidationError(error)) {
    const text = Output.stripAnsi(HelpDoc.toAnsiText(error.error))
    yield* say(describeParseError(text, process.argv.slice(2), Cli.commandNames))
    return ExitCode.invalidInput
  }
  const code = Cli.exitCodeOfFailure(error)
  if (!(error instanceof Cli.ExitWith)) yield* say(describe(error, yield* Cli.secrets))
  return code
}).pipe(
  Effect.tap((code) =>
    Effect.sync(() => {
      exitCode = code
    })
  ),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    // SIGINT interrupts the whole program, so its own exit code was never set.
    const code = Exit.isSuccess(exit) ? exitCode : Cause.isInterruptedOnly(exit.cause) ? interrupted : ExitCode.other
    process.exitCode = code
    onExit(code)
  }
})
