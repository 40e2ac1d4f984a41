/**
 * The work of the commands that talk to a provider (generate, estimate, status, wait, cancel,
 * reconcile, resubmit, serve), loaded by `Cli.ts` only when one of them runs. Each resolves its
 * (model, transport) pair (`--model`/`--transport`; a recorded task's own pair), builds the
 * playground's layers (`Playground.layer`) once, does its work through `TaskClient`, and prints
 * readable lines or, with `--json`, JSON on stdout; progress, warnings and notes go to stderr.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { TaskClient, TaskError, TaskLedger, TaskProvider, TaskState } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as Readline from "node:readline/promises"
import {
  type EstimateFlags,
  type GenerateFlags,
  type PairFlags,
  type PollFlags,
  type TaskFlags,
  entryOf
} from "./Cli.js"
import * as Cost from "./Cost.js"
import {
  ExitCode,
  ExitWith,
  FakeForgotTask,
  OtherTransport,
  SubmitRefused,
  exitCodeOfState,
  speakFor
} from "./Failure.js"
import * as Fields from "./Fields.js"
import * as Playground from "./Playground.js"
import * as Progress from "./Progress.js"
import * as Reachability from "./Reachability.js"
import * as Registry from "./Registry.js"
import * as Settings from "./Settings.js"
import * as TaskSummary from "./TaskSummary.js"

const printOut = (text: string) => Effect.sync(() => void process.stdout.write(`${text}\n`))
const printErr = (text: string) => Effect.sync(() => void process.stderr.write(`${text}\n`))

/** Builds the pair's layers and runs `body` in them; says once per fake server used. */
const withPlayground = <A, E>(
  entry: Registry.Entry,
  body: Effect.Effect<A, E, Playground.Services>,
  options: {
    readonly useCallbacks?: boolean | undefined
    readonly probe?: boolean | undefined
    readonly allPairs?: boolean | undefined
  } = {}
) =>
  Effect.gen(function* () {
    speakFor(entry)
    const settings = yield* Reachability.checkedSettings(entry)
    // Against the service (or its base URL override), a server that cannot be reached fails now,
    // in seconds, rather than after every retry of the first request. `serve` starts regardless:
    // it outlives an outage and reports errors per task.
    if (Option.isSome(settings.apiKey) && options.probe !== false) {
      yield* Reachability.probe(Option.getOrElse(settings.baseUrl, () => entry.defaultBaseUrl))
    }
    return yield* body.pipe(
      Effect.mapError((error) =>
        Option.isNone(settings.apiKey) && (error as { _tag?: string })._tag === "TaskNotFound"
          ? new FakeForgotTask({ reference: (error as unknown as { remoteTaskId: string }).remoteTaskId })
          : error
      ),
      Effect.provide(
        Playground.layer(settings, {
          useCallbacks: options.useCallbacks,
          allPairs: options.allPairs,
          onFakeStarted: (started, url) =>
            process.stderr.write(
              `reelkit: ${started.keyVariable} is not set, so ${Registry.nameOf(started)} uses a ${started.fakeName} server in this process at ${url} (nothing is billed; every video is a sample clip).\n`
            )
        })
      )
    )
  })

/**
 * The pair's gate alone (`TaskProvider.prepare`), before any ledger, budget or fake exists: bad
 * input is refused with nothing written and nothing sent. The gate sends no request, so the
 * provider is built with a placeholder key.
 */
const gate = (entry: Registry.Entry, request: TaskProvider.StartRequest) =>
  Effect.gen(function* () {
    const wiring = yield* Effect.promise(entry.load)
    const provider = wiring
      .provider({ apiKey: Redacted.make("unused"), baseUrl: entry.defaultBaseUrl, pollPlan: wiring.pollPlan })
      .pipe(Layer.provide(NodeHttpClient.layerUndici))
    yield* Effect.flatMap(TaskProvider.TaskProvider, (gated) => gated.prepare(request)).pipe(Effect.provide(provider))
  })

/** The pair of a command that starts new work: `--model` and `--transport` (default apixo). */
const newWorkEntry = (flags: PairFlags) => entryOf(flags)

