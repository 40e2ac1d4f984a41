/**
 * The `reelkit` executable: runs the CLI and turns its outcome into an exit code and, on failure,
 * one sentence on stderr (never a stack trace, never a secret).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Cli from "./Cli.js"
import { ExitCode, describe, errorOfCause } from "./Failure.js"

// The code the program decided; the runtime's teardown hands it to the process.
let exitCode: number = ExitCode.other

const program = Effect.gen(function* () {
  const exit = yield* Effect.exit(Cli.run(process.argv))
  if (Exit.isSuccess(exit)) return ExitCode.success
  if (Cause.isInterruptedOnly(exit.cause)) return 130
  const error = errorOfCause(exit.cause)
  // @effect/cli has already printed its own message for a bad command line.
  if (ValidationError.isValidationError(error)) return ExitCode.invalidInput
  const code = Cli.exitCodeOfFailure(error)
  if (!(error instanceof Cli.ExitWith)) process.stderr.write(`reelkit: ${describe(error, yield* Cli.secrets)}\n`)
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
    const code = Exit.isSuccess(exit) ? exitCode : ExitCode.other
    process.exitCode = code
    onExit(code)
  }
})
