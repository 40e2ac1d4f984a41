// The submit phase: the provider's gate, the ledger row, and the paid POST, sent at most once per
// attempt that could have created a task. A row is `queued` while nothing of it is out and
// `sending` while a POST may be on the wire; every move between them is a fenced write, so a
// process that lost the row's lease can neither write nor send. A submit that gets no answer ends
// at its timeout as `ambiguous`; an interrupt ends the wait at once and leaves a resumable row.
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberMap from "effect/FiberMap"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Schedules from "../Schedules.js"
import {
  IdempotencyConflict,
  InvalidInput,
  isSafeToResubmit,
  type LedgerError,
  type ProviderError,
  RequestRejected,
  RetryLater,
  SubmitOutcomeUnknown,
  TaskCancelled,
  type UnknownTask
} from "../TaskError.js"
import { TaskEvent } from "../TaskEvent.js"
import { TaskHandle } from "../TaskHandle.js"
import { sameInput, type TaskRecord } from "../TaskLedger.js"
import type { Warning } from "../TaskProvider.js"
import type { SpendCapExceeded, SpendCapUnmetered } from "../SpendCap.js"
import { heldByOther, submitStates } from "../TaskState.js"
import {
  type ClientContext,
  followLedger,
  joinOrRun,
  newTaskKey,
  noLease,
  publish,
  redactError,
  write
} from "./clientContext.js"

/** Errors of starting a task. */
export type StartError =
  | InvalidInput
  | SpendCapExceeded
  | SpendCapUnmetered
  | IdempotencyConflict
  | SubmitOutcomeUnknown
  | RetryLater
  | TaskCancelled
  | ProviderError
  | LedgerError
  | UnknownTask

/** What one start asks for. */
export interface StartRequest {
  readonly input: unknown
  readonly taskKey?: string | undefined
  readonly idempotencyKey?: string | undefined
  readonly callbackUrl?: string | undefined
  readonly providerOptions?: Readonly<Record<string, unknown>> | undefined
  /** Epoch milliseconds after which the submit is not sent any more (`RetryLater`). */
  readonly deadlineAt?: number | undefined
}

export interface Submitter {
  /** The gate, the row, the submit: returns a handle of the accepted task. */
  readonly start: (request: StartRequest) => Effect.Effect<TaskHandle, StartError>
  /** Re-sends an ambiguous or rejected task because the caller decided to. */
  readonly resubmit: (record: TaskRecord) => Effect.Effect<TaskHandle, StartError>
  /** Finishes the submit of a row found `queued` or `sending` (joins it, follows it, sends it, or judges it). */
  readonly recover: (record: TaskRecord, deadlineAt?: number) => Effect.Effect<TaskRecord, StartError>
  /** Gives a task's reserved spend back (nothing of it was ever sent). */
  readonly refund: (taskKey: string) => Effect.Effect<void>
  /** Whether this process is submitting the task right now. */
  readonly isSubmitting: (taskKey: string) => Effect.Effect<boolean>
}

const taskKeyPattern = /^[A-Za-z0-9._-]{1,128}$/

/** A submit attempt got no answer within the submit timeout. */
class SubmitTimedOut {
  readonly _tag = "SubmitTimedOut"
  constructor(readonly millis: number) {}
}