/**
 * The pair of a recorded task: the one its row was sent on when `--transport` is not given; a
 * `--transport` that names another pair is refused before anything is sent.
 */
const taskEntry = (flags: TaskFlags) =>
  Effect.gen(function* () {
    const { home } = yield* Settings.settings
    const chosen = Option.isSome(flags.transport) ? Option.some(yield* entryOf(flags)) : Option.none()
    // Read only when there is a ledger: a command about a task must not create one.
    const row = Fs.existsSync(Settings.ledgerFile(home))
      ? yield* Effect.flatMap(TaskLedger.TaskLedger, (ledger) =>
          Effect.flatMap(ledger.get(flags.task), (byKey) =>
            Option.isSome(byKey) ? Effect.succeed(byKey) : ledger.findByRemoteId(flags.task)
          )
        ).pipe(Effect.provide(Settings.ledgerLayer(home)))
      : Option.none()
    const recorded = Option.flatMap(row, (record) => Option.fromNullable(Registry.ofRecord(record)))
    if (Option.isSome(chosen) && Option.isSome(recorded) && chosen.value !== recorded.value) {
      return yield* new OtherTransport({
        taskKey: Option.getOrThrow(row).taskKey,
        given: chosen.value.transport,
        recorded: recorded.value.transport
      })
    }
    return Option.getOrElse(
      Option.orElse(chosen, () => recorded),
      () => Registry.defaultEntry
    )
  })

// ---- options ----------------------------------------------------------------------------------

const secondsOf = (value: Option.Option<number>) =>
  Option.getOrUndefined(Option.map(value, (seconds) => Duration.millis(Math.round(seconds * 1000))))

const waitOptionsOf = (flags: PollFlags): TaskClient.WaitOptions => ({
  firstPollAfter: secondsOf(flags.firstPollAfter),
  pollInterval: secondsOf(flags.pollEvery),
  deadline: secondsOf(flags.timeout)
})

// ---- printing ---------------------------------------------------------------------------------

const printTasks = (
  records: ReadonlyArray<TaskLedger.TaskRecord>,
  asJson: "object" | "array" | false,
  warnings: ReadonlyArray<TaskProvider.Warning> = []
) =>
  Effect.gen(function* () {
    const { settings } = yield* Playground.Playground
    const summaries = records.map((record) => TaskSummary.fromRecord(settings.home, record))
    // A field the transport could not carry is said on stderr and, with --json, in `warnings`.
    for (const warning of warnings) yield* printErr(warningLine(warning))
    if (asJson === "object") {
      const summary = warnings.length === 0 ? summaries[0] : { ...summaries[0], warnings }
      return yield* printOut(JSON.stringify(summary, null, 2))
    }
    if (asJson === "array") return yield* printOut(JSON.stringify(summaries, null, 2))
    for (const [index, summary] of summaries.entries()) {
      yield* printOut(TaskSummary.toLines(summary, TaskSummary.detailsOf(records[index]!)).join("\n"))
    }
  })

/** The line printed on stderr for a field the transport could not carry. */
export const warningLine = (warning: TaskProvider.Warning): string =>
  `reelkit: warning: ${warning.field} ${warning.message}.`

/** The hint printed when a wait is stopped (Ctrl-C): the task goes on and can be picked up again. */
export const resumeHint = (taskKey: string, serviceName = "apixo"): string =>
  `reelkit: stopped waiting for ${taskKey}; the task goes on at ${serviceName}. Resume with: reelkit wait ${taskKey}`

/** The hint printed when Ctrl-C stops a submit before it returned: the ledger knows what happened. */
export const submitInterrupted =
  'reelkit: stopped while submitting; run "reelkit reconcile" to finish the task if it was sent, or "reelkit list" to see it'

/**
 * Follows a task to its end with progress on stderr, prints its row (also when it failed or the
 * deadline passed), and fails with the outcome's error. Stopped by Ctrl-C, it says how to resume.
 */
