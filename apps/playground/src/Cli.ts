/**
 * The `reelkit` command line: generate, estimate, status, wait, list, reconcile, resubmit, serve,
 * fake-apixo. This module holds only the command tree (typed options with their help); each
 * command's work is loaded when that command runs (`Commands.ts`, `ListCommand.ts`, `Server.ts`),
 * so `list` or `--help` never load the provider, the HTTP server or the fake.
 */
import * as Args from "@effect/cli/Args"
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as CommandDescriptor from "@effect/cli/CommandDescriptor"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fields from "./Fields.js"
import { ExitWith, exitCodeOf } from "./Failure.js"
import * as Registry from "./Registry.js"

export { ExitWith } from "./Failure.js"

// A command's work, loaded on first use: the module graph behind it stays unread otherwise.
const lazy =
  <M, F, A, E, R>(load: () => Promise<M>, body: (module: M, flags: F) => Effect.Effect<A, E, R>) =>
  (flags: F): Effect.Effect<A, E, R> =>
    Effect.flatMap(Effect.promise(load), (module) => body(module, flags))

const loadCommands = () => import("./Commands.js")

// ---- option types -----------------------------------------------------------------------------

const refuse = (text: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(text)))

/** A text option that refuses empty (or blank) text: "" never means "not given". */
const nonEmptyText = (name: string, what: string) =>
  Options.text(name).pipe(
    Options.mapEffect((text) =>
      text.trim() === "" ? refuse(`--${name} is empty: give ${what}`) : Effect.succeed(text)
    )
  )

/** An integer option within [min, max]. */
const integerIn = (name: string, min: number, max: number, unit: string) =>
  Options.integer(name).pipe(
    Options.mapEffect((value) =>
      value >= min && value <= max
        ? Effect.succeed(value)
        : refuse(`--${name} must be ${unit} from ${min} to ${max} (got ${value})`)
    )
  )

/** A number of seconds, 0 or more (or more than 0 with `positive`). */
const secondsOption = (name: string, positive = false) =>
  Options.float(name).pipe(
    Options.mapEffect((value) =>
      Number.isFinite(value) && (positive ? value > 0 : value >= 0)
        ? Effect.succeed(value)
        : refuse(`--${name} must be a number of seconds, ${positive ? "more than 0" : "0 or more"} (got ${value})`)
    )
  )

// ---- shared options ---------------------------------------------------------------------------

const json = Options.boolean("json").pipe(
  Options.withDescription("Print the result as JSON on stdout (one object per task; an array for list).")
)

const pollOptions = {
  firstPollAfter: secondsOption("first-poll-after").pipe(
    Options.withDescription("Seconds from submit to the first status request (default: the model's advice)."),
    Options.optional
  ),
  pollEvery: secondsOption("poll-every", true).pipe(
    Options.withDescription("Seconds between status requests (default: the model's advice)."),
    Options.optional
  ),
  timeout: secondsOption("timeout").pipe(
    Options.withDescription("Seconds to wait before giving up; the task stays resumable (exit code 5)."),
    Options.optional
  )
}

/** `--model` and `--transport`: which registry pair a command drives (the choices come from `Registry`). */
const pairOptions = {
  model: Options.choice("model", Registry.models).pipe(
    Options.withDescription(`The model (${Registry.models.join(", ")}).`),
    Options.withDefault(Registry.defaultEntry.model)
  ),
  transport: Options.choice("transport", Registry.transports).pipe(
    Options.withDescription(
      `How the model is reached: ${Registry.transports.join(" or ")} (default ${Registry.defaultEntry.transport}; for a recorded task, the transport it was sent on).`
    ),
    Options.optional
  )
}

/** The parsed `--model` and `--transport`. */
export type PairFlags = Command.Command.ParseConfig<typeof pairOptions>

const yes = Options.boolean("yes").pipe(
  Options.withAlias("y"),
  Options.withDescription("Submit without asking, even above REELKIT_CONFIRM_ABOVE.")
)

