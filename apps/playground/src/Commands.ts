/**
 * The work of the commands that talk to apixo (generate, estimate, status, wait, reconcile,
 * resubmit, serve), loaded by `Cli.ts` only when one of them runs. Each builds the playground's
 * layers (`Playground.layer`) once, does its work through `TaskClient`, and prints readable lines
 * or, with `--json`, JSON on stdout; progress and notes go to stderr.
 */
import { TaskClient, TaskError, TaskLedger, TaskState } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Readline from "node:readline/promises"
import type { EstimateFlags, GenerateFlags, PollFlags } from "./Cli.js"
import * as Cost from "./Cost.js"
import { ExitCode, ExitWith, FakeForgotTask, SubmitRefused, exitCodeOfState } from "./Failure.js"
import * as Fields from "./Fields.js"
import * as Playground from "./Playground.js"
import * as Progress from "./Progress.js"
import * as Reachability from "./Reachability.js"
import * as TaskSummary from "./TaskSummary.js"

const printOut = (text: string) => Effect.sync(() => void process.stdout.write(`${text}\n`))
const printErr = (text: string) => Effect.sync(() => void process.stderr.write(`${text}\n`))

/** Builds the playground's layers and runs `body` in them; says once when the fake server is used. */
const withPlayground = <A, E>(
  body: Effect.Effect<A, E, Playground.Services>,
  options: { readonly useCallbacks?: boolean | undefined; readonly probe?: boolean | undefined } = {}
) =>
  Effect.gen(function* () {
    const settings = yield* Reachability.checkedSettings
    // Against apixo (or APIXO_BASE_URL), a server that cannot be reached fails now, in seconds,
    // rather than after every retry of the first request. `serve` starts regardless: it outlives
    // an outage and reports errors per task.
    if (Option.isSome(settings.apiKey) && options.probe !== false) {
      yield* Reachability.probe(Option.getOrElse(settings.baseUrl, () => apixoUrl))
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
          onFakeStarted: (url) =>
            process.stderr.write(
              `reelkit: APIXO_API_KEY is not set, so this run uses a fake apixo server in this process at ${url} (nothing is billed; every video is a sample clip).\n`
            )
        })
      )
    )
  })

const apixoUrl = "https://api.apixo.ai"

// ---- options ----------------------------------------------------------------------------------

const secondsOf = (value: Option.Option<number>) =>
  Option.getOrUndefined(Option.map(value, (seconds) => Duration.millis(Math.round(seconds * 1000))))

const waitOptionsOf = (flags: PollFlags): TaskClient.WaitOptions => ({
  firstPollAfter: secondsOf(flags.firstPollAfter),
  pollInterval: secondsOf(flags.pollEvery),
  deadline: secondsOf(flags.timeout)
})

// ---- printing ---------------------------------------------------------------------------------

const printTasks = (records: ReadonlyArray<TaskLedger.TaskRecord>, asJson: "object" | "array" | false) =>
  Effect.gen(function* () {
    const { settings } = yield* Playground.Playground
    const summaries = records.map((record) => TaskSummary.fromRecord(settings.home, record))
    if (asJson === "object") return yield* printOut(JSON.stringify(summaries[0], null, 2))
    if (asJson === "array") return yield* printOut(JSON.stringify(summaries, null, 2))
    for (const [index, summary] of summaries.entries()) {
      yield* printOut(TaskSummary.toLines(summary, TaskSummary.detailsOf(records[index]!)).join("\n"))
    }
  })

/** The hint printed when a wait is stopped (Ctrl-C): the task goes on and can be picked up again. */
export const resumeHint = (taskKey: string): string =>
  `reelkit: stopped waiting for ${taskKey}; the task goes on at apixo. Resume with: reelkit wait ${taskKey}`

/** The hint printed when Ctrl-C stops a submit before it returned: the ledger knows what happened. */
export const submitInterrupted =
  'reelkit: stopped while submitting; run "reelkit reconcile" to finish the task if it was sent, or "reelkit list" to see it'

/**
 * Follows a task to its end with progress on stderr, prints its row (also when it failed or the
 * deadline passed), and fails with the outcome's error. Stopped by Ctrl-C, it says how to resume.
 */
