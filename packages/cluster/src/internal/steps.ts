// The lifecycle steps the workflow runs as activities, composed from core's public pieces: the
// provider's gate and submit, the fenced ledger, `TaskState`'s rules, the shared budget and
// `ResultStorage`. Activities run at least once, so every step starts from the ledger row: a re-run
// submit finds its own earlier attempt and never sends a second paid POST.
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import { AccountLimits, ResultStorage, TaskError, TaskLedger, TaskProvider, TaskState } from "@reelkit/core"
import type { TaskStatus } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { callbackUrlFor, GenerationConfig } from "../GenerationConfig.js"
import { doneTokenOf, executionIdOf, GenerationResult, resultOf, TaskDone } from "../GenerationWorkflow.js"
import { LocalSlots } from "./localSlots.js"

/** The owner of every write after the submit: pollers, callbacks and the persist step of any runner. */
export const clusterOwner = "reelkit-cluster"

const noLease = { leaseOwner: null, leaseExpiresAt: null } as const

// Ledger failures (a busy database, a reconnect) are retried, then end the activity as a defect,
// which the engine retries by replaying the workflow.
const retryLedger = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(6)))
const orDieLedger = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.retry({ schedule: retryLedger, while: (error) => error._tag === "LedgerError" }), Effect.orDie)

/** The row of a task; a missing row is a defect (the reserve step wrote it). */
export const read = (taskKey: string) =>
  Effect.flatMap(TaskLedger.TaskLedger, (ledger) =>
    orDieLedger(
      Effect.flatMap(ledger.get(taskKey), (row) =>
        Option.isSome(row) ? Effect.succeed(row.value) : Effect.fail(new TaskError.UnknownTask({ reference: taskKey }))
      )
    )
  )

/** A fenced write; `undefined` when the row moved on (the caller re-reads). A taken remote id stays an error. */
const writeOrDuplicate = (row: TaskLedger.TaskRecord, owner: string, patch: TaskLedger.TaskPatch) =>
  Effect.flatMap(TaskLedger.TaskLedger, (ledger) =>
    ledger.transition(TaskLedger.fence(row, owner), patch).pipe(
      Effect.map((next): TaskLedger.TaskRecord | undefined => next),
      Effect.catchTag("StaleTransition", () => Effect.succeed(undefined)),
      Effect.retry({ schedule: retryLedger, while: (error) => error._tag === "LedgerError" }),
      Effect.catchTags({ LedgerError: Effect.die, UnknownTask: Effect.die })
    )
  )

/** A fenced write; `undefined` when the row moved on (the caller re-reads). */
const write = (row: TaskLedger.TaskRecord, owner: string, patch: TaskLedger.TaskPatch) =>
  writeOrDuplicate(row, owner, patch).pipe(Effect.catchTag("DuplicateRemoteId", Effect.die))

/**
 * Reserve: the provider's gate checks the whole request before any row exists, then the row is
 * written `queued` with the execution id as its idempotency key. A re-run finds the row.
 */
export const reserve = (
  executionId: string,
  taskKey: string,
  payload: { readonly input: unknown; readonly providerOptions?: Readonly<Record<string, unknown>> | undefined }
) =>
  Effect.gen(function* () {
    const ledger = yield* TaskLedger.TaskLedger
    const provider = yield* TaskProvider.TaskProvider
    const settings = yield* GenerationConfig
    const existing = yield* orDieLedger(ledger.get(taskKey))
    if (Option.isSome(existing)) return
    const callbackUrl =
      settings.callbacks === undefined ? undefined : callbackUrlFor(settings.callbacks, doneTokenOf(executionId))
    const prepared = yield* provider.prepare({ input: payload.input, callbackUrl, options: payload.providerOptions })
    yield* orDieLedger(
      ledger.create({
        taskKey,
        providerId: provider.providerId,
        modelId: provider.modelId,
        idempotencyKey: executionId,
        input: prepared.input,
        request: prepared.wire,
        callbackUrl,
        billableSeconds: prepared.billableSeconds
      })
    )
    settings.onStep("reserved", taskKey)
  })

/** A submit attempt got no answer within the submit timeout. */
class SubmitTimedOut {
  readonly _tag = "SubmitTimedOut"
}

