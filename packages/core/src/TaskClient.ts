/**
 * The client users call: `start`, `wait`, `watch`, `generate`, `resume`, `reconcile`. It owns
 * everything about time and durability for every provider: the ledger row is written before the
 * paid POST, a submit is re-sent only when the failure proves no task was created, polls share the
 * account's budget through one scheduler, and outputs are stored before their URLs expire.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AccountLimits } from "./AccountLimits.js"
import { ArtifactStore } from "./ArtifactStore.js"
import * as CallbackUrls from "./CallbackUrls.js"
import * as ResultStorage from "./ResultStorage.js"
import * as Schedules from "./Schedules.js"
import {
  DeadlineExceeded,
  IdempotencyConflict,
  type InvalidInput,
  isSafeToResubmit,
  type LedgerError,
  type ProviderError,
  RequestRejected,
  StaleTransition,
  SubmitOutcomeUnknown,
  type TaskError,
  TaskFailed,
  UnknownTask
} from "./TaskError.js"
import { TaskEvent } from "./TaskEvent.js"
import { TaskHandle } from "./TaskHandle.js"
import { inFlightStates, sameInput, TaskLedger, type TaskRecord } from "./TaskLedger.js"
import { type PollPlan, TaskProvider } from "./TaskProvider.js"
import type { TaskStatus } from "./TaskStatus.js"
import * as PollScheduler from "./internal/pollScheduler.js"
import * as Telemetry from "./internal/telemetry.js"

/** Client-wide settings. Every field has a safe default. */
export interface Options {
  /** Overrides of the provider's poll plan for every task of this client. */
  readonly pollPlan?: Partial<PollPlan> | undefined
  /** Retry of transient failures (default `Schedules.retry`). */
  readonly retry?: Schedules.RetrySchedule | undefined
  /** The longest `Retry-After` honoured (default 2 minutes). */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Status requests in flight at once (default 8). The request budget still applies. */
  readonly pollConcurrency?: number | undefined
  /** This process's name in ledger leases (default a random id). */
  readonly owner?: string | undefined
  /**
   * How long a `reconcile` claim on a task holds without news (default 2 minutes). Every poll
   * renews it, so a live process keeps its tasks and a dead one's are free again soon.
   */
  readonly leaseMillis?: number | undefined
  /**
   * How long this process's claim on a task it is submitting holds (default 5 minutes, longer
   * than the longest honoured Retry-After plus a request timeout). It is renewed before every
   * attempt and cleared once the outcome is recorded, so another process's `reconcile` never
   * takes a live submit for a dead one; after a crash, the task is reconciled once it expires.
   */
  readonly submitLeaseMillis?: number | undefined
  /**
   * Poll interval of tasks submitted in callback mode (default 60 s, or the plan's interval when
   * longer): polling stays on as a slow fallback because callbacks can be lost.
   */
  readonly callbackFallbackInterval?: Duration.DurationInput | undefined
  /** How outputs are stored when an `ArtifactStore` is provided. */
  readonly results?: ResultStorage.Options | undefined
}

/** Options of one `start`. */
export interface StartOptions {
  /** A second start with the same key returns the first task and sends nothing. */
  readonly idempotencyKey?: string | undefined
  /** Our key for the task (default a new random key). Letters, digits, `.`, `-`, `_`. */
  readonly taskKey?: string | undefined
  /**
   * Submit in callback mode with this URL, as given. Without it, and with a `CallbackConfig` in
   * context, each task gets its own verified callback URL. Polling stays on as a slow fallback.
   */
  readonly callbackUrl?: string | undefined
  /** Transport options passed to the provider untouched (e.g. apixo's routing `provider`). */
  readonly providerOptions?: Readonly<Record<string, unknown>> | undefined
}

/** Per-call overrides of the poll plan. */
export interface WaitOptions {
  readonly firstPollAfter?: Duration.DurationInput | undefined
  readonly pollInterval?: Duration.DurationInput | undefined
  /** How long to wait before `DeadlineExceeded` (the task stays resumable). */
  readonly deadline?: Duration.DurationInput | undefined
}

/** A task: its handle, or its task key or remote task id. */
export type TaskReference = TaskHandle | string

/** Errors of `start`. */
export type StartError =
  | InvalidInput
  | IdempotencyConflict
  | SubmitOutcomeUnknown
  | ProviderError
  | LedgerError
  | StaleTransition
  | UnknownTask

/** Errors of `wait`, `watch` and `resume`. */
export type WaitError =
  | TaskFailed
  | DeadlineExceeded
  | SubmitOutcomeUnknown
  | ProviderError
  | LedgerError
  | StaleTransition
  | UnknownTask
  | ResultStorage.ResultStorageError

