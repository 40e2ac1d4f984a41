/**
 * The `reelkit` command line: generate, status, wait, list, reconcile, serve. Every command
 * builds the playground's layers (`Playground.layer`), does its work through `TaskClient`, and
 * prints either readable lines or, with `--json`, JSON on stdout.
 */
import * as Args from "@effect/cli/Args"
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { TaskClient, TaskError, TaskLedger } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Fields from "./Fields.js"
import { ExitCode, exitCodeOf, exitCodeOfState } from "./Failure.js"
import * as Playground from "./Playground.js"
import * as Progress from "./Progress.js"
import * as Server from "./Server.js"
import * as TaskSummary from "./TaskSummary.js"

/** Ends the command with this exit code; its message (if any) was already printed. */
export class ExitWith extends Data.TaggedError("ExitWith")<{ readonly code: number }> {}

const printOut = (text: string) => Effect.sync(() => void process.stdout.write(`${text}\n`))
const printErr = (text: string) => Effect.sync(() => void process.stderr.write(`${text}\n`))

/** The settings, read once per run. */
const readSettings = Playground.settings

/** A task the in-process fake does not know: its id is not one a fake apixo server makes. */
export class FakeForgotTask extends Data.TaggedError("FakeForgotTask")<{ readonly reference: string }> {
  override get message(): string {
    return `The fake apixo server of this run does not know task ${this.reference}: without APIXO_API_KEY, it answers only for task ids a fake apixo server made`
  }
}

/** A task whose submit was refused; `failCode` is the tag of the original error (e.g. `Unauthorized`). */
export class SubmitRefused extends Data.TaggedError("SubmitRefused")<{
  readonly taskKey: string
  readonly failCode: string
  readonly reason: string
}> {
  override get message(): string {
    return `apixo refused the submit of ${this.taskKey}, so no task was created (${this.reason})`
  }
}

/** Builds the playground's layers and runs `body` in them; says once when the fake server is used. */
const withPlayground = <A, E>(
  body: Effect.Effect<A, E, Playground.Services>,
  options: { readonly useCallbacks?: boolean | undefined } = {}
) =>
  Effect.flatMap(readSettings, (settings) =>
    body.pipe(
      Effect.mapError((error) =>
        Option.isNone(settings.apiKey) && (error as { _tag?: string })._tag === "TaskNotFound"
          ? new FakeForgotTask({ reference: (error as unknown as { remoteTaskId: string }).remoteTaskId })
          : error
      ),
      Effect.provide(
        Playground.layer(settings, {
          useCallbacks: options.useCallbacks,
          onFakeStarted: (url) =>
            process.stderr.write(
              `reelkit: APIXO_API_KEY is not set, so this run uses a fake apixo server in this process at ${url} (nothing is billed; every video is a sample clip).\n`
            )
        })
      )
    )
  )

// ---- shared options ---------------------------------------------------------------------------

const json = Options.boolean("json").pipe(
  Options.withDescription("Print the result as JSON on stdout (one object per task; an array for list).")
)

const pollOptions = {
  firstPollAfter: Options.text("first-poll-after").pipe(
    Options.withDescription("Seconds from submit to the first status request (default: the model's advice)."),
    Options.optional
  ),
  pollEvery: Options.text("poll-every").pipe(
    Options.withDescription("Seconds between status requests (default: the model's advice)."),
    Options.optional
  ),
  timeout: Options.text("timeout").pipe(
    Options.withDescription("Seconds to wait before giving up; the task stays resumable (exit code 5)."),
    Options.optional
  )
}

const seconds = (flag: string, value: Option.Option<string>) =>
  Option.match(value, {
    onNone: () => Effect.succeed(undefined),
    onSome: (text) => {
      const parsed = Number(text.trim())
      return text.trim() !== "" && Number.isFinite(parsed) && parsed >= 0
        ? Effect.succeed(Duration.millis(Math.round(parsed * 1000)))
        : Effect.fail(Fields.invalid(flag, "must be a number of seconds, 0 or more"))
    }
  })

const waitOptionsOf = (flags: {
  readonly firstPollAfter: Option.Option<string>
  readonly pollEvery: Option.Option<string>
  readonly timeout: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const firstPollAfter = yield* seconds("first-poll-after", flags.firstPollAfter)
    const pollInterval = yield* seconds("poll-every", flags.pollEvery)
    const deadline = yield* seconds("timeout", flags.timeout)
    if (pollInterval !== undefined && Duration.toMillis(pollInterval) === 0) {
      return yield* Fields.invalid("poll-every", "must be more than 0 seconds")
    }
    return { firstPollAfter, pollInterval, deadline } satisfies TaskClient.WaitOptions
  })