const redact = (provider: TaskProvider.Service, text: string) =>
  provider.redact === undefined ? text : provider.redact(text)

/** Ends a submit whose outcome is unknown: never re-sent by itself. */
const markAmbiguous = (row: TaskLedger.TaskRecord, owner: string, reason: string) =>
  Effect.gen(function* () {
    yield* write(row, owner, { state: "ambiguous", failCode: "SubmitOutcomeUnknown", failMessage: reason, ...noLease })
    yield* Effect.flatMap(LocalSlots, (slots) => slots.release(row.taskKey))
  })

/** Records the accepted task; a row judged ambiguous meanwhile (its sender looked dead) still gets its remote id. */
const markSubmitted = (row: TaskLedger.TaskRecord, owner: string, remoteTaskId: string) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const patch = { state: "submitted" as const, remoteTaskId, submittedAt: now, ...noLease }
    const written = yield* writeOrDuplicate(row, owner, patch).pipe(
      Effect.catchTag("DuplicateRemoteId", (error) => Effect.as(markAmbiguous(row, owner, error.message), undefined))
    )
    if (written !== undefined) return
    const fresh = yield* read(row.taskKey)
    if (fresh.state === "ambiguous" && fresh.remoteTaskId === undefined) {
      yield* writeOrDuplicate(fresh, clusterOwner, patch).pipe(Effect.catchTag("DuplicateRemoteId", () => Effect.void))
    }
  })

/**
 * Submit: what the row says decides (`TaskState.recoveryOf`). Queued and free: send it, moving
 * it to `sending` first by a fenced write (only one runner can win that write). Sending and held
 * by a live runner: wait for it. Sending and its holder gone: it may have created a task, so it
 * is marked ambiguous, never re-sent. Anything later: nothing to send. Returns the row.
 */
export const submit = (taskKey: string) =>
  Effect.gen(function* () {
    const provider = yield* TaskProvider.TaskProvider
    const limits = yield* AccountLimits.AccountLimits
    const slots = yield* LocalSlots
    const settings = yield* GenerationConfig
    const owner = settings.owner
    for (let attempt = 1; ; ) {
      const row = yield* read(taskKey)
      const now = yield* Clock.currentTimeMillis
      const recovery = TaskState.recoveryOf(row, owner, now)
      switch (recovery._tag) {
        case "Nothing":
        case "Track":
        case "StoreOutputs":
          return row
        case "HeldElsewhere":
          // A live runner is sending it (the same execution, moved during a rebalance): wait for it.
          yield* Effect.sleep(Duration.millis(Math.min(Math.max(recovery.until - now, 20), 1_000)))
          continue
        case "MarkAmbiguous":
          yield* markAmbiguous(row, owner, "the runner stopped while the submit was in flight; it was not re-sent")
          continue
        case "Send":
          break
      }
      yield* slots.acquire(taskKey)
      yield* limits.takeRequest
      const sendingAt = yield* Clock.currentTimeMillis
      const sending = yield* write(row, owner, {
        state: "sending",
        leaseOwner: owner,
        leaseExpiresAt: sendingAt + settings.submitLeaseMillis
      })
      if (sending === undefined) continue
      // From the write of `sending` to the write of its answer: not interruptible, so the row
      // never says less than what was sent.
      const retry = yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          settings.onStep("sending", taskKey)
          const exit = yield* restore(
            provider.submit({ taskKey, wire: sending.request! }).pipe(
              Effect.timeoutFail({
                duration: Duration.millis(settings.submitTimeoutMillis),
                onTimeout: () => new SubmitTimedOut()
              })
            )
          ).pipe(Effect.exit)
          if (Exit.isSuccess(exit)) {
            yield* markSubmitted(sending, owner, exit.value.remoteTaskId)
            settings.onStep("submitted", taskKey)
            return false
          }
          const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          if (failure === undefined || failure instanceof SubmitTimedOut) {
            yield* markAmbiguous(sending, owner, "the submit got no answer in time; it was not re-sent")
            return false
          }
          const error = failure
          if (error._tag === "RateLimited") {
            yield* limits.backOff(Duration.millis(Math.max(0, error.retryAfterMillis ?? 1_000)))
          }
          if (TaskError.isSafeToResubmit(error) && attempt < settings.maxSubmitAttempts) {
            // Nothing was created: queued again, so a crash from here on sends it as a first submit.
            yield* write(sending, owner, { state: "queued", ...noLease })
            return true
          }
          if (error.provesNotCreated) {
            yield* write(sending, owner, {
              state: "rejected",
              failCode: error._tag,
              failMessage: redact(provider, error.message),
              ...noLease
            })
            yield* slots.release(taskKey)
            return false
          }
          yield* markAmbiguous(sending, owner, redact(provider, error.message))
          return false
        })
      )
      if (retry) {
        yield* slots.release(taskKey)
        yield* Effect.sleep(Duration.millis(Math.min(250 * 2 ** (attempt - 1), 10_000)))
        attempt++
      }
    }
  })