/** What `reconcile` did. */
export interface ReconcileSummary {
  /** Unfinished tasks this process claimed. */
  readonly claimed: number
  readonly completed: ReadonlyArray<string>
  readonly failed: ReadonlyArray<string>
  /** Tasks whose submit was in flight when their process stopped: never re-sent, the caller decides. */
  readonly ambiguous: ReadonlyArray<string>
  /**
   * Tasks that are still running or could not be finished now: `error` is the typed error's tag
   * (`DeadlineExceeded` when the task is still running and resumable, `SubmitInProgress` when a
   * live process is still submitting it), `reason` its message.
   */
  readonly unfinished: ReadonlyArray<{ readonly taskKey: string; readonly error: string; readonly reason: string }>
}

/** The client service. */
export interface Service {
  readonly provider: TaskProvider["Type"]
  /** Checks the input, records the task, sends the paid submit once, and returns a resumable handle. */
  readonly start: (input: unknown, options?: StartOptions) => Effect.Effect<TaskHandle, StartError>
  /** Waits for a task to finish; with a store, its outputs are stored first. Fails with `TaskFailed`. */
  readonly wait: (reference: TaskReference, options?: WaitOptions) => Effect.Effect<TaskRecord, WaitError>
  /** The task's events as they happen, ending with `Succeeded` or `Failed`. */
  readonly watch: (reference: TaskReference, options?: WaitOptions) => Stream.Stream<TaskEvent, WaitError>
  /** `start` then `wait`. */
  readonly generate: (
    input: unknown,
    options?: StartOptions & WaitOptions
  ) => Effect.Effect<TaskRecord, StartError | WaitError>
  /** Waits for a task started elsewhere, recording it in this ledger first if it is not there. */
  readonly resume: (handle: TaskHandle, options?: WaitOptions) => Effect.Effect<TaskRecord, WaitError>
  /** Resumes every unfinished task in the ledger (after a restart) and waits for them. */
  readonly reconcile: (options?: WaitOptions) => Effect.Effect<ReconcileSummary, LedgerError>
  /**
   * Sends an `ambiguous` (or `rejected`) task's submit again, because the caller decided to: an
   * ambiguous task may already exist and be billed, so this is never done automatically.
   */
  readonly resubmit: (
    reference: TaskReference,
    options?: Pick<StartOptions, "providerOptions">
  ) => Effect.Effect<TaskHandle, StartError>
  /** Reads a task's ledger row. */
  readonly lookup: (reference: TaskReference) => Effect.Effect<TaskRecord, UnknownTask | LedgerError>
  /**
   * Asks the provider for the task's status now and applies it (what a verified callback does).
   * Returns the updated row; for a task this client is already polling, the poll is moved to now
   * and the row is returned as it stands, before that poll's answer is applied.
   */
  readonly refresh: (reference: TaskReference) => Effect.Effect<TaskRecord, WaitError>
}

/** The client tag. */
export class TaskClient extends Context.Tag("@reelkit/core/TaskClient")<TaskClient, Service>() {}

const newTaskKey = Effect.gen(function* () {
  const now = yield* Clock.currentTimeMillis
  let suffix = ""
  for (let index = 0; index < 12; index++) suffix += (yield* Random.nextIntBetween(0, 36)).toString(36)
  return `tk_${now.toString(36)}${suffix}`
})