const followTask = (reference: string, waitOptions: TaskClient.WaitOptions, asJson: boolean) =>
  Effect.gen(function* () {
    const client = yield* TaskClient.TaskClient
    const { pollPlan } = yield* Playground.Playground
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
    yield* printTasks([final], asJson ? "object" : false)
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
      yield* printErr(ambiguousAdvice(final))
      return yield* new ExitWith({ code: ExitCode.other })
    }
  }).pipe(Effect.onInterrupt(() => printErr(resumeHint(reference))))

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
    const settings = yield* Playground.settings
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

    yield* withPlayground(
      Effect.gen(function* () {
        const client = yield* TaskClient.TaskClient
        // The provider's gate is the one validation: the CLI only renders its field errors. It
        // runs before the cost question (and again inside start): nothing is written or sent.
        yield* client.provider.prepare({ input, callbackUrl, options: providerOptions })
        yield* approveCost(input as unknown as Cost.Priceable, flags.yes)
        const handle = yield* client
          .start(input, {
            idempotencyKey: Option.getOrUndefined(flags.idempotencyKey),
            callbackUrl,
            providerOptions
          })
          .pipe(Effect.onInterrupt(() => printErr(submitInterrupted)))
        if (flags.noWait) {
          if (!flags.json) yield* printErr(`Submitted; run "reelkit wait ${handle.taskKey}" to wait for it.`)
          return yield* printTasks([yield* client.lookup(handle.taskKey)], flags.json ? "object" : false)
        }
        yield* followTask(handle.taskKey, waitOptions, flags.json)
      })
    )
  })

/** `reelkit estimate`: the cost from the price table; nothing is opened or sent. */
export const estimate = (flags: EstimateFlags): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const settings = yield* Playground.settings
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
export const status = (flags: { readonly task: string; readonly json: boolean }): Effect.Effect<void, unknown> =>
  withPlayground(
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      let record = yield* client.refresh(flags.task)
      // The provider just reported success: store the outputs now rather than leave them to a later wait.
      if (record.state === "succeeded") record = yield* client.wait(record.taskKey)
      yield* printTasks([record], flags.json ? "object" : false)
      if (record.state === "ambiguous") yield* printErr(ambiguousAdvice(record))
      const code = exitCodeOfState(record.state, record.failCode)
      if (code !== ExitCode.success) return yield* new ExitWith({ code })
    })
  )

/** `reelkit wait`. */
export const wait = (
  flags: PollFlags & { readonly task: string; readonly json: boolean }
): Effect.Effect<void, unknown> => withPlayground(followTask(flags.task, waitOptionsOf(flags), flags.json))

/** What to do about an ambiguous row, in one line. */
export const ambiguousAdvice = (record: TaskLedger.TaskRecord): string => {
  const input = (record.input ?? {}) as { readonly prompt?: unknown; readonly mode?: unknown }
  const prompt = typeof input.prompt === "string" ? ` with prompt "${input.prompt.slice(0, 60)}"` : ""
  return `${record.taskKey} is ambiguous: its submit may or may not have reached apixo, so it was not sent again. Check apixo's dashboard for a ${String(input.mode ?? "")} task${prompt} created around ${new Date(record.createdAt).toISOString()}; if there is none, run "reelkit resubmit ${record.taskKey}".`
}

/** `reelkit reconcile`: resumes every unfinished task; exits 1 while any ambiguous row remains. */
export const reconcile = (flags: PollFlags & { readonly json: boolean }): Effect.Effect<void, unknown> =>
  withPlayground(
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const ledger = yield* TaskLedger.TaskLedger
      if (!flags.json) yield* printErr("Resuming every unfinished task in the ledger...")
      const summary = yield* client.reconcile(waitOptionsOf(flags))
      // Rows left ambiguous by earlier runs too: each needs the user's decision until resubmitted.
      const ambiguous = yield* ledger.list({ states: ["ambiguous"] })
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
        yield* printErr(ambiguousAdvice(record))
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

/** `reelkit resubmit`: sends an ambiguous or refused task's submit again, on the user's word. */
export const resubmit = (
  flags: PollFlags & { readonly task: string; readonly json: boolean; readonly noWait: boolean; readonly yes: boolean }
): Effect.Effect<void, unknown> =>
  withPlayground(
    Effect.gen(function* () {
      const client = yield* TaskClient.TaskClient
      const record = yield* client.lookup(flags.task)
      yield* approveCost(record.input as Cost.Priceable, flags.yes)
      const handle = yield* client.resubmit(record.taskKey)
      if (flags.noWait) {
        if (!flags.json) yield* printErr(`Submitted again; run "reelkit wait ${handle.taskKey}" to wait for it.`)
        return yield* printTasks([yield* client.lookup(handle.taskKey)], flags.json ? "object" : false)
      }
      yield* followTask(handle.taskKey, waitOptionsOf(flags), flags.json)
    })
  )

/** `reelkit serve`. */
export const serve = (flags: { readonly port: number; readonly host: string }): Effect.Effect<void, unknown> =>
  Effect.flatMap(
    Effect.promise(() => import("./Server.js")),
    (Server) =>
      withPlayground(
        Server.serve({
          port: flags.port,
          host: flags.host,
          onListening: (url) => process.stderr.write(`reelkit: serving ${url}\n`)
        }),
        { useCallbacks: true, probe: false }
      )
  )
