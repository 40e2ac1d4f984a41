/**
 * What @effect/cli prints, shaped for people and pipes: colour only on a terminal that wants it
 * (never into a pipe, never with `NO_COLOR`), no "A user-defined piece of text." filler in the
 * help (every option has its own description), and parse errors held back so that `main` says
 * them once, in the CLI's own `reelkit: ...` form.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC
const ansi = /\u001b\[[0-9;]*[A-Za-z]/g

/** The text without ANSI escape sequences. */
export const stripAnsi = (text: string): string => text.replace(ansi, "")

/** Whether colour may go to a stream: a terminal, `NO_COLOR` unset (https://no-color.org), `TERM` not `dumb`. */
export const colourAllowed = (
  stream: { readonly isTTY?: boolean | undefined },
  env: Readonly<Record<string, string | undefined>> = process.env
): boolean => stream.isTTY === true && (env.NO_COLOR ?? "") === "" && env.TERM !== "dumb"

// @effect/cli adds its primitive type's generic sentence before each description; ours say more.
const filler = /^\s*A user-defined piece of text( that is confidential)?\.\s*$/

/** The help text as printed: filler paragraphs removed (line by line, so colour survives), colour kept only when `colour`. */
export const shapeHelp = (text: string, colour: boolean): string => {
  const lines = text.split("\n")
  const kept: Array<string> = []
  for (let index = 0; index < lines.length; index++) {
    if (!filler.test(stripAnsi(lines[index]!))) {
      kept.push(lines[index]!)
      continue
    }
    // The blank line that closed the filler paragraph goes with it.
    if (stripAnsi(lines[index + 1] ?? "x").trim() === "") index++
  }
  const shaped = kept.join("\n")
  return colour ? shaped : stripAnsi(shaped)
}

/**
 * Runs `effect` with a Console whose `log` writes shaped text to `write` and whose `error` (only
 * @effect/cli's parse errors use it) is dropped: the caller reports the error itself.
 */
export const withShapedConsole = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: { readonly colour: boolean; readonly write: (text: string) => void }
): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.console, (base) => {
    const shaped: Console.Console = {
      ...base,
      log: (...args: ReadonlyArray<unknown>) =>
        Effect.sync(() => options.write(`${shapeHelp(args.map(String).join(" "), options.colour)}\n`)),
      error: () => Effect.void
    }
    return Effect.withConsole(effect, shaped)
  })