const field = (name: string) => Fields.fields.find((candidate) => candidate.name === name)!

const choiceOf = (name: string, description: string) => {
  const { choices, flag } = field(name)
  return Options.choice(flag.slice(2), choices!).pipe(Options.withDescription(description), Options.optional)
}

/** The options that make a Vidu Q3 input (everything `estimate` and `generate` share). */
const inputOptions = {
  mode: Options.choice("mode", Fields.modes).pipe(
    Options.withDescription("The Vidu Q3 mode (turbo modes are faster and cheaper; image modes need --image).")
  ),
  ...pairOptions,
  resolution: choiceOf("resolution", "The video's resolution (the server's default when left out)."),
  duration: integerIn("duration", 1, 16, "a whole number of seconds").pipe(
    Options.withDescription("Seconds of video, 1 to 16 (billed per second; the server's default when left out)."),
    Options.optional
  )
}

/** `generate`'s options. */
export const generateOptions = {
  ...inputOptions,
  prompt: nonEmptyText("prompt", "what to generate").pipe(
    Options.withDescription("What to generate (1 to 5000 characters).")
  ),
  style: choiceOf("style", "The visual style. Text modes only."),
  aspectRatio: choiceOf("aspect_ratio", "The frame's shape. Text modes only."),
  movement: choiceOf("movement", "How much the camera and subjects move."),
  sound: Options.boolean("sound").pipe(Options.withDescription("Generate sound (the server's default is on).")),
  noSound: Options.boolean("no-sound").pipe(Options.withDescription("Generate no sound.")),
  bgm: Options.boolean("bgm").pipe(Options.withDescription("Add background music (the server's default is on).")),
  noBgm: Options.boolean("no-bgm").pipe(Options.withDescription("Add no background music.")),
  seed: integerIn("seed", -1, 2147483647, "an integer").pipe(
    Options.withDescription("The random seed, -1 (random) to 2147483647."),
    Options.optional
  ),
  image: Options.text("image").pipe(
    Options.withDescription("An image URL (image modes; give it twice for first and last frame)."),
    Options.repeated,
    Options.mapEffect((urls) =>
      urls.some((url) => url.trim() === "")
        ? refuse("--image is empty: give an image URL, or leave the option out")
        : Effect.succeed(urls)
    )
  ),
  provider: nonEmptyText("provider", '"auto", "value", "official" or a channel name').pipe(
    Options.withDescription("apixo's routing: auto, value, official or a channel name."),
    Options.optional
  ),
  callbackUrl: nonEmptyText("callback-url", "an absolute http(s) URL").pipe(
    Options.withDescription("Submit in callback mode with this URL, as given (reelkit still polls as a fallback)."),
    Options.optional
  ),
  idempotencyKey: nonEmptyText("idempotency-key", "a key of your choice").pipe(
    Options.withDescription("A second generate with the same key returns the first task and sends nothing."),
    Options.optional
  ),
  noWait: Options.boolean("no-wait").pipe(
    Options.withDescription("Submit, print the task and exit; `reelkit wait <task>` picks it up later.")
  ),
  yes,
  ...pollOptions,
  json
}

/** `generate`'s parsed flags. */
export type GenerateFlags = Command.Command.ParseConfig<typeof generateOptions>

/** `estimate`'s parsed flags. */
export type EstimateFlags = Command.Command.ParseConfig<typeof inputOptions & { readonly json: typeof json }>

/** The poll flags of `generate`, `wait`, `reconcile` and `resubmit`. */
export type PollFlags = Command.Command.ParseConfig<typeof pollOptions>

const task = Args.text({ name: "task" }).pipe(Args.withDescription("The task key (tk_...) or the provider's task id."))

/** The flags of a command about one recorded task. */
export type TaskFlags = PairFlags & { readonly task: string; readonly json: boolean }

// ---- commands ---------------------------------------------------------------------------------