export const make = (context: ClientContext): Effect.Effect<Submitter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { ledger, limits, provider, settings } = context
    // Submits running in this process, by task: a second start of the same task joins the first.
    const running = yield* FiberMap.make<string, TaskRecord, StartError>()

    const handleOf = (record: TaskRecord, warnings?: ReadonlyArray<Warning>) =>
      new TaskHandle({
        providerId: record.providerId,
        modelId: record.modelId,
        taskKey: record.taskKey,
        remoteTaskId: record.remoteTaskId!,
        submittedAt: record.submittedAt ?? record.createdAt,
        ...(warnings !== undefined && warnings.length > 0 ? { warnings: [...warnings] } : {})
      })

    const redacted = (error: { readonly message: string }) => context.redact(error.message)

    /** Gives a task's spend back: its submit is proven never created. */
    const refund = (taskKey: string) =>
      Option.match(context.spend, { onNone: () => Effect.void, onSome: (spend) => spend.release(taskKey) })

    /** Ends a submit whose answer proves nothing was created but must not be retried. */
    const markRejected = (record: TaskRecord, error: ProviderError) =>
      write(context, record, {
        state: "rejected",
        failCode: error._tag,
        failMessage: redacted(error),
        ...noLease
      }).pipe(
        Effect.ignore,
        Effect.ensuring(limits.releaseTaskSlot(record.taskKey)),
        Effect.ensuring(refund(record.taskKey)),
        Effect.zipRight(Metric.increment(context.metrics.failures))
      )

    /** Ends a submit whose outcome is unknown: never re-sent by itself. */
    const markAmbiguous = (record: TaskRecord, reason: string) =>
      write(context, record, {
        state: "ambiguous",
        failCode: "SubmitOutcomeUnknown",
        failMessage: reason,
        ...noLease
      }).pipe(
        Effect.ignore,
        Effect.ensuring(limits.releaseTaskSlot(record.taskKey)),
        Effect.zipRight(Metric.increment(context.metrics.failures)),
        Effect.as(new SubmitOutcomeUnknown({ taskKey: record.taskKey, reason }))
      )

    /** Records the accepted task; a row another process judged ambiguous meanwhile still gets its remote id. */
    const markSubmitted = (record: TaskRecord, remoteTaskId: string): Effect.Effect<TaskRecord, StartError> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const patch = { state: "submitted" as const, remoteTaskId, submittedAt: now, ...noLease }
        return yield* write(context, record, patch).pipe(
          Effect.catchTags({
            StaleTransition: () =>
              Effect.flatMap(ledger.get(record.taskKey), (fresh) =>
                Option.isSome(fresh) && fresh.value.state === "ambiguous"
                  ? write(context, fresh.value, patch).pipe(
                      Effect.catchTag("StaleTransition", () =>
                        Effect.fail(
                          new SubmitOutcomeUnknown({
                            taskKey: record.taskKey,
                            reason: "the row changed while recording its remote id"
                          })
                        )
                      )
                    )
                  : Effect.fail(
                      new SubmitOutcomeUnknown({
                        taskKey: record.taskKey,
                        reason: `the provider accepted it as ${remoteTaskId}, but another process changed the row meanwhile`
                      })
                    )
              ),
            DuplicateRemoteId: (error) =>
              Effect.flatMap(markAmbiguous(record, context.redact(error.message)), (unknown) => Effect.fail(unknown))
          })
        )
      }).pipe(Effect.catchTag("DuplicateRemoteId", (error) => Effect.die(error)))

    /**
     * Waits for a concurrency slot and one request of the budget, within the deadline, telling
     * subscribers why it waits. Nothing of the task is out meanwhile.
     */
    const waitForBudget = (record: TaskRecord, attempt: number, deadlineAt: number | undefined) =>
      Effect.gen(function* () {
        const snapshot = yield* limits.snapshot
        const now = yield* Clock.currentTimeMillis
        const reason =
          snapshot.pausedUntil > now
            ? "the account is paused after a 429"
            : snapshot.tasksInFlight >= snapshot.concurrentTasks
              ? "waiting for a concurrent-task slot"
              : snapshot.requestsInWindow >= snapshot.requestsPerWindow
                ? "waiting for the account's request budget"
                : undefined
        if (deadlineAt !== undefined && snapshot.pausedUntil > deadlineAt) {
          return yield* new RetryLater({
            taskKey: record.taskKey,
            retryAt: snapshot.pausedUntil,
            reason: "the account is paused after a 429"
          })
        }
        if (reason !== undefined) {
          yield* publish(context, () =>
            TaskEvent.Queued({
              taskKey: record.taskKey,
              at: now,
              reason,
              retryAt: snapshot.pausedUntil > now ? snapshot.pausedUntil : undefined,
              attempt
            })
          )
        }
        const budget = Effect.zipRight(limits.acquireTaskSlot(record.taskKey), limits.takeRequest)
        if (deadlineAt === undefined) return yield* budget
        return yield* budget.pipe(
          Effect.timeoutFail({
            duration: Duration.millis(Math.max(0, deadlineAt - now)),
            onTimeout: () =>
              new RetryLater({
                taskKey: record.taskKey,
                retryAt: deadlineAt,
                reason: reason ?? "the account's budget is spent"
              })
          })
        )
      })

    /**
     * One submit of a `queued` row this process holds, with retries that are safe. `current` is
     * the row as last written, kept up to date for the interrupt handler.
     */
    const sendLoop = (initial: TaskRecord, deadlineAt: number | undefined): Effect.Effect<TaskRecord, StartError> => {
      let current = initial
      const stepper = Schedules.stepper(settings.retry)
      // Keeps the submit lease alive while the row waits for the budget (a long queue must not
      // look like a dead process to another's reconcile).
      const renewWhileQueued = Effect.gen(function* () {
        for (;;) {
          yield* Effect.sleep(Duration.millis(settings.submitLeaseMillis / 3))
          const now = yield* Clock.currentTimeMillis
          // Uninterruptible: a renewal cut off mid-write could leave `current` behind the row.
          current = yield* Effect.uninterruptible(
            write(context, current, { leaseOwner: context.owner, leaseExpiresAt: now + settings.submitLeaseMillis })
          )
        }
      })
      // A renewal refused because the row changed (another process took it, a cancel) ends the
      // wait like any lost race: as a StaleTransition the loop handles, never as a defect.
      const renewal = renewWhileQueued.pipe(Effect.catchTag("DuplicateRemoteId", (error) => Effect.die(error)))
      // Nothing of the task is out: give the lease back (so it can be resumed at once, here or
      // elsewhere) and the slot this submit took.
      const giveBack = Effect.suspend(() =>
        current.state === "queued"
          ? Effect.zipRight(
              write(context, current, noLease).pipe(Effect.ignore),
              limits.releaseTaskSlot(current.taskKey)
            )
          : Effect.void
      )
      const loop = Effect.gen(function* () {
        if (current.request === undefined) {
          // Only rows the gate recorded carry the exact request; sending anything else would be a guess.
          const error = new InvalidInput({
            path: "request",
            rule: "is not recorded on this row (written by an older reelkit or by hand); start the task again"
          })
          yield* write(context, current, {
            state: "rejected",
            failCode: error._tag,
            failMessage: error.message,
            ...noLease
          }).pipe(Effect.ignore)
          yield* limits.releaseTaskSlot(current.taskKey)
          yield* refund(current.taskKey)
          return yield* Effect.fail(error)
        }
        for (let attempt = 1; ; attempt++) {
          yield* Effect.raceFirst(waitForBudget(current, attempt, deadlineAt), renewal)
          const now = yield* Clock.currentTimeMillis
          // The fence: only the live holder of a queued row may move it to sending.
          current = yield* write(context, current, {
            state: "sending",
            leaseOwner: context.owner,
            leaseExpiresAt: now + settings.submitLeaseMillis
          }).pipe(Effect.catchTag("DuplicateRemoteId", (error) => Effect.die(error)))
          const answer = yield* sendOnce(current, attempt)
          if (answer._tag === "Accepted") return answer.record
          const error = answer.error
          const retryAfterMillis = error._tag === "RateLimited" ? Math.max(0, error.retryAfterMillis ?? 0) : 0
          if (error._tag === "RateLimited") yield* limits.backOff(Duration.millis(retryAfterMillis))
          if (!isSafeToResubmit(error)) {
            if (error.provesNotCreated) {
              yield* markRejected(current, error)
              return yield* Effect.fail(error)
            }
            // The request reached the server and we cannot tell what it did: never send it again by ourselves.
            return yield* Effect.flip(markAmbiguous(current, redacted(error)))
          }
          const delay = yield* stepper.next(error, yield* Clock.currentTimeMillis)
          if (Option.isNone(delay)) {
            yield* markRejected(current, error)
            return yield* Effect.fail(error)
          }
          const after = yield* Clock.currentTimeMillis
          const waitMillis = Math.max(delay.value, retryAfterMillis)
          const retryAt = after + waitMillis
          // Nothing was created: the row is queued again, and says so before any wait.
          current = yield* write(context, current, {
            state: "queued",
            leaseOwner: context.owner,
            leaseExpiresAt: after + settings.submitLeaseMillis
          }).pipe(Effect.catchTag("DuplicateRemoteId", (cause) => Effect.die(cause)))
          if (waitMillis > settings.maxRetryAfterMillis || (deadlineAt !== undefined && retryAt > deadlineAt)) {
            return yield* new RetryLater({ taskKey: current.taskKey, retryAt, reason: redacted(error) })
          }
          yield* Metric.increment(context.metrics.retries)
          yield* publish(context, () =>
            TaskEvent.Queued({ taskKey: current.taskKey, at: after, reason: redacted(error), retryAt, attempt })
          )
          yield* Effect.raceFirst(Effect.sleep(Duration.millis(waitMillis)), renewal)
        }
      })
      return loop.pipe(
        Effect.catchTag("StaleTransition", () =>
          Effect.gen(function* () {
            const fresh = Option.getOrUndefined(yield* ledger.get(current.taskKey))
            const now = yield* Clock.currentTimeMillis
            // Still queued and nobody else's: only our own view was behind; carry on from the row.
            if (fresh !== undefined && fresh.state === "queued" && !heldByOther(fresh, context.owner, now)) {
              return yield* sendLoop(fresh, deadlineAt)
            }
            // The row is someone else's business now: this process sends nothing and holds no slot for it.
            yield* limits.releaseTaskSlot(current.taskKey)
            return yield* lostRow(current, deadlineAt)
          })
        ),
        // Sent later (RetryLater) or interrupted while queued: nothing of it is out.
        Effect.tapErrorTag("RetryLater", () => giveBack),
        Effect.onInterrupt(() => giveBack)
      )
    }

    /** One POST, with its timeout; its outcome is recorded before anything else can happen. */
    const sendOnce = (record: TaskRecord, attempt: number) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          yield* Metric.increment(context.metrics.submits)
          const sendingAt = yield* Clock.currentTimeMillis
          yield* publish(context, () => TaskEvent.Sending({ taskKey: record.taskKey, at: sendingAt, attempt }))
          const exit = yield* restore(
            provider.submit({ taskKey: record.taskKey, wire: record.request! }).pipe(
              Effect.mapError((error) => redactError(context.redact, error)),
              Effect.timeoutFail({
                duration: Duration.millis(settings.submitTimeoutMillis),
                onTimeout: () => new SubmitTimedOut(settings.submitTimeoutMillis)
              }),
              Effect.withSpan("reelkit.submit", {
                captureStackTrace: false,
                attributes: {
                  ...context.spanAttributes,
                  "reelkit.task_key": record.taskKey,
                  "reelkit.attempt": attempt
                }
              })
            )
          ).pipe(Effect.exit)
          if (Exit.isSuccess(exit)) {
            const submitted = yield* markSubmitted(record, exit.value.remoteTaskId)
            const submittedAt = submitted.submittedAt ?? (yield* Clock.currentTimeMillis)
            yield* publish(context, () =>
              TaskEvent.Submitted({
                taskKey: submitted.taskKey,
                remoteTaskId: exit.value.remoteTaskId,
                at: submittedAt
              })
            )
            return { _tag: "Accepted", record: submitted } as const
          }
          if (Exit.isInterrupted(exit)) {
            yield* markAmbiguous(
              record,
              "the start was interrupted while its submit was on the wire; it was not re-sent"
            )
            return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
          }
          const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          // A defect, not an answer: it propagates as one.
          if (failure === undefined) return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
          if (failure instanceof SubmitTimedOut) {
            return yield* Effect.flip(
              markAmbiguous(record, `no answer within ${Math.round(failure.millis / 1000)} s; it was not re-sent`)
            )
          }
          return { _tag: "Refused", error: failure as ProviderError } as const
        })
      )

    /**
     * Another process took the row while this one waited: it is that process's submit now.
     * Follow the ledger until it is decided.
     */
    const lostRow = (record: TaskRecord, deadlineAt: number | undefined): Effect.Effect<TaskRecord, StartError> =>
      Effect.flatMap(
        followLedger(
          context,
          record.taskKey,
          (row) => !submitStates.includes(row.state),
          Duration.toMillis(provider.hints.pollPlan.interval),
          deadlineAt ?? Number.MAX_SAFE_INTEGER
        ),
        (row) =>
          Option.isNone(row)
            ? Effect.fail(
                new RetryLater({
                  taskKey: record.taskKey,
                  retryAt: deadlineAt ?? 0,
                  reason: "another process is submitting it"
                })
              )
            : decided(row.value)
      )

    /** A row past its submit phase, as a start's result. */
    const decided = (row: TaskRecord): Effect.Effect<TaskRecord, StartError> => {
      switch (row.state) {
        case "ambiguous":
          return Effect.fail(new SubmitOutcomeUnknown({ taskKey: row.taskKey, reason: row.failMessage ?? "" }))
        case "rejected":
          return Effect.fail(new RequestRejected({ status: 0, message: row.failMessage ?? "The submit was refused" }))
        case "cancelled":
          return row.remoteTaskId === undefined
            ? Effect.fail(new TaskCancelled({ taskKey: row.taskKey }))
            : Effect.succeed(row)
        default:
          return Effect.succeed(row)
      }
    }

    /** Runs the submit of a row this process holds, letting concurrent starts of the same task join it. */
    const submitHeld = (record: TaskRecord, deadlineAt: number | undefined) =>
      joinOrRun(running, record.taskKey, sendLoop(record, deadlineAt)).pipe(
        Effect.onInterrupt(() => FiberMap.remove(running, record.taskKey)),
        carryOnAfterOthersInterrupt(record.taskKey, deadlineAt)
      )

    /**
     * A submit this caller joined was interrupted by another of its callers (Ctrl-C there), not by
     * this one: this caller goes on from what the row now says (an ambiguous row fails with
     * SubmitOutcomeUnknown; a queued one, never sent, is sent for this caller) instead of ending
     * as if it had been interrupted itself. (A caller's own interruption skips this handler.)
     */
    const carryOnAfterOthersInterrupt =
      (taskKey: string, deadlineAt: number | undefined) =>
      (join: Effect.Effect<TaskRecord, StartError>): Effect.Effect<TaskRecord, StartError> =>
        join.pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause)
              ? Effect.flatMap(ledger.get(taskKey), (row) =>
                  Option.isSome(row) ? recover(row.value, deadlineAt) : Effect.failCause(cause)
                )
              : Effect.failCause(cause)
          )
        )

    const recover: Submitter["recover"] = (record, deadlineAt) =>
      Effect.gen(function* () {
        const joined = yield* FiberMap.get(running, record.taskKey).pipe(Effect.option)
        if (Option.isSome(joined)) {
          return yield* Fiber.join(joined.value).pipe(carryOnAfterOthersInterrupt(record.taskKey, deadlineAt))
        }
        const now = yield* Clock.currentTimeMillis
        if (!submitStates.includes(record.state)) return yield* decided(record)
        if (heldByOther(record, context.owner, now)) return yield* lostRow(record, deadlineAt)
        if (record.state === "sending") {
          // Caught sending by a holder that is gone: it may have created a task. Never re-send it.
          return yield* Effect.flip(
            markAmbiguous(record, "the process stopped while the submit was in flight; it was not re-sent")
          )
        }
        // Queued and free: no request of it ever went out, so this is its first and only submit.
        const held = yield* write(context, record, {
          leaseOwner: context.owner,
          leaseExpiresAt: now + settings.submitLeaseMillis
        }).pipe(
          Effect.catchTags({
            StaleTransition: () =>
              Effect.flatMap(ledger.get(record.taskKey), (fresh) => Effect.succeed(Option.getOrUndefined(fresh))),
            DuplicateRemoteId: (error) => Effect.die(error)
          })
        )
        if (held === undefined) return yield* lostRow(record, deadlineAt)
        if (held.leaseOwner !== context.owner || held.state !== "queued") return yield* recover(held, deadlineAt)
        return yield* submitHeld(held, deadlineAt)
      })

    /** Re-opens a rejected or ambiguous row for a new submit (the caller's or a safe retry's decision). */
    const reopen = (record: TaskRecord, deadlineAt: number | undefined) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const reopened = yield* write(context, record, {
          state: "queued",
          failCode: null,
          failMessage: null,
          leaseOwner: context.owner,
          leaseExpiresAt: now + settings.submitLeaseMillis
        }).pipe(
          Effect.catchTags({
            StaleTransition: (error) =>
              Effect.fail(new SubmitOutcomeUnknown({ taskKey: record.taskKey, reason: error.message })),
            DuplicateRemoteId: (error) => Effect.die(error)
          })
        )
        return yield* submitHeld(reopened, deadlineAt)
      })

    /** A start found an existing task for its idempotency key. */
    const fromExisting = (
      record: TaskRecord,
      deadlineAt: number | undefined
    ): Effect.Effect<TaskRecord, StartError> => {
      switch (record.state) {
        case "queued":
        case "sending":
          return recover(record, deadlineAt)
        case "rejected":
          // Nothing was created the first time, so sending it again is safe (e.g. after a top-up).
          return reopen(record, deadlineAt)
        default:
          return decided(record)
      }
    }

    const start: Submitter["start"] = (request) =>
      Effect.gen(function* () {
        if (request.taskKey !== undefined && !taskKeyPattern.test(request.taskKey)) {
          return yield* new InvalidInput({ path: "taskKey", rule: "must be 1 to 128 letters, digits, '.', '-' or '_'" })
        }
        const taskKey = request.taskKey ?? (yield* newTaskKey)
        const callbackUrl = request.callbackUrl ?? context.callbackUrls.urlFor(taskKey)
        // The gate: the whole request is checked, and the exact wire request made, before any row exists.
        const prepared = yield* provider.prepare({
          input: request.input,
          callbackUrl,
          options: request.providerOptions
        })
        if (request.idempotencyKey !== undefined) {
          const existing = yield* ledger.findByIdempotencyKey(request.idempotencyKey)
          if (Option.isSome(existing)) {
            if (!sameInput(existing.value.input, prepared.input)) {
              return yield* new IdempotencyConflict({
                idempotencyKey: request.idempotencyKey,
                taskKey: existing.value.taskKey
              })
            }
            return handleOf(yield* fromExisting(existing.value, request.deadlineAt), prepared.warnings)
          }
        }
        // The spend cap, before anything is written or sent: a start past it fails naming the cap.
        if (Option.isSome(context.spend)) {
          yield* context.spend.value.reserve({
            taskKey,
            providerId: provider.providerId,
            modelId: provider.modelId,
            billableSeconds: prepared.billableSeconds,
            input: request.input
          })
        }
        const now = yield* Clock.currentTimeMillis
        const created = yield* ledger
          .create({
            taskKey,
            providerId: provider.providerId,
            modelId: provider.modelId,
            idempotencyKey: request.idempotencyKey,
            input: prepared.input,
            request: prepared.wire,
            callbackUrl,
            billableSeconds: prepared.billableSeconds,
            leaseOwner: context.owner,
            leaseExpiresAt: now + settings.submitLeaseMillis
          })
          .pipe(
            Effect.catchTag("DuplicateRemoteId", (error) => Effect.die(error)),
            Effect.tapError(() => refund(taskKey))
          )
        if (created._tag === "Existing") yield* refund(taskKey)
        const submitted =
          created._tag === "Existing"
            ? yield* fromExisting(created.record, request.deadlineAt)
            : yield* submitHeld(created.record, request.deadlineAt)
        return handleOf(submitted, prepared.warnings)
      }).pipe(Effect.withSpan("reelkit.start", { attributes: context.spanAttributes }))

    const resubmit: Submitter["resubmit"] = (record) =>
      Effect.map(
        record.state === "ambiguous" || record.state === "rejected"
          ? reopen(record, undefined)
          : fromExisting(record, undefined),
        (submitted) => handleOf(submitted)
      ).pipe(Effect.withSpan("reelkit.resubmit", { attributes: context.spanAttributes }))

    return {
      start,
      resubmit,
      recover,
      refund,
      isSubmitting: (taskKey) => Effect.map(FiberMap.has(running, taskKey), (has) => has)
    }
  })
