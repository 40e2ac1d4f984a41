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
const filler = /^\s*A user-defined piece of text( that is confidential)?\.\s*\n(\s*\n)?/gm

/** The help text as printed: filler removed, colour kept only when `colour`. */
export const shapeHelp = (text: string, colour: boolean): string => {
  const plain = stripAnsi(text)
  if (!plain.includes("A user-defined piece of text")) return colour ? text : plain
  // Removing lines from coloured text would split escape sequences: shape the plain text then.
  return plain.replace(filler, "")
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
