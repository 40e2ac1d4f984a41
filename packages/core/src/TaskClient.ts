/**
 * The client users call: `start`, `wait`, `watch`, `generate`, `resume`, `reconcile`, `resubmit`,
 * `cancel`. It owns everything about time and durability for every provider: the provider's gate
 * checks the whole request before the ledger row is written, the row exists before the paid POST,
 * every ledger write is fenced, a submit is re-sent only when the failure proves no task was
 * created, polls share the account's budget through one scheduler, and outputs are stored before
 * their URLs expire. This module is the interface and the wiring; the lifecycle's steps live in
 * `internal/` (submit, tracking, results, reconcile) and what a row means lives in `TaskState`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AccountLimits } from "./AccountLimits.js"
import { CallbackUrls } from "./CallbackUrls.js"
import { ResultStorage } from "./ResultStorage.js"
import { SpendCap } from "./SpendCap.js"
import * as Schedules from "./Schedules.js"
import {
  CancelNotSupported,
  DeadlineExceeded,
  type LedgerError,
  type ProviderError,
  TaskCancelled,
  UnknownTask
} from "./TaskError.js"
import { isFinal, TaskEvent } from "./TaskEvent.js"
import type { TaskHandle } from "./TaskHandle.js"
import { TaskLedger, type TaskRecord } from "./TaskLedger.js"
import { type PollPlan, TaskProvider } from "./TaskProvider.js"
import { heldByOther, isInFlight, submitStates } from "./TaskState.js"
import {
  type ClientContext,
  followLedger,
  noLease,
  planFor,
  randomId,
  subscribe,
  write
} from "./internal/clientContext.js"
import { finalOutcome, type WaitError as InternalWaitError } from "./internal/outcomes.js"
import * as Reconcile from "./internal/reconcile.js"
import * as Results from "./internal/results.js"
import * as Submit from "./internal/submit.js"
import * as Telemetry from "./internal/telemetry.js"
import * as Tracking from "./internal/tracking.js"

/** Client-wide settings. Every field has a safe default. */
export interface Options {
  /** Overrides of the provider's poll plan for every task of this client. */
  readonly pollPlan?: Partial<PollPlan> | undefined
  /** Retry of transient failures (default `Schedules.retry`). */
  readonly retry?: Schedules.RetrySchedule | undefined
  /**
   * The longest wait before a submit retry (default 2 minutes). A `Retry-After` longer than this
   * (or past the call's deadline) ends the start with `RetryLater`, the task left queued.
   */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Status requests in flight at once (default 8). The request budget still applies. */
  readonly pollConcurrency?: number | undefined
  /** A prefix for this client's name in ledger leases (a random suffix keeps every instance unique). */
  readonly owner?: string | undefined
  /**
   * How long this client's claim on a task it tracks holds without news (default 2 minutes;
   * longer than the poll plan's first delay). Polls renew it at half-life, so a live process keeps
   * its tasks and a dead one's are free again soon.
   */
  readonly leaseMillis?: number | undefined
  /**
   * How long this client's claim on a task it is submitting holds (default 1 minute, longer than
   * the submit timeout). It is renewed while the submit waits for the budget, so another
   * process's `reconcile` never takes a live submit for a dead one.
   */
  readonly submitLeaseMillis?: number | undefined
  /** How long one submit attempt may go unanswered before the task counts as ambiguous (default 30 s). */
  readonly submitTimeout?: Duration.DurationInput | undefined
  /**
   * Poll interval of tasks submitted in callback mode (default 60 s, or the plan's interval when
   * longer): polling stays on as a slow fallback because callbacks can be lost.
   */
  readonly callbackFallbackInterval?: Duration.DurationInput | undefined
}