// ---- printing ---------------------------------------------------------------------------------

const printTasks = (records: ReadonlyArray<TaskLedger.TaskRecord>, asJson: "object" | "array" | false) =>
  Effect.gen(function* () {
    const { settings } = yield* Playground.Playground
    const summaries = records.map((record) => TaskSummary.fromRecord(settings.home, record))
    if (asJson === "object") return yield* printOut(JSON.stringify(summaries[0], null, 2))
    if (asJson === "array") return yield* printOut(JSON.stringify(summaries, null, 2))
    for (const summary of summaries) yield* printOut(TaskSummary.toLines(summary).join("\n"))
  })

/**
 * Follows a task to its end with progress on stderr, prints its row (also when it failed or the
 * deadline passed), and fails with the outcome's error.
 */
const followTask = (reference: string, waitOptions: TaskClient.WaitOptions, asJson: boolean) =>
  Effect.gen(function* () {
    const client = yield* TaskClient.TaskClient
    const { pollPlan } = yield* Playground.Playground
    const record = yield* client.lookup(reference)
    const now = yield* Clock.currentTimeMillis
    const startedAt = record.submittedAt ?? record.createdAt
    const firstPollAfter = Duration.toMillis(waitOptions.firstPollAfter ?? pollPlan.firstPollAfter)
    const outcome = yield* Progress.follow(client.watch(record.taskKey, waitOptions), {
      taskKey: record.taskKey,
      startedAt,
      state: record.state,
      firstPollAt: Math.max(now, startedAt + firstPollAfter)
    }).pipe(Effect.either)
    const final = yield* client.lookup(record.taskKey)
    yield* printTasks([final], asJson ? "object" : false)
    // A refused submit fails the wait with a generic rejection; the row's failCode keeps why (key,
    // balance, input), which decides the exit code as it does for `status`.
    if (Either.isLeft(outcome) && final.state === "rejected") {
      return yield* new SubmitRefused({
        taskKey: final.taskKey,
        failCode: final.failCode ?? "",
        reason: final.failMessage ?? outcome.left.message
      })
    }
    if (Either.isLeft(outcome)) return yield* Effect.fail(outcome.left)
    if (final.state === "failed") {
      return yield* new TaskError.TaskFailed({
        taskKey: final.taskKey,
        code: final.failCode ?? "UNKNOWN",
        failMessage: final.failMessage ?? ""
      })
    }
  })

// ---- generate ---------------------------------------------------------------------------------

const choiceHelp = (name: string) => {
  const field = Fields.fields.find((candidate) => candidate.name === name)!
  return field.choices === undefined ? field.rule : `One of ${field.choices.join(", ")}.`
}

const generateOptions = {
  mode: Options.text("mode").pipe(Options.withDescription(`The Vidu Q3 mode: ${Fields.modes.join(", ")}.`)),
  prompt: Options.text("prompt").pipe(Options.withDescription("What to generate (1 to 5000 characters).")),
  model: Options.text("model").pipe(
    Options.withDescription(`The model (only ${Fields.modelId} for now).`),
    Options.withDefault(Fields.modelId)
  ),
  resolution: Options.text("resolution").pipe(Options.withDescription(choiceHelp("resolution")), Options.optional),
  duration: Options.text("duration").pipe(
    Options.withDescription("Seconds of video, 1 to 16 (billed per second)."),
    Options.optional
  ),
  style: Options.text("style").pipe(
    Options.withDescription(`${choiceHelp("style")} Text modes only.`),
    Options.optional
  ),
  aspectRatio: Options.text("aspect-ratio").pipe(
    Options.withDescription(`${choiceHelp("aspect_ratio")} Text modes only.`),
    Options.optional
  ),
  movement: Options.text("movement").pipe(Options.withDescription(choiceHelp("movement")), Options.optional),
  sound: Options.boolean("sound").pipe(Options.withDescription("Generate sound (the server's default is on).")),
  noSound: Options.boolean("no-sound").pipe(Options.withDescription("Generate no sound.")),
  bgm: Options.boolean("bgm").pipe(Options.withDescription("Add background music (the server's default is on).")),
  noBgm: Options.boolean("no-bgm").pipe(Options.withDescription("Add no background music.")),
  seed: Options.text("seed").pipe(Options.withDescription("-1 (random) to 2147483647."), Options.optional),
  image: Options.text("image").pipe(
    Options.withDescription("An image URL (image modes; give it twice for first and last frame)."),
    Options.repeated
  ),
  provider: Options.text("provider").pipe(
    Options.withDescription("apixo routing: auto, value, official or a channel name."),
    Options.optional
  ),
  callbackUrl: Options.text("callback-url").pipe(
    Options.withDescription("Submit in callback mode with this URL, as given (reelkit still polls as a fallback)."),
    Options.optional
  ),
  idempotencyKey: Options.text("idempotency-key").pipe(
    Options.withDescription("A second generate with the same key returns the first task and sends nothing."),
    Options.optional
  ),
  noWait: Options.boolean("no-wait").pipe(
    Options.withDescription("Submit, print the task and exit; `reelkit wait <task>` picks it up later.")
  ),
  ...pollOptions,
  json
}