const followTask = (
  reference: string,
  waitOptions: TaskClient.WaitOptions,
  asJson: boolean,
  warnings: ReadonlyArray<TaskProvider.Warning> = []
) =>
  Effect.gen(function* () {
    const client = yield* TaskClient.TaskClient
    const { pollPlan, entry } = yield* Playground.Playground
    const record = yield* client.lookup(reference)
    // A task already at its end has nothing to follow: no replay of the states it went through.
    const outcome = TaskState.isTerminal(record.state)
      ? Either.right(undefined)
      : yield* Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const startedAt = record.submittedAt ?? record.createdAt
          const firstPollAfter = Duration.toMillis(waitOptions.firstPollAfter ?? pollPlan.firstPollAfter)
          return yield* Progress.follow(client.watch(record.taskKey, waitOptions), {
            taskKey: record.taskKey,
            startedAt,
            state: record.state,
            firstPollAt: Math.max(now, startedAt + firstPollAfter)
          }).pipe(Effect.either)
        })
    const final = yield* client.lookup(record.taskKey)
    yield* printTasks([final], asJson ? "object" : false, warnings)
    // A refused submit fails the wait with a generic rejection; the row's failCode keeps why (key,
    // balance, input), which decides the exit code as it does for `status`.
    if (final.state === "rejected") {
      return yield* new SubmitRefused({
        taskKey: final.taskKey,
        failCode: final.failCode ?? "",
        reason: final.failMessage ?? (Either.isLeft(outcome) ? outcome.left.message : "refused")
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
    if (final.state === "ambiguous") {
      yield* printErr(ambiguousAdvice(final, entry.serviceName))
      return yield* new ExitWith({ code: ExitCode.other })
    }
  }).pipe(
    Effect.onInterrupt(() =>
      Effect.flatMap(Playground.Playground, ({ entry }) => printErr(resumeHint(reference, entry.serviceName)))
    )
  )

// ---- cost and confirmation --------------------------------------------------------------------

const askOnTerminal = (question: string) =>
  Effect.promise(async () => {
    const prompt = Readline.createInterface({ input: process.stdin, output: process.stderr })
    try {
      return /^y(es)?$/i.test((await prompt.question(question)).trim())
    } finally {
      prompt.close()
    }
  })

/** Prints the cost line (when prices are configured) and asks for a yes above `REELKIT_CONFIRM_ABOVE`. */
const approveCost = (input: Cost.Priceable, yes: boolean) =>
  Effect.gen(function* () {
    const { settings } = yield* Playground.Playground
    const threshold = yield* Cost.confirmAbove
    const estimate = Cost.estimate(input, settings.pricing)
    if (Option.isSome(settings.pricing) || Option.isSome(threshold)) yield* printErr(Cost.line(estimate))
    if (yes || !Cost.needsConfirmation(estimate, threshold)) return
    const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true
    if (!interactive) return yield* new Cost.ConfirmationRequired({ estimate, threshold: Option.getOrThrow(threshold) })
    if (!(yield* askOnTerminal("Submit this paid task? [y/N] "))) return yield* new Cost.Declined()
  })

// ---- commands ---------------------------------------------------------------------------------

const pair = (on: boolean, off: boolean, name: string): Effect.Effect<boolean | undefined, TaskError.InvalidInput> =>
  on && off
    ? Effect.fail(Fields.invalid(`input.${name}`, `cannot be both --${name} and --no-${name}`))
    : Effect.succeed(on ? true : off ? false : undefined)

/** The wire input of `generate`'s flags. */
export const inputOfFlags = (flags: GenerateFlags) =>
  Effect.gen(function* () {
    const value = <A>(option: Option.Option<A>) => Option.getOrUndefined(option)
    const text = (option: Option.Option<number | string>) => Option.getOrUndefined(Option.map(option, String))
    return Fields.toInput({
      mode: flags.mode,
      values: {
        prompt: flags.prompt,
        resolution: value(flags.resolution),
        duration: text(flags.duration),
        style: value(flags.style),
        aspect_ratio: value(flags.aspectRatio),
        movement: value(flags.movement),
        sound: yield* pair(flags.sound, flags.noSound, "sound"),
        bgm: yield* pair(flags.bgm, flags.noBgm, "bgm"),
        seed: text(flags.seed),
        image_urls: flags.image
      }
    })
  })

/** `reelkit generate`. */
export const generate = (flags: GenerateFlags): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const input = yield* inputOfFlags(flags)
    const callbackUrl = Option.getOrUndefined(flags.callbackUrl)
    const provider = Option.getOrUndefined(flags.provider)
    const providerOptions = provider === undefined ? undefined : { provider }
    const waitOptions = waitOptionsOf(flags)
    const entry = yield* newWorkEntry(flags)

    // The provider's gate is the one validation: the CLI only renders its field errors. It runs
    // before the ledger is opened and before the cost question (and again inside start).
    yield* gate(entry, { input, callbackUrl, options: providerOptions })
    yield* withPlayground(
      entry,
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        yield* approveCost(input as unknown as Cost.Priceable, flags.yes)
        const handle = yield* client
          .start(input, {
            idempotencyKey: Option.getOrUndefined(flags.idempotencyKey),
            callbackUrl,
            providerOptions
          })
          .pipe(Effect.onInterrupt(() => printErr(submitInterrupted)))
        const warnings = handle.warnings ?? []
        if (flags.noWait) {
          if (!flags.json) yield* printErr(`Submitted; run "reelkit wait ${handle.taskKey}" to wait for it.`)
          return yield* printTasks([yield* client.lookup(handle.taskKey)], flags.json ? "object" : false, warnings)
        }
        yield* followTask(handle.taskKey, waitOptions, flags.json, warnings)
      })
    )
  })