/** Options of one `start`. */
export interface StartOptions {
  /** A second start with the same key returns the first task and sends nothing. */
  readonly idempotencyKey?: string | undefined
  /** Our key for the task (default a new random key). 1 to 128 letters, digits, `.`, `-`, `_`. */
  readonly taskKey?: string | undefined
  /**
   * Submit in callback mode with this URL, as given. Without it, the `CallbackUrls` capability
   * gives each task its own verified URL (or none with `CallbackUrls.layerNone`).
   */
  readonly callbackUrl?: string | undefined
  /** Transport options, checked by the provider's gate (e.g. apixo's routing `provider`). */
  readonly providerOptions?: Readonly<Record<string, unknown>> | undefined
  /**
   * How long the submit may wait for the budget or a retry before the start ends with
   * `RetryLater` (the task left queued and resumable). Default: no limit but `maxRetryAfter`.
   */
  readonly deadline?: Duration.DurationInput | undefined
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
export type StartError = Submit.StartError

/** Errors of `wait`, `watch` and `resume`. */
export type WaitError = InternalWaitError

/** What `reconcile` did. */
export type ReconcileSummary = Reconcile.ReconcileSummary

/** The client service. */
export interface Service {
  readonly provider: TaskProvider["Type"]
  /** Checks the whole request, records the task, sends the paid submit once, and returns a resumable handle. */
  readonly start: (input: unknown, options?: StartOptions) => Effect.Effect<TaskHandle, StartError>
  /** Waits for a task to finish; with result storage, its outputs are stored first. Fails with `TaskFailed`. */
  readonly wait: (reference: TaskReference, options?: WaitOptions) => Effect.Effect<TaskRecord, WaitError>
  /** The task's events as they happen, ending with `Succeeded`, `Failed` or `Cancelled`. */
  readonly watch: (reference: TaskReference, options?: WaitOptions) => Stream.Stream<TaskEvent, WaitError>
  /** Every event of every task of this client, from when the stream starts running (see `subscribe` to be sure of the start). */
  readonly events: Stream.Stream<TaskEvent>
  /**
   * Subscribes to every event of this client: the subscription is active once this returns, so no
   * later event is missed (for progress displays started before a task key is known).
   */
  readonly subscribe: Effect.Effect<Queue.Dequeue<TaskEvent>, never, Scope.Scope>
  /** `start` then `wait`, within one deadline. */
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
  readonly resubmit: (reference: TaskReference) => Effect.Effect<TaskHandle, StartError>
  /**
   * Cancels a task: a queued one is never sent; a running one is cancelled with the provider
   * (`CancelNotSupported` when the provider documents no cancel). Returns the cancelled row.
   */
  readonly cancel: (
    reference: TaskReference
  ) => Effect.Effect<
    TaskRecord,
    CancelNotSupported | ProviderError | LedgerError | UnknownTask | TaskCancelled | WaitError
  >
  /** Reads a task's ledger row. */
  readonly lookup: (reference: TaskReference) => Effect.Effect<TaskRecord, UnknownTask | LedgerError>
  /**
   * Asks the provider for the task's status now and applies it (what a verified callback does).
   * For a task this client polls, the poll is moved to now and its answer awaited. Returns the row after it.
   */
  readonly refresh: (reference: TaskReference) => Effect.Effect<TaskRecord, WaitError>
}

/** The client tag. */
export class TaskClient extends Context.Tag("@reelkit/core/TaskClient")<TaskClient, Service>() {}

/** Everything a client is built from. Result storage and callback URLs are explicit capabilities (each has a `layerNone`). */
export type Requirements = TaskProvider | TaskLedger | AccountLimits | ResultStorage | CallbackUrls

const resolveSettings = (options: Options): ClientContext["settings"] => ({
  pollPlan: options.pollPlan ?? {},
  retry: Schedules.honourRetryAfter(options.retry ?? Schedules.retry, options.maxRetryAfter),
  maxRetryAfterMillis: Duration.toMillis(options.maxRetryAfter ?? Schedules.defaultMaxRetryAfter),
  pollConcurrency: options.pollConcurrency ?? 8,
  leaseMillis: options.leaseMillis ?? 120_000,
  submitLeaseMillis: options.submitLeaseMillis ?? 60_000,
  submitTimeoutMillis: Duration.toMillis(options.submitTimeout ?? Duration.seconds(30)),
  callbackFallbackIntervalMillis: Duration.toMillis(options.callbackFallbackInterval ?? Duration.seconds(60))
})

/**
 * Builds a client from the provider, ledger, limits, result storage and callback URLs in context.
 * A `SpendCap` in context, when there is one, is charged before any start is written or sent.
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, Requirements | Scope.Scope> =>
  Effect.gen(function* () {
    const provider = yield* TaskProvider
    const context: ClientContext = {
      provider,
      ledger: yield* TaskLedger,
      limits: yield* AccountLimits,
      results: yield* ResultStorage,
      callbackUrls: yield* CallbackUrls,
      spend: yield* Effect.serviceOption(SpendCap),
      owner: `${options.owner ?? "client"}-${yield* randomId(10)}`,
      settings: resolveSettings(options),
      events: yield* PubSub.unbounded<TaskEvent>(),
      subscribers: { count: 0 },
      metrics: Telemetry.metricsFor(provider),
      spanAttributes: { "reelkit.provider": provider.providerId, "reelkit.model": provider.modelId },
      redact: provider.redact ?? ((text) => text)
    }
    const results = yield* Results.make(context)
    const tracking = yield* Tracking.make(context, results)
    const submitter = yield* Submit.make(context)
    const reconciler = Reconcile.make(context, submitter, tracking, results)

    const deadlineOf = (waitOptions: WaitOptions, record?: TaskRecord) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) => now + Duration.toMillis(planFor(context, waitOptions, record).deadline)
      )

    const lookup: Service["lookup"] = (reference) =>
      Effect.gen(function* () {
        const key = typeof reference === "string" ? reference : reference.taskKey
        const byKey = yield* context.ledger.get(key)
        if (Option.isSome(byKey)) return byKey.value
        if (typeof reference === "string") {
          const byRemoteId = yield* context.ledger.findByRemoteId(reference)
          if (Option.isSome(byRemoteId)) return byRemoteId.value
        }
        return yield* new UnknownTask({ reference: key })
      })

    /** Takes a row to its end: finishes its submit if needed, tracks it, stores its outputs. */
    const waitFor = (
      record: TaskRecord,
      waitOptions: WaitOptions,
      deadlineAt: number
    ): Effect.Effect<TaskRecord, WaitError> =>
      Effect.gen(function* () {
        const done = finalOutcome(record)
        if (done !== undefined) {
          // However it ended (here or elsewhere), a finished task holds no slot of ours.
          yield* context.limits.releaseTaskSlot(record.taskKey)
          return yield* done
        }
        if (record.state === "succeeded") return yield* results.finish(record)
        const running = submitStates.includes(record.state)
          ? yield* submitter.recover(record, deadlineAt).pipe(
              // Recovering a recorded row checks no input and reserves no spend: these cannot happen.
              Effect.catchTags({
                InvalidInput: (error) => Effect.die(error),
                IdempotencyConflict: (error) => Effect.die(error),
                SpendCapExceeded: (error) => Effect.die(error),
                SpendCapUnmetered: (error) => Effect.die(error)
              })
            )
          : record
        if (!isInFlight(running.state)) return yield* waitFor(running, waitOptions, deadlineAt)
        return yield* tracking.await(running, planFor(context, waitOptions, running), deadlineAt)
      })