type GenerateFlags = Command.Command.ParseConfig<typeof generateOptions>

const pair = (on: boolean, off: boolean, name: string): Effect.Effect<boolean | undefined, TaskError.InvalidInput> =>
  on && off
    ? Effect.fail(Fields.invalid(`input.${name}`, `cannot be both --${name} and --no-${name}`))
    : Effect.succeed(on ? true : off ? false : undefined)

/** The wire input of `generate`'s flags. */
export const inputOfFlags = (flags: GenerateFlags) =>
  Effect.gen(function* () {
    const text = (value: Option.Option<string>) => Option.getOrUndefined(value)
    return Fields.toInput({
      mode: flags.mode,
      values: {
        prompt: flags.prompt,
        resolution: text(flags.resolution),
        duration: text(flags.duration),
        style: text(flags.style),
        aspect_ratio: text(flags.aspectRatio),
        movement: text(flags.movement),
        sound: yield* pair(flags.sound, flags.noSound, "sound"),
        bgm: yield* pair(flags.bgm, flags.noBgm, "bgm"),
        seed: text(flags.seed),
        image_urls: flags.image
      }
    })
  })

const isHttpUrl = (text: string) => {
  try {
    const url = new URL(text)
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
  } catch {
    return false
  }
}

const generate = Command.make("generate", generateOptions, (flags) =>
  Effect.gen(function* () {
    // Every check happens here, before any layer is built: invalid input never reaches the network.
    if (flags.model !== Fields.modelId) {
      return yield* Fields.invalid("model", `must be "${Fields.modelId}" (the only model of this playground)`)
    }
    const input = yield* inputOfFlags(flags)
    yield* Fields.prepare(input)
    const callbackUrl = Option.getOrUndefined(flags.callbackUrl)
    if (callbackUrl !== undefined && !isHttpUrl(callbackUrl)) {
      return yield* Fields.invalid("callback_url", "must be an absolute http(s) URL")
    }
    const provider = Option.getOrUndefined(flags.provider)
    if (provider !== undefined && provider.trim() === "") {
      return yield* Fields.invalid("options.provider", 'must be "auto", "value", "official" or a channel name')
    }
    const waitOptions = yield* waitOptionsOf(flags)

    yield* withPlayground(
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const handle = yield* client.start(input, {
          idempotencyKey: Option.getOrUndefined(flags.idempotencyKey),
          callbackUrl,
          providerOptions: provider === undefined ? undefined : { provider }
        })
        if (flags.noWait) {
          if (!flags.json) yield* printErr(`Submitted; run "reelkit wait ${handle.taskKey}" to wait for it.`)
          return yield* printTasks([yield* client.lookup(handle.taskKey)], flags.json ? "object" : false)
        }
        yield* followTask(handle.taskKey, waitOptions, flags.json)
      })
    )
  })
).pipe(Command.withDescription("Generate a video with Vidu Q3: submit, wait, store the result."))

// ---- status, wait, list, reconcile ------------------------------------------------------------

const task = Args.text({ name: "task" }).pipe(Args.withDescription("The task key (tk_...) or apixo's task id."))

const status = Command.make("status", { task, json }, ({ json, task }) =>
  withPlayground(
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      let record = yield* client.refresh(task)
      // The provider just reported success: store the outputs now rather than leave them to a later wait.
      if (record.state === "succeeded") record = yield* client.wait(record.taskKey)
      yield* printTasks([record], json ? "object" : false)
      const code = exitCodeOfState(record.state, record.failCode)
      if (code !== ExitCode.success) return yield* new ExitWith({ code })
    })
  )
).pipe(Command.withDescription("Ask apixo for a task's status now, record it, and print the task."))

