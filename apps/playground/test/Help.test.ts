// `--help` of every command (the list below must name them all), run in this process (no child per command): each must succeed and
// print its own usage line and options.
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Cli from "../src/Cli.js"

/** A Console that keeps what `log` and `error` print (the only methods @effect/cli's help uses). */
const capturing = () => {
  const printed: Array<string> = []
  const keep = (...args: ReadonlyArray<unknown>) =>
    Effect.sync(() => {
      printed.push(args.map(String).join(" "))
    })
  const console = { [Console.TypeId]: Console.TypeId, log: keep, error: keep } as unknown as Console.Console
  return { printed, console }
}

const expected: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  [
    "generate",
    ["--model", "--transport", "--mode", "--prompt", "--aspect-ratio", "--no-wait", "--callback-url", "--timeout"]
  ],
  ["status", ["<task>", "--json"]],
  ["wait", ["<task>", "--first-poll-after", "--poll-every", "--timeout", "--transport"]],
  ["cancel", ["<task>", "--json", "--model", "--transport"]],
  ["list", ["--json"]],
  ["reconcile", ["--poll-every", "--timeout", "--json"]],
  ["serve", ["--port", "--host"]],
  ["estimate", ["--mode", "--resolution", "--duration", "--json"]],
  ["resubmit", ["<task>", "--no-wait", "--yes", "--json"]],
  ["budget", ["--json"]],
  ["fake-apixo", ["--port", "--host", "--processing-after", "--complete-after", "--fail-prompt"]]
]

describe("reelkit --help", () => {
  it("the list below covers every command", () => {
    expect(expected.map(([command]) => command).sort()).toEqual([...Cli.commandNames].sort())
  })

  it.effect("every command has --help: it succeeds and prints its own usage and options", () =>
    Effect.gen(function* () {
      for (const [command, flags] of expected) {
        const { console, printed } = capturing()
        const exit = yield* Effect.exit(
          Cli.run(["node", "reelkit", command, "--help"]).pipe(Effect.withConsole(console))
        )
        expect(Exit.isSuccess(exit), `${command}: ${String(exit)}`).toBe(true)
        // biome-ignore lint/suspicious/noControlCharactersInRegex: the help is ANSI-coloured
        const text = printed.join("\n").replace(/\u001b\[[0-9;]*m/g, "")
        const usages = [...text.matchAll(/^\$ (\S+)/gm)].map((match) => match[1])
        // Its own usage line, and no other command's.
        expect(usages, command).toEqual([command])
        for (const flag of flags) expect(text, `${command} ${flag}`).toContain(flag)
      }
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