    const wait: Service["wait"] = (reference, waitOptions = {}) =>
      Effect.gen(function* () {
        const record = yield* lookup(reference)
        return yield* waitFor(record, waitOptions, yield* deadlineOf(waitOptions, record))
      }).pipe(
        Effect.withSpan("reelkit.wait", {
          attributes: {
            ...context.spanAttributes,
            "reelkit.task_key": typeof reference === "string" ? reference : reference.taskKey
          }
        })
      )

    const finalEventOf = (record: TaskRecord, at: number): TaskEvent =>
      record.state === "cancelled"
        ? TaskEvent.Cancelled({ taskKey: record.taskKey, at, record })
        : record.state === "failed"
          ? TaskEvent.Failed({
              taskKey: record.taskKey,
              at,
              code: record.failCode ?? "UNKNOWN",
              message: record.failMessage ?? "",
              record
            })
          : TaskEvent.Succeeded({
              taskKey: record.taskKey,
              at,
              resultUrls: record.resultUrls,
              artifacts: record.artifacts,
              record
            })

    const watch: Service["watch"] = (reference, waitOptions = {}) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const record = yield* lookup(reference)
          // Subscribe before anything can happen, so no event of this task is missed.
          const subscription = yield* subscribe(context)
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
          const live = Stream.fromQueue(subscription).pipe(
            Stream.filter((event) => event.taskKey === record.taskKey && !isFinal(event))
          )
          // The end comes from the wait itself (so a task already over still ends the stream), a
          // remote failure as a `Failed` event rather than an error.
          const end = Stream.fromEffect(
            wait(record.taskKey, waitOptions).pipe(
              Effect.catchTags({
                TaskFailed: () => lookup(record.taskKey),
                TaskCancelled: () => lookup(record.taskKey)
              }),
              Effect.flatMap((row) => Effect.map(Clock.currentTimeMillis, (at) => finalEventOf(row, at)))
            )
          )
          return Stream.concat(submitted, Stream.merge(live, end, { haltStrategy: "right" }))
        })
      )

    const start: Service["start"] = (input, startOptions = {}) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        return yield* submitter.start({
          input,
          taskKey: startOptions.taskKey,
          idempotencyKey: startOptions.idempotencyKey,
          callbackUrl: startOptions.callbackUrl,
          providerOptions: startOptions.providerOptions,
          deadlineAt: startOptions.deadline === undefined ? undefined : now + Duration.toMillis(startOptions.deadline)
        })
      })

    const generate: Service["generate"] = (input, generateOptions = {}) =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        const deadlineAt = startedAt + Duration.toMillis(planFor(context, generateOptions).deadline)
        const handle = yield* submitter.start({
          input,
          taskKey: generateOptions.taskKey,
          idempotencyKey: generateOptions.idempotencyKey,
          callbackUrl: generateOptions.callbackUrl,
          providerOptions: generateOptions.providerOptions,
          deadlineAt
        })
        // The waiting half is traced like `wait`, so a generate's spans show where its time went.
        return yield* waitFor(yield* lookup(handle.taskKey), generateOptions, deadlineAt).pipe(
          Effect.withSpan("reelkit.wait", {
            attributes: { ...context.spanAttributes, "reelkit.task_key": handle.taskKey }
          })
        )
      })

    const resume: Service["resume"] = (handle, waitOptions = {}) =>
      Effect.gen(function* () {
        const existing = yield* context.ledger.get(handle.taskKey)
        if (Option.isNone(existing)) {
          const created = yield* context.ledger
            .create({
              taskKey: handle.taskKey,
              providerId: handle.providerId,
              modelId: handle.modelId,
              input: null,
              state: "submitted",
              remoteTaskId: handle.remoteTaskId,
              submittedAt: handle.submittedAt
            })
            .pipe(
              // No idempotency key is given, so a conflict cannot happen; a remote id already
              // recorded under another key is that row's task: wait for it there.
              Effect.catchTags({
                IdempotencyConflict: (error) => Effect.die(error),
                DuplicateRemoteId: (error) =>
                  Effect.as(Effect.void, { _tag: "Elsewhere" as const, taskKey: error.heldBy })
              })
            )
          if (created._tag === "Elsewhere") return yield* wait(created.taskKey, waitOptions)
        }
        return yield* wait(handle.taskKey, waitOptions)
      })

    const resubmit: Service["resubmit"] = (reference) => Effect.flatMap(lookup(reference), submitter.resubmit)

    const refresh: Service["refresh"] = (reference) => Effect.flatMap(lookup(reference), tracking.refresh)

    const cancel: Service["cancel"] = (reference) =>
      Effect.gen(function* () {
        const record = yield* lookup(reference)
        if (record.state === "queued") {
          // Nothing of it was ever sent: cancelling is a fenced ledger write, no provider call. A
          // submit of it waiting in this process finds the row cancelled at its next fenced write
          // (before any send) and ends with TaskCancelled.
          const cancelled = yield* write(context, record, { state: "cancelled", ...noLease }).pipe(
            Effect.catchTags({
              StaleTransition: () => lookup(record.taskKey),
              DuplicateRemoteId: (error) => Effect.die(error)
            })
          )
          if (cancelled.state === "cancelled") {
            yield* context.limits.releaseTaskSlot(record.taskKey)
            return cancelled
          }
          const now = yield* Clock.currentTimeMillis
          if (cancelled.state !== "queued" || !heldByOther(cancelled, context.owner, now))
            return yield* cancel(cancelled.taskKey)
          // Another live process holds it (it may be about to send it): follow the row until that
          // process sends it or lets go, then cancel what it became.
          const moved = yield* followLedger(
            context,
            cancelled.taskKey,
            (row, at) => row.state !== "queued" || !heldByOther(row, context.owner, at),
            Duration.toMillis(planFor(context, {}).interval),
            yield* deadlineOf({})
          )
          if (Option.isNone(moved)) {
            return yield* new DeadlineExceeded({
              taskKey: record.taskKey,
              waitedMillis: (yield* Clock.currentTimeMillis) - now
            })
          }
          return yield* cancel(moved.value.taskKey)
        }
        if (record.state === "sending") {
          // The submit may be on the wire: learn what it became (join it here, follow it
          // elsewhere, or judge a dead holder's), then cancel that, rather than wait for the task.
          const sent = yield* submitter.recover(record, yield* deadlineOf({})).pipe(
            // Recovering a recorded row checks no idempotency key and reserves no spend.
            Effect.catchTags({
              IdempotencyConflict: (error) => Effect.die(error),
              SpendCapExceeded: (error) => Effect.die(error),
              SpendCapUnmetered: (error) => Effect.die(error)
            })
          )
          return yield* cancel(sent.taskKey)
        }
        if (record.state === "cancelled") return record
        if (!isInFlight(record.state) || record.remoteTaskId === undefined) {
          const done = finalOutcome(record)
          return done === undefined ? yield* wait(record.taskKey) : yield* done
        }
        const providerCancel = context.provider.cancel
        if (providerCancel === undefined) {
          return yield* new CancelNotSupported({
            providerId: context.provider.providerId,
            modelId: context.provider.modelId
          })
        }
        yield* context.limits.takeRequest
        yield* providerCancel(record.remoteTaskId)
        // The provider's own status is the truth: a task that finished before the cancel landed
        // is recorded as it finished (its outputs stored), not as cancelled.
        const after = yield* tracking.refresh(record).pipe(Effect.catchTag("TaskFailed", () => lookup(record.taskKey)))
        if (!isInFlight(after.state)) return after
        return yield* tracking.confirmCancel(after)
      }).pipe(Effect.withSpan("reelkit.cancel", { attributes: context.spanAttributes }))

    const reconcile: Service["reconcile"] = (waitOptions = {}) =>
      Effect.flatMap(deadlineOf(waitOptions), (deadlineAt) =>
        reconciler.reconcile((record) => planFor(context, waitOptions, record), deadlineAt)
      )

    return TaskClient.of({
      provider,
      start,
      wait,
      watch,
      events: Stream.unwrapScoped(Effect.map(subscribe(context), (subscription) => Stream.fromQueue(subscription))),
      subscribe: subscribe(context),
      generate,
      resume,
      resubmit,
      cancel,
      reconcile,
      lookup,
      refresh
    })
  })

/** A client from the provider, ledger, limits, result storage and callback URLs in context. */
export const layer = (options: Options = {}): Layer.Layer<TaskClient, never, Requirements> =>
  Layer.scoped(TaskClient, make(options))
