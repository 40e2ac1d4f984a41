// Finishing a succeeded task: store its outputs (through the ResultStorage capability), then move
// the row to `completed` with a fenced write. Requests to finish the same task while it is being
// finished join the running attempt instead of downloading the same files again.
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { UnknownTask } from "../TaskError.js"
import { TaskEvent } from "../TaskEvent.js"
import type { TaskRecord } from "../TaskLedger.js"
import { type ClientContext, joinOrRun, noLease, publish, write } from "./clientContext.js"
import { finalOutcome, type WaitError } from "./outcomes.js"

export interface Results {
  /** Stores a `succeeded` row's outputs and records it `completed`; returns the completed row. */
  readonly finish: (record: TaskRecord) => Effect.Effect<TaskRecord, WaitError>
}

export const make = (context: ClientContext): Effect.Effect<Results, never, Scope.Scope> =>
  Effect.gen(function* () {
    const running = yield* FiberMap.make<string, TaskRecord, WaitError>()

    const reread = (taskKey: string) =>
      Effect.flatMap(context.ledger.get(taskKey), (row) =>
        Option.isSome(row) ? Effect.succeed(row.value) : Effect.fail(new UnknownTask({ reference: taskKey }))
      )

    // The row moved while we stored: whoever moved it decides; a row still `succeeded` (a lease
    // renewal, another process's claim that expired) is written again from its fresh version.
    const complete = (
      record: TaskRecord,
      artifacts: TaskRecord["artifacts"],
      attempts: number
    ): Effect.Effect<TaskRecord, WaitError> =>
      write(context, record, { state: "completed", artifacts, ...noLease }).pipe(
        Effect.catchTags({
          StaleTransition: () =>
            Effect.flatMap(reread(record.taskKey), (fresh) =>
              fresh.state === "succeeded" && attempts < 3 && fresh.leaseOwner === undefined
                ? complete(fresh, artifacts, attempts + 1)
                : (finalOutcome(fresh) ?? Effect.succeed(fresh))
            ),
          DuplicateRemoteId: (error) => Effect.die(error)
        })
      )

    const store = (record: TaskRecord): Effect.Effect<TaskRecord, WaitError> =>
      Effect.gen(function* () {
        const artifacts = yield* context.results.store(record)
        const completed = yield* complete(record, artifacts, 0)
        if (completed.state === "completed") {
          const now = yield* Clock.currentTimeMillis
          yield* publish(context, () =>
            TaskEvent.Succeeded({
              taskKey: completed.taskKey,
              at: now,
              resultUrls: completed.resultUrls,
              artifacts: completed.artifacts,
              record: completed
            })
          )
        }
        return completed
      })

    const finish: Results["finish"] = (record) => joinOrRun(running, record.taskKey, store(record))

    return { finish }
  })