const wait = Command.make("wait", { task, json, ...pollOptions }, (flags) =>
  Effect.flatMap(waitOptionsOf(flags), (waitOptions) => withPlayground(followTask(flags.task, waitOptions, flags.json)))
).pipe(Command.withDescription("Wait for a task to finish (e.g. after generate --no-wait) and store its result."))

const list = Command.make("list", { json }, ({ json }) =>
  Effect.gen(function* () {
    const settings = yield* readSettings
    const records = yield* Effect.flatMap(TaskLedger.TaskLedger, (ledger) => ledger.list()).pipe(
      Effect.provide(Playground.ledgerLayer(settings.home))
    )
    const summaries = records.map((record) => TaskSummary.fromRecord(settings.home, record))
    if (json) return yield* printOut(JSON.stringify(summaries, null, 2))
    if (summaries.length === 0) return yield* printErr(`No tasks recorded under ${settings.home}.`)
    for (const summary of summaries) yield* printOut(TaskSummary.toLines(summary).join("\n"))
  })
).pipe(Command.withDescription("List the recorded tasks, newest first."))

const reconcile = Command.make("reconcile", { json, ...pollOptions }, (flags) =>
  Effect.flatMap(waitOptionsOf(flags), (waitOptions) =>
    withPlayground(
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        if (!flags.json) yield* printErr("Resuming every unfinished task in the ledger...")
        const summary = yield* client.reconcile(waitOptions)
        const keys = [
          ...summary.completed,
          ...summary.failed,
          ...summary.ambiguous,
          ...summary.unfinished.map((entry) => entry.taskKey)
        ]
        const records = yield* Effect.forEach(keys, (key) => client.lookup(key))
        if (flags.json) yield* printTasks(records, "array")
        else if (records.length === 0) yield* printErr("Nothing to reconcile.")
        else {
          yield* printTasks(records, false)
          for (const entry of summary.unfinished) yield* printErr(`${entry.taskKey} is unfinished: ${entry.reason}`)
          for (const key of summary.ambiguous) {
            yield* printErr(`${key} is ambiguous: its submit may or may not have created a task; it was not re-sent.`)
          }
        }
        // The worst outcome decides: something unknown, then a passed deadline, then a failed task.
        const code =
          summary.ambiguous.length > 0 || summary.unfinished.some((entry) => entry.error !== "DeadlineExceeded")
            ? ExitCode.other
            : summary.unfinished.length > 0
              ? ExitCode.deadline
              : summary.failed.length > 0
                ? ExitCode.taskFailed
                : ExitCode.success
        if (code !== ExitCode.success) return yield* new ExitWith({ code })
      })
    )
  )
).pipe(Command.withDescription("Resume every unfinished task (after a crash or restart) and wait for them."))

// ---- serve ------------------------------------------------------------------------------------

const serve = Command.make(
  "serve",
  {
    port: Options.integer("port").pipe(
      Options.withDescription("Port to listen on, on 127.0.0.1 (0 picks a free one)."),
      Options.withDefault(3000)
    ),
    host: Options.text("host").pipe(
      Options.withDescription("Interface to listen on."),
      Options.withDefault("127.0.0.1")
    )
  },
  ({ host, port }) =>
    withPlayground(
      Server.serve({ port, host, onListening: (url) => process.stderr.write(`reelkit: serving ${url}\n`) }),
      {
        useCallbacks: true
      }
    )
).pipe(Command.withDescription("Serve the web app: a form per mode, a live task list, task pages with the video."))

// ---- root -------------------------------------------------------------------------------------

/** The `reelkit` command with its subcommands. */
const command = Command.make("reelkit").pipe(
  Command.withDescription("Generate videos with Vidu Q3 through apixo, durably (see apps/playground/README.md)."),
  Command.withSubcommands([generate, status, wait, list, reconcile, serve])
)

/** Runs the CLI on `argv` (as `process.argv`). */
export const run: (argv: ReadonlyArray<string>) => Effect.Effect<void, unknown, CliApp.CliApp.Environment> =
  Command.run(command, {
    name: "reelkit",
    version: "0.0.0"
  })

/** The secrets messages must never show. */
export const secrets = Effect.map(
  Effect.orElseSucceed(readSettings, () => undefined),
  (settings) =>
    settings === undefined
      ? []
      : [
          ...Option.toArray(Option.map(settings.apiKey, Redacted.value)),
          ...Option.toArray(Option.map(settings.callbacks, (config) => Redacted.value(config.secret)))
        ]
)

/** The exit code of a failure of `run` (`ExitWith` carries its own). */
export const exitCodeOfFailure = (error: unknown): number =>
  error instanceof ExitWith ? error.code : exitCodeOf(error)