/** Whether the provider has finished the task (or nothing will change it any more). */
export const finishedRemotely = (row: TaskLedger.TaskRecord): boolean =>
  row.state === "succeeded" || TaskState.isTerminal(row.state)

/** Completes the execution's wait; a completion the engine already has is harmless. */
export const completeWait = (taskKey: string): Effect.Effect<void, never, WorkflowEngine> => {
  const executionId = executionIdOf(taskKey)
  return executionId === undefined
    ? Effect.void
    : DurableDeferred.done(TaskDone, { token: doneTokenOf(executionId), exit: Exit.void })
}

/**
 * Applies one confirmed provider status to the row (as `TaskState.applyStatus` says) and, when the
 * task finished, completes the execution's wait. Used by the status poller and the callback handler.
 */
export const observe = (row: TaskLedger.TaskRecord, status: TaskStatus.TaskStatus) =>
  Effect.gen(function* () {
    const provider = yield* TaskProvider.TaskProvider
    const results = yield* ResultStorage.ResultStorage
    const settings = yield* GenerationConfig
    let current = row
    for (let tries = 0; tries < 5; tries++) {
      const now = yield* Clock.currentTimeMillis
      const effect = TaskState.applyStatus(current, status, {
        now,
        resultRetention: provider.hints.resultRetention,
        maxOutputs: results.maxOutputs
      })
      if (effect._tag === "Unchanged" || effect._tag === "Ignore") {
        if (finishedRemotely(current)) yield* completeWait(current.taskKey)
        return current
      }
      const patch = effect._tag === "Finish" ? { ...effect.patch, ...noLease } : effect.patch
      const written = yield* write(current, clusterOwner, patch)
      if (written === undefined) {
        current = yield* read(current.taskKey)
        continue
      }
      if (effect._tag === "Finish") {
        settings.onStep("finished", written.taskKey)
        yield* completeWait(written.taskKey)
      }
      return written
    }
    return current
  })

/** Takes the slot back for a task still in flight (its workflow may have moved here from a dead runner). */
export const reclaimSlot = (row: TaskLedger.TaskRecord) =>
  TaskState.holdsSlot(row.state) ? Effect.flatMap(LocalSlots, (slots) => slots.acquire(row.taskKey)) : Effect.void

/**
 * Persist: stores a succeeded task's outputs (`ResultStorage`) and records it `completed`. A re-run
 * after a crash downloads again into the same keys (the store commits atomically). A failed store
 * leaves the row `succeeded` and says why in the result.
 */
export const persist = (taskKey: string) =>
  Effect.gen(function* () {
    const results = yield* ResultStorage.ResultStorage
    const settings = yield* GenerationConfig
    for (;;) {
      const row = yield* read(taskKey)
      if (row.state !== "succeeded") return resultOf(row)
      settings.onStep("downloading", taskKey)
      const stored = yield* (results.enabled ? results.store(row) : Effect.succeed([])).pipe(Effect.either)
      if (stored._tag === "Left") {
        return new GenerationResult({ ...resultOf(row), failCode: stored.left._tag, failMessage: stored.left.message })
      }
      const written = yield* write(row, clusterOwner, { state: "completed", artifacts: stored.right, ...noLease })
      if (written !== undefined) {
        settings.onStep("completed", taskKey)
        return resultOf(written)
      }
    }
  })

/** Release: gives this runner's slot for the task back. */
export const release = (taskKey: string) =>
  Effect.gen(function* () {
    const slots = yield* LocalSlots
    const settings = yield* GenerationConfig
    yield* slots.release(taskKey)
    settings.onStep("released", taskKey)
  })
