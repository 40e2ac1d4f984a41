// Help and error text, in process: colour only where wanted, no filler, reelkit's own sentences.
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Cli from "../src/Cli.js"
import { closest, describe as describeError, describeParseError, exitCodeOf, speakFor } from "../src/Failure.js"
import * as Output from "../src/Output.js"
import * as Registry from "../src/Registry.js"

const helpOf = (args: ReadonlyArray<string>, colour: boolean) =>
  Effect.gen(function* () {
    let printed = ""
    yield* Output.withShapedConsole(Cli.run(["node", "reelkit", ...args]), {
      colour,
      write: (text) => {
        printed += text
      }
    })
    return printed
  }).pipe(Effect.provide(NodeContext.layer))

describe("Output", () => {
  it("colour only on a terminal, never with NO_COLOR or TERM=dumb", () => {
    expect(Output.colourAllowed({ isTTY: true }, {})).toBe(true)
    expect(Output.colourAllowed({ isTTY: false }, {})).toBe(false)
    expect(Output.colourAllowed({}, {})).toBe(false)
    expect(Output.colourAllowed({ isTTY: true }, { NO_COLOR: "1" })).toBe(false)
    expect(Output.colourAllowed({ isTTY: true }, { TERM: "dumb" })).toBe(false)
  })

  it.effect("help without colour has no escape codes and no generic filler; options show their types", () =>
    Effect.gen(function* () {
      for (const command of Cli.commandNames) {
        const text = yield* helpOf([command, "--help"], false)
        // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI escapes
        expect(text, command).not.toMatch(/\u001b\[/)
        expect(text, command).not.toContain("A user-defined piece of text")
        expect(text, command).toContain(`$ ${command}`)
      }
      const generate = yield* helpOf(["generate", "--help"], false)
      expect(generate).toContain("--seed integer")
      expect(generate).toContain("--timeout float")
      expect(generate).toContain("--style general | anime")
      expect(generate).toContain("What to generate (1 to 5000 characters).")
    })
  )

  it.effect("help with colour keeps the escape codes, and still drops the filler", () =>
    Effect.map(helpOf(["generate", "--help"], true), (text) => {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI escapes
      expect(text).toMatch(/\u001b\[0;1m--prompt text\u001b\[0m/)
      expect(text).not.toContain("A user-defined piece of text")
      expect(Output.stripAnsi(text)).toContain("--prompt text\n\n  What to generate (1 to 5000 characters).")
    })
  )

  it("parse errors name the option, suggest the closest spelling and point to --help", () => {
    const commands = Cli.commandNames
    expect(describeParseError("Invalid subcommand for reelkit - use one of 'generate'", ["recncile"], commands)).toBe(
      '"recncile" is not a reelkit command (did you mean "reconcile"?); run "reelkit --help" for the commands.'
    )
    expect(describeParseError("Invalid subcommand for reelkit - use one of 'generate'", ["zzz"], commands)).toBe(
      '"zzz" is not a reelkit command; run "reelkit --help" for the commands.'
    )
    expect(describeParseError("'1.5' is not a integer", ["serve", "--port=1.5"], commands)).toBe(
      '--port must be a whole number (got "1.5"); run "reelkit serve --help" for its options.'
    )
    expect(describeParseError("Expected to find option: '--mode'", ["estimate"], commands)).toBe(
      '--mode is required; run "reelkit estimate --help" for its options.'
    )
    expect(closest("1080", ["540p", "720p", "1080p"])).toBe("1080p")
    expect(closest("banana", ["540p", "720p", "1080p"])).toBeUndefined()
  })
})

describe("error sentences name the pair's service", () => {
  it("an account error, a refused input and a refused cancel say apixo's or Vidu's name and variables", () => {
    const vidu = Registry.find("vidu-q3", "vidu")!
    try {
      speakFor(vidu)
      expect(describeError({ _tag: "Unauthorized", message: "401" })).toBe(
        "the official Vidu API refused the API key in VIDU_API_KEY (401); check the key on the official Vidu API's dashboard."
      )
      expect(
        describeError({ _tag: "InvalidInput", path: "input", rule: "rejected by Vidu (prompt too long)", message: "" })
      ).toBe("the official Vidu API refused the input (prompt too long); no task was created and nothing was billed.")
      speakFor(Registry.defaultEntry)
      expect(
        describeError({
          _tag: "InvalidInput",
          path: "input",
          rule: "rejected by apixo: input.prompt: too long",
          message: ""
        })
      ).toBe("apixo refused the input (input.prompt: too long); no task was created and nothing was billed.")
      expect(describeError({ _tag: "CancelNotSupported", message: "" })).toBe(
        'apixo offers no way to cancel a task, so nothing was sent and the task goes on; pick it up with "reelkit wait".'
      )
      expect(exitCodeOf({ _tag: "CancelNotSupported" })).toBe(2)
      expect(exitCodeOf({ _tag: "OtherTransport" })).toBe(2)
    } finally {
      speakFor(Registry.defaultEntry)
    }
  })
})
