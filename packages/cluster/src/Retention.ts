/**
 * Retention of the cluster's tables. @effect/cluster never deletes what it stores, so every
 * execution's messages (its run request, each activity's request and reply, each deferred) stay in
 * `cluster_messages` and `cluster_replies` forever. `prune` deletes those of executions whose ledger
 * row finished (terminal) before `olderThan`: the ledger row stays, and is the record. Starting the
 * same idempotency key again after a prune runs the workflow again, which finds the finished row
 * and sends nothing.
 *
 * @since 0.3.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import { TaskLedger, TaskState, type TaskError } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { executionIdOf } from "./GenerationWorkflow.js"

/** Options of `prune`. */
export interface Options {
  /** Executions whose row finished longer ago than this are pruned (default 7 days). */
  readonly olderThan?: Duration.DurationInput | undefined
  /** The cluster tables' prefix (default `cluster`, as @effect/cluster's default). */
  readonly tablePrefix?: string | undefined
  /** At most this many executions per call (default 500). */
  readonly limit?: number | undefined
}

/** Deletes the cluster messages and replies of finished executions; answers how many executions it pruned. */
export const prune = (
  options: Options = {}
): Effect.Effect<number, SqlError.SqlError | TaskError.LedgerError, SqlClient.SqlClient | TaskLedger.TaskLedger> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const ledger = yield* TaskLedger.TaskLedger
    const now = yield* Clock.currentTimeMillis
    const cutoff = now - Duration.toMillis(options.olderThan ?? Duration.days(7))
    const prefix = options.tablePrefix ?? "cluster"
    const rows = yield* ledger.list({ states: TaskState.terminalStates, until: cutoff, limit: options.limit ?? 500 })
    let pruned = 0
    for (const row of rows) {
      const executionId = executionIdOf(row.taskKey)
      // Ambiguous rows may still be resolved by a callback: their execution waits, keep it.
      if (executionId === undefined || row.state === "ambiguous" || (row.completedAt ?? row.updatedAt) > cutoff)
        continue
      yield* sql.withTransaction(
        Effect.zipRight(
          sql`DELETE FROM ${sql(`${prefix}_replies`)} WHERE request_id IN
            (SELECT id FROM ${sql(`${prefix}_messages`)} WHERE entity_id = ${executionId})`,
          sql`DELETE FROM ${sql(`${prefix}_messages`)} WHERE entity_id = ${executionId}`
        )
      )
      pruned++
    }
    return pruned
  })

/** Prunes every `every` (default hourly) in the background, for as long as the layer lives (add it to one runner). */
export const layerSchedule = (
  options: Options & { readonly every?: Duration.DurationInput | undefined } = {}
): Layer.Layer<never, never, SqlClient.SqlClient | TaskLedger.TaskLedger> =>
  Layer.scopedDiscard(
    Effect.forkScoped(
      prune(options).pipe(
        Effect.catchAll((error) => Effect.as(Effect.logWarning(`reelkit cluster prune failed: ${error.message}`), 0)),
        Effect.repeat(Schedule.spaced(options.every ?? Duration.hours(1)))
      )
    )
  )