const generate = Command.make(
  "generate",
  generateOptions,
  lazy(loadCommands, (commands, flags: GenerateFlags) => commands.generate(flags))
).pipe(Command.withDescription("Generate a video with Vidu Q3: submit, wait, store the result."))

const estimate = Command.make(
  "estimate",
  { ...inputOptions, json },
  lazy(loadCommands, (commands, flags: EstimateFlags) => commands.estimate(flags))
).pipe(
  Command.withDescription(
    "Estimate what a generate would cost, from the pair's price table (REELKIT_PRICING, REELKIT_VIDU_PRICING); nothing is sent."
  )
)

const status = Command.make(
  "status",
  { task, json, ...pairOptions },
  lazy(loadCommands, (commands, flags: TaskFlags) => commands.status(flags))
).pipe(Command.withDescription("Ask the provider for a task's status now, record it, and print the task."))

const cancel = Command.make(
  "cancel",
  { task, json, ...pairOptions },
  lazy(loadCommands, (commands, flags: TaskFlags) => commands.cancel(flags))
).pipe(
  Command.withDescription(
    "Cancel a task: a queued one is never sent, a running one is cancelled with the provider (exit 2 where the transport cannot cancel, e.g. apixo)."
  )
)

const wait = Command.make(
  "wait",
  { task, json, ...pollOptions, ...pairOptions },
  lazy(loadCommands, (commands, flags: PollFlags & TaskFlags) => commands.wait(flags))
).pipe(Command.withDescription("Wait for a task to finish (e.g. after generate --no-wait) and store its result."))

const list = Command.make(
  "list",
  { json, ...pairOptions },
  lazy(
    () => import("./ListCommand.js"),
    (module, flags: PairFlags & { readonly json: boolean }) =>
      Effect.flatMap(
        // Every task unless --transport names a pair.
        Option.isNone(flags.transport) ? Effect.succeed(Option.none()) : Effect.map(entryOf(flags), Option.some),
        (entry) => module.list({ json: flags.json, entry })
      )
  )
).pipe(
  Command.withDescription(
    "List the recorded tasks, newest first, with mode, prompt and creation time (with --transport, only that pair's)."
  )
)

const reconcile = Command.make(
  "reconcile",
  { json, ...pollOptions, ...pairOptions },
  lazy(loadCommands, (commands, flags: PollFlags & PairFlags & { readonly json: boolean }) => commands.reconcile(flags))
).pipe(
  Command.withDescription(
    "Resume every unfinished task (after a crash or restart), wait for them, and report ambiguous ones (exit 1 while any remain)."
  )
)

const resubmit = Command.make(
  "resubmit",
  {
    task,
    noWait: Options.boolean("no-wait").pipe(Options.withDescription("Submit again, print the task and exit.")),
    yes,
    json,
    ...pollOptions,
    ...pairOptions
  },
  lazy(
    loadCommands,
    (
      commands,
      flags: PollFlags &
        TaskFlags & {
          readonly noWait: boolean
          readonly yes: boolean
        }
    ) => commands.resubmit(flags)
  )
).pipe(
  Command.withDescription(
    "Send an ambiguous (or refused) task's submit again, once you checked the provider's dashboard that it made no task."
  )
)

/** `--port` and `--host` of the commands that listen (on loopback unless told otherwise). */
const listenOptions = (defaultPort: number) => ({
  port: integerIn("port", 0, 65535, "a port").pipe(
    Options.withDescription("Port to listen on (0 picks a free one)."),
    Options.withDefault(defaultPort)
  ),
  host: nonEmptyText("host", "an interface address").pipe(
    Options.withDescription("Interface to listen on."),
    Options.withDefault("127.0.0.1")
  )
})

const serve = Command.make(
  "serve",
  { ...listenOptions(3000), ...pairOptions },
  lazy(loadCommands, (commands, flags: PairFlags & { readonly port: number; readonly host: string }) =>
    commands.serve(flags)
  )
).pipe(
  Command.withDescription(
    "Serve the web app for every pair: a form per mode and pair, a live task list, task pages with the video and its transport."
  )
)