/** Builds a client from the provider, ledger and account limits in context. */
export const make = (
  options: Options = {}
): Effect.Effect<Service, never, TaskProvider | TaskLedger | AccountLimits | Scope.Scope> =>
  Effect.gen(function* () {
    const provider = yield* TaskProvider
    const ledger = yield* TaskLedger
    const limits = yield* AccountLimits
    const store = yield* Effect.serviceOption(ArtifactStore)
    const httpClient = yield* Effect.serviceOption(HttpClient.HttpClient)
    const callbackConfig = yield* Effect.serviceOption(CallbackUrls.CallbackConfig)
    const owner = options.owner ?? `client-${(yield* newTaskKey).slice(3)}`
    const retry = Schedules.honourRetryAfter(options.retry ?? Schedules.retry, options.maxRetryAfter)
    const metrics = Telemetry.metricsFor(provider)
    const background = yield* FiberSet.make<void>()
    const spanAttributes = { "reelkit.provider": provider.providerId, "reelkit.model": provider.modelId }
    // Submits in flight in this process, so a concurrent start with the same idempotency key waits for the first.
    const submitsInFlight = new Map<string, Deferred.Deferred<TaskHandle, StartError>>()

    const callbackFallbackInterval = Duration.decode(options.callbackFallbackInterval ?? Duration.seconds(60))
    const planFor = (overrides: WaitOptions = {}, record?: TaskRecord): PollPlan => {
      const interval = Duration.decode(
        overrides.pollInterval ?? options.pollPlan?.interval ?? provider.hints.pollPlan.interval
      )
      return {
        firstPollAfter: Duration.decode(
          overrides.firstPollAfter ?? options.pollPlan?.firstPollAfter ?? provider.hints.pollPlan.firstPollAfter
        ),
        // A task in callback mode is told when it is done; polling is only the fallback, unless the caller asks otherwise.
        interval:
          record?.callbackUrl !== undefined && overrides.pollInterval === undefined
            ? Duration.max(interval, callbackFallbackInterval)
            : interval,
        deadline: Duration.decode(overrides.deadline ?? options.pollPlan?.deadline ?? provider.hints.pollPlan.deadline)
      }
    }
    const leaseMillis = options.leaseMillis ?? 120_000
    const submitLeaseMillis = options.submitLeaseMillis ?? 300_000
    const noLease = { leaseOwner: null, leaseExpiresAt: null } as const
    const sendingMark = "#sending"
    /**
     * Claims (or renews the claim on) a row this process is submitting. The claim also records the
     * phase: `queued` (waiting for the budget or a retry; no request of it is out) or `sending` (a
     * POST may be on the wire). After a crash, only a row caught `sending` can have created a task.
     */
    const holdSubmit = (taskKey: string, phase: "queued" | "sending") =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        ledger.transition(taskKey, ["submitting"], {
          leaseOwner: phase === "sending" ? `${owner}${sendingMark}` : owner,
          leaseExpiresAt: now + submitLeaseMillis
        })
      )
    // Tasks this process claimed in `reconcile`: their leases are renewed with every status applied.
    const leased = new Set<string>()

    const handleOf = (record: TaskRecord) =>
      new TaskHandle({
        providerId: record.providerId,
        modelId: record.modelId,
        taskKey: record.taskKey,
        remoteTaskId: record.remoteTaskId!,
        submittedAt: record.submittedAt ?? record.createdAt
      })

    // Outputs being stored right now, by task: a second request to store them joins the first
    // instead of downloading the same files again into the same keys.
    const storing = new Map<string, Deferred.Deferred<TaskRecord, WaitError>>()
    const storeOutputs = (record: TaskRecord): Effect.Effect<TaskRecord, WaitError> =>
      Effect.suspend(() => {
        const running = storing.get(record.taskKey)
        if (running !== undefined) return Deferred.await(running)
        const done = Deferred.unsafeMake<TaskRecord, WaitError>(FiberId.none)
        storing.set(record.taskKey, done)
        return downloadOutputs(record).pipe(
          Effect.exit,
          Effect.tap((exit) => Deferred.done(done, exit)),
          Effect.ensuring(Effect.sync(() => storing.delete(record.taskKey))),
          Effect.flatten
        )
      })
    const downloadOutputs = (record: TaskRecord): Effect.Effect<TaskRecord, WaitError> =>
      Effect.gen(function* () {
        const artifacts =
          Option.isSome(store) && Option.isSome(httpClient)
            ? yield* ResultStorage.storeResults(record, options.results).pipe(
                Effect.provideService(ArtifactStore, store.value),
                Effect.provideService(HttpClient.HttpClient, httpClient.value)
              )
            : []
        return yield* ledger.transition(record.taskKey, ["succeeded"], { state: "completed", artifacts }).pipe(
          Effect.catchTag("StaleTransition", () =>
            // Another fiber or process completed it first; its row is the truth.
            Effect.flatMap(ledger.get(record.taskKey), (row) =>
              Option.isSome(row)
                ? Effect.succeed(row.value)
                : Effect.fail(new UnknownTask({ reference: record.taskKey }))
            )
          )
        )
      })

    const finalEventOf = (record: TaskRecord, at: number): TaskEvent | undefined =>
      record.state === "completed"
        ? TaskEvent.Succeeded({
            taskKey: record.taskKey,
            at,
            resultUrls: record.resultUrls,
            artifacts: record.artifacts,
            record
          })
        : record.state === "failed"
          ? TaskEvent.Failed({
              taskKey: record.taskKey,
              at,
              code: record.failCode ?? "UNKNOWN",
              message: record.failMessage ?? "",
              record
            })
          : undefined

    const notify = (listeners: ReadonlySet<PollScheduler.Listener>, event: TaskEvent) => {
      for (const listener of listeners) listener.onEvent(event)
    }
    const notifyError = (listeners: ReadonlySet<PollScheduler.Listener>, error: TaskError) => {
      for (const listener of listeners) listener.onError(error)
    }

    /** Finishes a succeeded row: stores outputs, then tells the listeners. */
    const finishSucceeded = (record: TaskRecord, listeners: ReadonlySet<PollScheduler.Listener>) =>
      storeOutputs(record).pipe(
        Effect.flatMap((completed) =>
          Effect.map(Clock.currentTimeMillis, (now) => notify(listeners, finalEventOf(completed, now)!))
        ),
        Effect.catchAll((error) =>
          Effect.sync(() => notifyError(listeners, error as TaskError)).pipe(
            Effect.zipRight(Metric.increment(metrics.failures))
          )
        )
      )

    // What a status means for the ledger and the listeners. Returns true when the task is finished.
    const applyStatus = (
      taskKey: string,
      status: TaskStatus,
      nextPollAt: number | undefined,
      listeners: ReadonlySet<PollScheduler.Listener>,
      previous?: TaskStatus["_tag"] | undefined
    ): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const inFlightEvent =
          status._tag === "Pending"
            ? TaskEvent.Pending({ taskKey, at: now, nextPollAt })
            : status._tag === "Processing"
              ? TaskEvent.Processing({ taskKey, at: now, progress: status.progress, nextPollAt })
              : undefined
        // The same in-flight state as last time: nothing to record (unless a claim's lease needs renewing).
        if (inFlightEvent !== undefined && previous === status._tag && !leased.has(taskKey)) {
          notify(listeners, inFlightEvent)
          return false
        }
        const patch =
          status._tag === "Pending"
            ? { state: "pending" as const }
            : status._tag === "Processing"
              ? { state: "processing" as const }
              : status._tag === "Succeeded"
                ? {
                    state: "succeeded" as const,
                    resultUrls: status.outputs.map((output) => output.url),
                    completedAt: status.remoteCompletedAt ?? now,
                    resultExpiresAt: now + Duration.toMillis(provider.hints.resultRetention)
                  }
                : {
                    state: "failed" as const,
                    failCode: status.code,
                    failMessage: status.message,
                    completedAt: status.remoteCompletedAt ?? now
                  }
        const terminal = status._tag === "Succeeded" || status._tag === "Failed"
        const lease = !leased.has(taskKey)
          ? {}
          : terminal
            ? noLease
            : { leaseOwner: owner, leaseExpiresAt: now + leaseMillis }
        if (terminal) leased.delete(taskKey)
        const updated = yield* Effect.either(ledger.transition(taskKey, inFlightStates, { ...patch, ...lease }))
        if (Either.isLeft(updated)) {
          if (updated.left._tag !== "StaleTransition") {
            notifyError(listeners, updated.left)
            return true
          }
          // The row moved on without us (another process, or a callback): follow the ledger.
          const row = yield* Effect.either(ledger.get(taskKey))
          if (Either.isLeft(row) || Option.isNone(row.right)) {
            notifyError(listeners, Either.isLeft(row) ? row.left : new UnknownTask({ reference: taskKey }))
            return true
          }
          const current = row.right.value
          // Finished elsewhere: this process's slot for it is free again all the same.
          if (current.state !== "pending" && current.state !== "processing" && current.state !== "submitted") {
            yield* limits.releaseTaskSlot(taskKey)
          }
          if (current.state === "succeeded") {
            yield* FiberSet.run(background, finishSucceeded(current, listeners))
            return true
          }
          const final = finalEventOf(current, now)
          if (final !== undefined) {
            notify(listeners, final)
            return true
          }
          if (current.state === "ambiguous" || current.state === "rejected") {
            notifyError(listeners, new UnknownTask({ reference: taskKey }))
            return true
          }
          return false
        }
        const record = updated.right
        if (inFlightEvent !== undefined) {
          notify(listeners, inFlightEvent)
          return false
        }
        // Terminal: the slot is free, and the outcome is recorded for everyone who waits.
        yield* limits.releaseTaskSlot(taskKey)
        if (record.submittedAt !== undefined) {
          yield* Metric.update(metrics.completion, (now - record.submittedAt) / 1000)
        }
        if (status._tag === "Failed") {
          yield* Metric.increment(metrics.failures)
          notify(listeners, finalEventOf(record, now)!)
        } else {
          yield* FiberSet.run(background, finishSucceeded(record, listeners))
        }
        return true
      })

    const scheduler = yield* PollScheduler.make({
      provider,
      limits,
      retry,
      pollConcurrency: options.pollConcurrency ?? 8,
      handler: { apply: applyStatus }
    })

    const lookup: Service["lookup"] = (reference) =>
      Effect.gen(function* () {
        const key = typeof reference === "string" ? reference : reference.taskKey
        const byKey = yield* ledger.get(key)
        if (Option.isSome(byKey)) return byKey.value
        if (typeof reference === "string") {
          const byRemoteId = yield* ledger.findByRemoteId(reference)
          if (Option.isSome(byRemoteId)) return byRemoteId.value
        }
        return yield* new UnknownTask({ reference: key })
      })

    // ---- submit ---------------------------------------------------------------------------------

    const markRejected = (taskKey: string, error: { readonly _tag: string; readonly message: string }) =>
      ledger
        .transition(taskKey, ["submitting"], {
          state: "rejected",
          failCode: error._tag,
          failMessage: error.message,
          ...noLease
        })
        .pipe(Effect.ignore, Effect.ensuring(limits.releaseTaskSlot(taskKey)))

    const submitOnce = (record: TaskRecord, options: StartOptions, attempt: number) =>
      Effect.gen(function* () {
        yield* Metric.increment(metrics.submits)
        const outcome = yield* Effect.either(
          provider
            .submit({
              taskKey: record.taskKey,
              input: record.input,
              callbackUrl: record.callbackUrl,
              options: options.providerOptions
            })
            .pipe(
              Effect.withSpan("reelkit.submit", {
                captureStackTrace: false,
                attributes: { ...spanAttributes, "reelkit.task_key": record.taskKey, "reelkit.attempt": attempt }
              })
            )
        )
        const now = yield* Clock.currentTimeMillis
        if (Either.isRight(outcome)) {
          // Recorded before anything else happens, so a crash from here on leaves a resumable task.
          // From `ambiguous` too: should another process have judged this submit lost meanwhile,
          // the task it created must not be forgotten.
          const submitted = yield* ledger.transition(record.taskKey, ["submitting", "ambiguous"], {
            state: "submitted",
            remoteTaskId: outcome.right.remoteTaskId,
            submittedAt: now,
            ...noLease
          })
          return Either.right(submitted)
        }
        return Either.left(outcome.left)
      })

    const submitWithRetry = (record: TaskRecord, startOptions: StartOptions): Effect.Effect<TaskHandle, StartError> =>
      Effect.gen(function* () {
        const stepper = Schedules.stepper(retry)
        for (let attempt = 1; ; attempt++) {
          yield* limits.takeRequest
          yield* holdSubmit(record.taskKey, "sending")
          // One attempt and its record are one step: an interruption cannot fall between the POST and the ledger.
          const outcome = yield* Effect.uninterruptible(submitOnce(record, startOptions, attempt))
          if (Either.isRight(outcome)) return handleOf(outcome.right)
          const error = outcome.left
          if (isSafeToResubmit(error)) {
            if (error._tag === "RateLimited") {
              yield* limits.backOff(Duration.millis(error.retryAfterMillis ?? 0))
            }
            const delay = yield* stepper.next(error, yield* Clock.currentTimeMillis)
            if (Option.isSome(delay)) {
              yield* Metric.increment(metrics.retries)
              // The attempt proved nothing was created: while waiting, nothing of this task is out.
              yield* holdSubmit(record.taskKey, "queued")
              yield* Effect.sleep(Duration.millis(delay.value))
              continue
            }
          }
          yield* Metric.increment(metrics.failures)
          if (error.provesNotCreated) {
            yield* markRejected(record.taskKey, error)
            return yield* Effect.fail(error)
          }
          // The request reached the server and we cannot tell what it did: never send it again by ourselves.
          const unknown = new SubmitOutcomeUnknown({ taskKey: record.taskKey, reason: error.message })
          yield* ledger
            .transition(record.taskKey, ["submitting"], {
              state: "ambiguous",
              failCode: "SubmitOutcomeUnknown",
              failMessage: error.message,
              ...noLease
            })
            .pipe(Effect.ignore)
          yield* limits.releaseTaskSlot(record.taskKey)
          return yield* Effect.fail(unknown)
        }
      }).pipe(
        // Interrupted while waiting to (re)send: every attempt so far proved nothing was created.
        Effect.onInterrupt(() =>
          markRejected(record.taskKey, {
            _tag: "Interrupted",
            message: "The start was interrupted before any task was created"
          })
        )
      )

    /** Sends the submit of a freshly created (or re-opened) row, letting concurrent starts of the same key wait for it. */
    const submitRecorded = (record: TaskRecord, startOptions: StartOptions) =>
      Effect.gen(function* () {
        const done = yield* Deferred.make<TaskHandle, StartError>()
        submitsInFlight.set(record.taskKey, done)
        return yield* submitWithRetry(record, startOptions).pipe(
          Effect.exit,
          Effect.tap((exit) => Deferred.done(done, exit)),
          Effect.ensuring(Effect.sync(() => submitsInFlight.delete(record.taskKey))),
          Effect.flatten
        )
      })

    /** A start found an existing task for its idempotency key. */
    const fromExisting = (record: TaskRecord, startOptions: StartOptions): Effect.Effect<TaskHandle, StartError> => {
      switch (record.state) {
        case "submitting": {
          const inFlight = submitsInFlight.get(record.taskKey)
          return inFlight !== undefined
            ? Deferred.await(inFlight)
            : Effect.fail(
                new SubmitOutcomeUnknown({
                  taskKey: record.taskKey,
                  reason: "another process is submitting this task, or stopped while it was"
                })
              )
        }
        case "ambiguous":
          return Effect.fail(new SubmitOutcomeUnknown({ taskKey: record.taskKey, reason: record.failMessage ?? "" }))
        case "rejected":
          // Nothing was created the first time, so sending it again is safe (e.g. after a top-up).
          return Effect.gen(function* () {
            yield* limits.acquireTaskSlot(record.taskKey)
            const reopened = yield* ledger
              .transition(record.taskKey, ["rejected"], {
                state: "submitting",
                leaseOwner: owner,
                leaseExpiresAt: (yield* Clock.currentTimeMillis) + submitLeaseMillis
              })
              .pipe(Effect.tapError(() => limits.releaseTaskSlot(record.taskKey)))
            return yield* submitRecorded(reopened, startOptions)
          })
        default:
          return Effect.succeed(handleOf(record))
      }
    }

    const start: Service["start"] = (input, startOptions = {}) =>
      Effect.gen(function* () {
        const prepared = yield* provider.prepare(input)
        if (startOptions.idempotencyKey !== undefined) {
          const existing = yield* ledger.findByIdempotencyKey(startOptions.idempotencyKey)
          if (Option.isSome(existing)) {
            if (!sameInput(existing.value.input, prepared.wire)) {
              return yield* new IdempotencyConflict({
                idempotencyKey: startOptions.idempotencyKey,
                taskKey: existing.value.taskKey
              })
            }
            return yield* fromExisting(existing.value, startOptions)
          }
        }
        const taskKey = startOptions.taskKey ?? (yield* newTaskKey)
        yield* limits.acquireTaskSlot(taskKey)
        const created = yield* ledger
          .create({
            taskKey,
            providerId: provider.providerId,
            modelId: provider.modelId,
            idempotencyKey: startOptions.idempotencyKey,
            input: prepared.wire,
            callbackUrl:
              startOptions.callbackUrl ??
              Option.getOrUndefined(Option.map(callbackConfig, (config) => CallbackUrls.urlFor(config, taskKey))),
            billableSeconds: prepared.billableSeconds
          })
          .pipe(Effect.tapError(() => limits.releaseTaskSlot(taskKey)))
        if (created._tag === "Existing") {
          yield* limits.releaseTaskSlot(taskKey)
          return yield* fromExisting(created.record, startOptions)
        }
        return yield* submitRecorded(yield* holdSubmit(taskKey, "queued"), startOptions)
      }).pipe(Effect.withSpan("reelkit.start", { attributes: spanAttributes }))

    // ---- wait -----------------------------------------------------------------------------------

    /** Settles rows that need no polling; `undefined` means the task is in flight. */
    const settled = (record: TaskRecord): Effect.Effect<TaskRecord, WaitError> | undefined => {
      const outcome = settledOutcome(record)
      // However it ended (here or in another process), a finished task holds no slot of ours.
      // A row still `submitting` may be this process's own submit: its slot stays.
      return outcome === undefined || record.state === "submitting"
        ? outcome
        : Effect.zipRight(limits.releaseTaskSlot(record.taskKey), outcome)
    }
    const settledOutcome = (record: TaskRecord): Effect.Effect<TaskRecord, WaitError> | undefined => {
      switch (record.state) {
        case "completed":
          return Effect.succeed(record)
        case "failed":
          return Effect.fail(
            new TaskFailed({
              taskKey: record.taskKey,
              code: record.failCode ?? "UNKNOWN",
              failMessage: record.failMessage ?? ""
            })
          )
        case "rejected":
          return Effect.fail(
            new RequestRejected({ status: 0, message: record.failMessage ?? "The submit was rejected" })
          )
        case "ambiguous":
        case "submitting":
          return Effect.fail(
            new SubmitOutcomeUnknown({
              taskKey: record.taskKey,
              reason: record.failMessage ?? "the submit did not finish"
            })
          )
        case "succeeded":
          return storeOutputs(record)
        default:
          return undefined
      }
    }

    const wait: Service["wait"] = (reference, waitOptions = {}) =>
      Effect.gen(function* () {
        let record = yield* lookup(reference)
        if (record.state === "submitting") {
          const inFlight = submitsInFlight.get(record.taskKey)
          if (inFlight !== undefined) {
            yield* Deferred.await(inFlight).pipe(Effect.ignore)
            record = yield* lookup(record.taskKey)
          }
        }
        const done = settled(record)
        if (done !== undefined) return yield* done
        const plan = planFor(waitOptions, record)
        yield* limits.acquireTaskSlot(record.taskKey)
        const outcome = yield* Deferred.make<TaskRecord, WaitError>()
        const started = yield* Clock.currentTimeMillis
        return yield* Effect.acquireUseRelease(
          scheduler.track(record, plan, {
            onEvent: (event) => {
              if (event._tag === "Succeeded") Deferred.unsafeDone(outcome, Effect.succeed(event.record))
              else if (event._tag === "Failed") {
                Deferred.unsafeDone(
                  outcome,
                  Effect.fail(new TaskFailed({ taskKey: event.taskKey, code: event.code, failMessage: event.message }))
                )
              }
            },
            onError: (error) => Deferred.unsafeDone(outcome, Effect.fail(error as WaitError))
          }),
          () =>
            Deferred.await(outcome).pipe(
              Effect.timeoutFail({
                duration: plan.deadline,
                onTimeout: () => new DeadlineExceeded({ taskKey: record.taskKey, waitedMillis: 0 })
              }),
              Effect.catchTag("DeadlineExceeded", (error) =>
                Effect.flatMap(Clock.currentTimeMillis, (now) =>
                  Effect.fail(new DeadlineExceeded({ taskKey: error.taskKey, waitedMillis: now - started }))
                )
              )
            ),
          (untrack) => untrack()
        )
      }).pipe(
        Effect.withSpan("reelkit.wait", {
          attributes: {
            ...spanAttributes,
            "reelkit.task_key": typeof reference === "string" ? reference : reference.taskKey
          }
        })
      )

    const watch: Service["watch"] = (reference, waitOptions = {}) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const record = yield* lookup(reference)
          const now = yield* Clock.currentTimeMillis
          const submitted =
            record.remoteTaskId === undefined
              ? Stream.empty
              : Stream.make(
                  TaskEvent.Submitted({
                    taskKey: record.taskKey,
                    remoteTaskId: record.remoteTaskId,
                    at: record.submittedAt ?? now
                  })
                )
          const done = settled(record)
          if (done !== undefined) {
            return Stream.concat(
              submitted,
              Stream.fromEffect(Effect.map(done, (settledRecord) => finalEventOf(settledRecord, now)!))
            )
          }
          yield* limits.acquireTaskSlot(record.taskKey)
          const events = Stream.asyncScoped<TaskEvent, WaitError>((emit) =>
            Effect.acquireRelease(
              scheduler.track(record, planFor(waitOptions, record), {
                onEvent: (event) => {
                  void emit.single(event)
                  if (event._tag === "Succeeded" || event._tag === "Failed") void emit.end()
                },
                onError: (error) => void emit.fail(error as WaitError)
              }),
              (untrack) => untrack()
            )
          )
          return Stream.concat(submitted, events)
        })
      )

    const resubmit: Service["resubmit"] = (reference, resubmitOptions = {}) =>
      Effect.gen(function* () {
        const record = yield* lookup(reference)
        if (record.state !== "ambiguous" && record.state !== "rejected") {
          if (record.remoteTaskId !== undefined) return handleOf(record)
          return yield* new StaleTransition({
            taskKey: record.taskKey,
            expected: ["ambiguous", "rejected"],
            actual: record.state
          })
        }
        yield* limits.acquireTaskSlot(record.taskKey)
        const reopened = yield* ledger
          .transition(record.taskKey, ["ambiguous", "rejected"], {
            state: "submitting",
            leaseOwner: owner,
            leaseExpiresAt: (yield* Clock.currentTimeMillis) + submitLeaseMillis
          })
          .pipe(Effect.tapError(() => limits.releaseTaskSlot(record.taskKey)))
        return yield* submitRecorded(reopened, resubmitOptions)
      }).pipe(Effect.withSpan("reelkit.resubmit", { attributes: spanAttributes }))

    const generate: Service["generate"] = (input, generateOptions = {}) =>
      Effect.flatMap(start(input, generateOptions), (handle) => wait(handle, generateOptions))

    const resume: Service["resume"] = (handle, waitOptions) =>
      Effect.gen(function* () {
        const existing = yield* ledger.get(handle.taskKey)
        if (Option.isNone(existing)) {
          yield* ledger
            .create({
              taskKey: handle.taskKey,
              providerId: handle.providerId,
              modelId: handle.modelId,
              input: null
            })
            .pipe(
              // No idempotency key is given, so a conflict cannot happen.
              Effect.catchTag("IdempotencyConflict", (error) => Effect.die(error))
            )
          yield* ledger.transition(handle.taskKey, ["submitting"], {
            state: "submitted",
            remoteTaskId: handle.remoteTaskId,
            submittedAt: handle.submittedAt
          })
        }
        return yield* wait(handle.taskKey, waitOptions)
      })

    const refresh: Service["refresh"] = (reference) =>
      Effect.gen(function* () {
        const record = yield* lookup(reference)
        if (!inFlightStates.includes(record.state) || record.remoteTaskId === undefined) return record
        if (yield* scheduler.pollNow(record.taskKey)) return record
        yield* limits.takeRequest
        yield* Metric.increment(metrics.polls)
        const status = yield* provider.status(record.remoteTaskId).pipe(
          Effect.withSpan("reelkit.status", {
            captureStackTrace: false,
            attributes: { ...spanAttributes, "reelkit.task_key": record.taskKey }
          })
        )
        yield* applyStatus(record.taskKey, status, undefined, new Set())
        return yield* lookup(record.taskKey)
      })

    const reconcile: Service["reconcile"] = (waitOptions = {}) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const submittingRows = yield* ledger.list({
          states: ["submitting"],
          providerId: provider.providerId,
          modelId: provider.modelId
        })
        // Whether each submit was caught with a request possibly out (read before claiming rewrites the lease).
        const maybeSent = new Set(
          submittingRows
            .filter((record) => record.leaseOwner === undefined || record.leaseOwner.endsWith(sendingMark))
            .map((record) => record.taskKey)
        )
        // Submits another live process holds: not ours to judge; reported, left alone.
        const submittingElsewhere = submittingRows.filter(
          (record) =>
            record.leaseOwner !== undefined && record.leaseOwner !== owner && (record.leaseExpiresAt ?? 0) > now
        )
        const claimed = yield* ledger.claimUnfinished({
          owner,
          leaseMillis,
          providerId: provider.providerId,
          modelId: provider.modelId
        })
        const completed: Array<string> = []
        const failed: Array<string> = []
        const ambiguous: Array<string> = []
        const unfinished: Array<{ taskKey: string; error: string; reason: string }> = submittingElsewhere.map(
          (record) => ({
            taskKey: record.taskKey,
            error: "SubmitInProgress",
            reason: `Another process is submitting task ${record.taskKey}; it is left to that process`
          })
        )
        let remaining = claimed.length
        const allDone = yield* Deferred.make<void>()
        const settle = (push: () => void) => {
          push()
          remaining -= 1
          if (remaining === 0) Deferred.unsafeDone(allDone, Effect.void)
        }
        const listenerFor = (taskKey: string): PollScheduler.Listener => ({
          onEvent: (event) => {
            if (event._tag === "Succeeded") settle(() => completed.push(taskKey))
            else if (event._tag === "Failed") settle(() => failed.push(taskKey))
          },
          onError: (error) => settle(() => unfinished.push({ taskKey, error: error._tag, reason: error.message }))
        })
        for (const record of claimed) leased.add(record.taskKey)
        for (const record of claimed) {
          if (record.state === "submitting" && submitsInFlight.has(record.taskKey)) {
            // This very process is submitting it: its own start records the outcome.
            settle(() =>
              unfinished.push({
                taskKey: record.taskKey,
                error: "SubmitInProgress",
                reason: `Task ${record.taskKey} is being submitted by this process`
              })
            )
          } else if (record.state === "submitting" && !maybeSent.has(record.taskKey)) {
            // The process stopped while this submit was still queued: no request of it ever went
            // out, so sending it now is its first and only paid submit.
            yield* limits.acquireTaskSlot(record.taskKey)
            yield* FiberSet.run(
              background,
              submitRecorded(record, {}).pipe(
                Effect.zipRight(wait(record.taskKey, waitOptions)),
                Effect.match({
                  onSuccess: () => settle(() => completed.push(record.taskKey)),
                  onFailure: (error) =>
                    settle(() =>
                      error._tag === "TaskFailed"
                        ? failed.push(record.taskKey)
                        : error._tag === "SubmitOutcomeUnknown"
                          ? ambiguous.push(record.taskKey)
                          : unfinished.push({ taskKey: record.taskKey, error: error._tag, reason: error.message })
                    )
                })
              )
            )
          } else if (record.state === "submitting") {
            // The process stopped with a POST possibly in flight (its claim expired): we cannot know
            // whether the task was created.
            yield* ledger
              .transition(record.taskKey, ["submitting"], {
                state: "ambiguous",
                failCode: "SubmitOutcomeUnknown",
                failMessage: "The process stopped while the submit was in flight; it was not re-sent",
                ...noLease
              })
              .pipe(Effect.ignore)
            settle(() => ambiguous.push(record.taskKey))
          } else if (record.state === "succeeded") {
            yield* FiberSet.run(background, finishSucceeded(record, new Set([listenerFor(record.taskKey)])))
          } else {
            yield* limits.acquireTaskSlot(record.taskKey)
            yield* scheduler.track(record, planFor(waitOptions, record), listenerFor(record.taskKey))
          }
        }
        if (claimed.length > 0) yield* Deferred.await(allDone)
        return { claimed: claimed.length, completed, failed, ambiguous, unfinished }
      }).pipe(Effect.withSpan("reelkit.reconcile", { attributes: spanAttributes }))

    return TaskClient.of({ provider, start, wait, watch, generate, resume, resubmit, reconcile, lookup, refresh })
  })

/** A client from the provider, ledger and limits in context (and, optionally, an `ArtifactStore` with an `HttpClient`). */
export const layer = (
  options: Options = {}
): Layer.Layer<TaskClient, never, TaskProvider | TaskLedger | AccountLimits> => Layer.scoped(TaskClient, make(options))