/** `reelkit estimate`: the cost from the price table; nothing is opened or sent. */
export const estimate = (flags: EstimateFlags): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const settings = yield* Settings.settingsFor(yield* newWorkEntry(flags))
    const result = Cost.estimate(
      {
        mode: flags.mode,
        resolution: Option.getOrUndefined(flags.resolution),
        duration: Option.getOrUndefined(flags.duration)
      },
      settings.pricing
    )
    if (result._tag === "Unpriced") return yield* new Cost.CannotEstimate({ reason: result.reason })
    if (flags.json) return yield* printOut(JSON.stringify(result.cost))
    yield* printOut(Cost.describe(result))
  })

/** `reelkit status`. */
export const status = (flags: TaskFlags): Effect.Effect<void, unknown> =>
  Effect.flatMap(taskEntry(flags), (entry) =>
    withPlayground(
      entry,
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        let record = yield* client.refresh(flags.task)
        // The provider just reported success: store the outputs now rather than leave them to a later wait.
        if (record.state === "succeeded") record = yield* client.wait(record.taskKey)
        yield* printTasks([record], flags.json ? "object" : false)
        if (record.state === "ambiguous") yield* printErr(ambiguousAdvice(record, entry.serviceName))
        const code = exitCodeOfState(record.state, record.failCode)
        if (code !== ExitCode.success) return yield* new ExitWith({ code })
      })
    )
  )

/**
 * `reelkit cancel`: a queued task is never sent, a running one is cancelled with the provider;
 * exit 0 once the row reads cancelled. A transport without a cancel (apixo) is refused with
 * `CancelNotSupported` (exit 2) before anything is sent; a task that ended first is printed as it ended.
 */
export const cancel = (flags: TaskFlags): Effect.Effect<void, unknown> =>
  Effect.flatMap(taskEntry(flags), (entry) =>
    withPlayground(
      entry,
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const record = yield* client.cancel(flags.task)
        yield* printTasks([record], flags.json ? "object" : false)
        if (record.state === "cancelled") return
        yield* printErr(`reelkit: ${record.taskKey} ended (${record.state}) before it could be cancelled.`)
        const code = exitCodeOfState(record.state, record.failCode)
        return yield* new ExitWith({ code: code === ExitCode.success ? ExitCode.other : code })
      })
    )
  )

/** `reelkit wait`. */
export const wait = (flags: PollFlags & TaskFlags): Effect.Effect<void, unknown> =>
  Effect.flatMap(taskEntry(flags), (entry) =>
    withPlayground(entry, followTask(flags.task, waitOptionsOf(flags), flags.json))
  )