const fakeApixo = Command.make(
  "fake-apixo",
  {
    ...listenOptions(0),
    processingAfter: secondsOption("processing-after").pipe(
      Options.withDescription("Seconds from a task's creation to processing."),
      Options.withDefault(1)
    ),
    completeAfter: secondsOption("complete-after").pipe(
      Options.withDescription("Seconds from a task's creation to its end."),
      Options.withDefault(5)
    ),
    failPrompt: nonEmptyText("fail-prompt", "the text that makes a task fail").pipe(
      Options.withDescription("Tasks whose prompt contains this text fail with CONTENT_VIOLATION."),
      Options.optional
    )
  },
  lazy(
    () => import("./FakeApixoCommand.js"),
    (
      module,
      flags: {
        readonly port: number
        readonly host: string
        readonly processingAfter: number
        readonly completeAfter: number
        readonly failPrompt: Option.Option<string>
      }
    ) => module.fakeApixo(flags)
  )
).pipe(
  Command.withDescription(
    "Run a fake apixo.ai server that checks every input with Vidu Q3's schema, until Ctrl-C (nothing is billed)."
  )
)

const budget = Command.make(
  "budget",
  { json, ...pairOptions },
  lazy(
    () => import("./Budget.js"),
    (module, flags: PairFlags & { readonly json: boolean }) =>
      Effect.flatMap(entryOf(flags), (entry) => module.budget({ json: flags.json, entry }))
  )
).pipe(
  Command.withDescription(
    "Show the budget left on this REELKIT_HOME for the pair's key: requests this minute, tasks in flight, and the spend cap today and this month."
  )
)

// ---- root -------------------------------------------------------------------------------------

/** The subcommands, in help order. */
const subcommands = [
  generate,
  estimate,
  status,
  wait,
  cancel,
  list,
  reconcile,
  resubmit,
  budget,
  serve,
  fakeApixo
] as const

/** The names of the subcommands, in help order (for "did you mean" and the tests). */
export const commandNames: ReadonlyArray<string> = subcommands.flatMap((subcommand) => [
  ...CommandDescriptor.getNames<unknown>(subcommand.descriptor)
])

/** The `reelkit` command with its subcommands. */
const command = Command.make("reelkit").pipe(
  Command.withDescription(
    "Generate videos with Vidu Q3 through apixo or the official Vidu API, durably (see apps/playground/README.md)."
  ),
  Command.withSubcommands(subcommands)
)

/** Runs the CLI on `argv` (as `process.argv`). */
export const run: (argv: ReadonlyArray<string>) => Effect.Effect<void, unknown, CliApp.CliApp.Environment> =
  Command.run(command, {
    name: "reelkit",
    version: "0.0.0"
  })

/**
 * The registry pair of `--model` and `--transport` (the default transport when not given); a pair
 * the registry lacks (a model on a transport that does not serve it) is an `InvalidInput`.
 */
export const entryOf = (flags: PairFlags): Effect.Effect<Registry.Entry, ReturnType<typeof Fields.invalid>> => {
  const transport = Option.getOrElse(flags.transport, () => Registry.defaultEntry.transport)
  const entry = Registry.find(flags.model, transport)
  return entry === undefined
    ? Effect.fail(
        Fields.invalid(
          "transport",
          `does not serve ${flags.model} (the pairs are ${Registry.entries.map(Registry.nameOf).join(", ")})`
        )
      )
    : Effect.succeed(entry)
}

/** The secrets messages must never show (read from the environment as the settings read them). */
export const secrets = Effect.sync(() =>
  [...Registry.entries.map((entry) => process.env[entry.keyVariable]), process.env.REELKIT_CALLBACK_SECRET].filter(
    (secret): secret is string => secret !== undefined && secret.trim() !== ""
  )
)

/** The exit code of a failure of `run` (`ExitWith` carries its own). */
export const exitCodeOfFailure = (error: unknown): number =>
  error instanceof ExitWith ? error.code : exitCodeOf(error)
