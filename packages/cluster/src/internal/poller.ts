// One status poller per runner, spending the shared budget. It works from the ledger, not from
// memory, so a runner's death loses nothing: each tick it claims the in-flight cluster rows that are
// due (a fenced write of a short "not before" lease, so only one runner polls a row per interval),
// asks the provider once per claimed row, and applies the answer (completing the execution's wait
// when the task finished). The same tick guards against the 0.19/0.60 race in which a completion
// that lands before the workflow's suspension is persisted is lost: a finished row whose execution
// is still suspended gets its completion again and is resumed. And it gives back this runner's
// slots of rows that are terminal (their workflow may have ended on another runner).
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import { AccountLimits, ResultStorage, TaskLedger, TaskProvider, TaskState } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { GenerationConfig } from "../GenerationConfig.js"
import { executionIdOf, GenerationWorkflow, taskKeyPrefix } from "../GenerationWorkflow.js"
import { LocalSlots } from "./localSlots.js"
import { clusterOwner, completeWait, finishedRemotely, observe } from "./steps.js"

type Row = TaskLedger.TaskRecord

/** What one tick did: for logs and tests. */
export interface TickReport {
  readonly polled: number
  readonly resumed: number
  readonly released: number
}

/** What the poller needs. */
export type Requirements =
  | TaskLedger.TaskLedger
  | TaskProvider.TaskProvider
  | AccountLimits.AccountLimits
  | ResultStorage.ResultStorage
  | GenerationConfig
  | LocalSlots
  | WorkflowEngine

export const make: Effect.Effect<
  { readonly tick: Effect.Effect<TickReport, never, Requirements>; readonly intervalMillis: number },
  never,
  Requirements
> = Effect.gen(function* () {
  const ledger = yield* TaskLedger.TaskLedger
  const provider = yield* TaskProvider.TaskProvider
  const limits = yield* AccountLimits.AccountLimits
  const settings = yield* GenerationConfig
  const slots = yield* LocalSlots
  const plan = provider.hints.pollPlan
  const intervalMillis = settings.pollIntervalMillis ?? Duration.toMillis(plan.interval)
  const firstPollMillis = settings.pollIntervalMillis ?? Duration.toMillis(plan.firstPollAfter)
  // Executions this runner saw complete: never asked about again.
  const completeExecutions = new Set<string>()

  const intervalFor = (row: Row) =>
    row.callbackUrl === undefined ? intervalMillis : Math.max(intervalMillis, settings.callbackFallbackIntervalMillis)
  const dueAt = (row: Row) =>
    row.leaseExpiresAt ??
    (row.submittedAt ?? row.updatedAt) + (row.callbackUrl === undefined ? firstPollMillis : intervalFor(row))

  const isOurs = (row: Row) => row.taskKey.startsWith(taskKeyPrefix)
  const query = { providerId: provider.providerId, modelId: provider.modelId }

  const pollOne = (row: Row, now: number) =>
    Effect.gen(function* () {
      const claimed = yield* ledger
        .transition(TaskLedger.fence(row, clusterOwner), {
          leaseOwner: clusterOwner,
          leaseExpiresAt: now + intervalFor(row)
        })
        .pipe(Effect.option)
      if (Option.isNone(claimed)) return 0 as number
      yield* limits.takeRequest
      const status = yield* provider.status(row.remoteTaskId!).pipe(Effect.option)
      if (Option.isSome(status)) yield* observe(claimed.value, status.value)
      return 1
    })

  const pollDue = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* ledger.list({ ...query, states: TaskState.inFlightStates })
    const due = rows.filter((row) => isOurs(row) && row.remoteTaskId !== undefined && dueAt(row) <= now)
    const counts = yield* Effect.forEach(due, (row) => pollOne(row, now), { concurrency: 8 })
    return counts.reduce((sum, count) => sum + count, 0)
  })

  // Finished rows whose execution is still suspended: the completion was lost (or the ambiguous
  // submit waited long enough for a callback). Complete again and resume.
  const resumeStranded = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* ledger.list({
      ...query,
      states: ["succeeded", "failed", "cancelled", "ambiguous"],
      since: now - settings.sweepWindowMillis
    })
    let resumed = 0
    for (const row of rows) {
      const executionId = executionIdOf(row.taskKey)
      if (executionId === undefined || completeExecutions.has(executionId)) continue
      if (
        row.state === "ambiguous" &&
        (row.callbackUrl === undefined || row.updatedAt > now - settings.ambiguousWaitMillis)
      ) {
        continue
      }
      const result = yield* GenerationWorkflow.poll(executionId)
      if (result === undefined) continue
      if (result._tag === "Complete") {
        completeExecutions.add(executionId)
        continue
      }
      yield* completeWait(row.taskKey)
      yield* GenerationWorkflow.resume(executionId)
      resumed++
    }
    return resumed
  })

  const releaseFinished = Effect.gen(function* () {
    let released = 0
    for (const taskKey of yield* slots.held) {
      const row = yield* ledger.get(taskKey)
      if (Option.isNone(row) || (finishedRemotely(row.value) && row.value.state !== "succeeded")) {
        yield* slots.release(taskKey)
        released++
      }
    }
    return released
  })

  const tick = Effect.all({
    polled: pollDue,
    resumed: resumeStranded,
    released: releaseFinished
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.as(Effect.logWarning("reelkit cluster poller tick failed", cause), { polled: 0, resumed: 0, released: 0 })
    ),
    Effect.map((report): TickReport => report)
  )

  return { tick, intervalMillis }
})

/** Runs the poller forever (fork it in the runner's scope). */
export const run: Effect.Effect<number, never, Requirements> = Effect.flatMap(make, ({ intervalMillis, tick }) =>
  Effect.repeat(tick, Schedule.spaced(Duration.millis(Math.max(10, Math.min(intervalMillis, 1_000)))))
)