/** What to do about an ambiguous row, in one line. */
export const ambiguousAdvice = (record: TaskLedger.TaskRecord, serviceName = "apixo"): string => {
  const input = (record.input ?? {}) as { readonly prompt?: unknown; readonly mode?: unknown }
  const prompt = typeof input.prompt === "string" ? ` with prompt "${input.prompt.slice(0, 60)}"` : ""
  return `${record.taskKey} is ambiguous: its submit may or may not have reached ${serviceName}, so it was not sent again. Check ${serviceName}'s dashboard for a ${String(input.mode ?? "")} task${prompt} created around ${new Date(record.createdAt).toISOString()}; if there is none, run "reelkit resubmit ${record.taskKey}".`
}

/** `reelkit reconcile`: resumes every unfinished task; exits 1 while any ambiguous row remains. */
export const reconcile = (flags: PollFlags & PairFlags & { readonly json: boolean }): Effect.Effect<void, unknown> =>
  Effect.flatMap(newWorkEntry(flags), (entry) =>
    withPlayground(
      entry,
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const ledger = yield* TaskLedger.TaskLedger
        if (!flags.json) yield* printErr("Resuming every unfinished task in the ledger...")
        const summary = yield* client.reconcile(waitOptionsOf(flags))
        // Rows left ambiguous by earlier runs too: each needs the user's decision until resubmitted.
        const ambiguous = yield* ledger.list({
          states: ["ambiguous"],
          providerId: entry.providerId,
          modelId: entry.model
        })
        const keys = [
          ...new Set([
            ...summary.completed,
            ...summary.failed,
            ...summary.unfinished.map((entry) => entry.taskKey),
            ...summary.ambiguous,
            ...ambiguous.map((record) => record.taskKey)
          ])
        ]
        const records = yield* Effect.forEach(keys, (key) => client.lookup(key))
        if (flags.json) yield* printTasks(records, "array")
        else if (records.length === 0) yield* printErr("Nothing to reconcile.")
        else yield* printTasks(records, false)
        for (const entry of summary.unfinished) yield* printErr(`${entry.taskKey} is unfinished: ${entry.reason}`)
        for (const record of records.filter((candidate) => candidate.state === "ambiguous")) {
          yield* printErr(ambiguousAdvice(record, entry.serviceName))
        }
        // The worst outcome decides: something unknown, then a passed deadline, then a failed task.
        const anyAmbiguous = records.some((record) => record.state === "ambiguous")
        const code =
          anyAmbiguous || summary.unfinished.some((entry) => entry.error !== "DeadlineExceeded")
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

/** `reelkit resubmit`: sends an ambiguous or refused task's submit again, on the user's word. */
export const resubmit = (
  flags: PollFlags & TaskFlags & { readonly noWait: boolean; readonly yes: boolean }
): Effect.Effect<void, unknown> =>
  Effect.flatMap(taskEntry(flags), (entry) =>
    withPlayground(
      entry,
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        const record = yield* client.lookup(flags.task)
        yield* approveCost(record.input as Cost.Priceable, flags.yes)
        const handle = yield* client.resubmit(record.taskKey)
        if (flags.noWait) {
          if (!flags.json) yield* printErr(`Submitted again; run "reelkit wait ${handle.taskKey}" to wait for it.`)
          return yield* printTasks(
            [yield* client.lookup(handle.taskKey)],
            flags.json ? "object" : false,
            handle.warnings
          )
        }
        yield* followTask(handle.taskKey, waitOptionsOf(flags), flags.json, handle.warnings)
      })
    )
  )

/** `reelkit serve`. */
export const serve = (
  flags: PairFlags & { readonly port: number; readonly host: string }
): Effect.Effect<void, unknown> =>
  Effect.flatMap(
    Effect.all([
      Effect.promise(() => import("./Server.js")),
      Effect.promise(() => import("./server/ServeSettings.js")),
      newWorkEntry(flags)
    ]),
    ([Server, ServeSettings, entry]) =>
      // A weak callback secret is refused in its own words before any pair (or fake) is built.
      Effect.zipRight(
        ServeSettings.checkCallbackSecret,
        withPlayground(
          entry,
          Server.serve({
            port: flags.port,
            host: flags.host,
            onListening: (url) => process.stderr.write(`reelkit: serving ${url}\n`)
          }),
          { useCallbacks: true, probe: false, allPairs: true }
        )
      )
  )
