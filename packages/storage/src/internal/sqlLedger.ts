// The TaskLedger on an @effect/sql client, shared by the SQLite and PostgreSQL adapters. Every
// write is one conditional statement (INSERT ... ON CONFLICT DO NOTHING; UPDATE ... WHERE version
// = ? AND <no other live lease holder>), so correctness never depends on a read-then-write
// transaction: on SQLite a single statement holds the write lock from start to end, on PostgreSQL
// the row lock re-checks the WHERE. Reads only explain a write that was refused.
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import type { Fragment } from "@effect/sql/Statement"
import { TaskError, TaskLedger, TaskProvider, TaskState } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Migrations from "./migrations.js"
import { invalidRow, patchColumns, TaskRow } from "./taskRow.js"

/** Which SQL the adapter speaks where the two differ. */
export type Dialect = "sqlite" | "pg"

const describeSqlError = (error: SqlError): string => {
  const cause = error.cause instanceof Error ? error.cause.message : undefined
  return cause === undefined ? error.message : `${error.message}: ${cause}`
}

const ledgerError =
  (operation: string) =>
  (error: SqlError): TaskError.LedgerError =>
    new TaskError.LedgerError({ operation, message: describeSqlError(error), cause: error })

/** Maps the driver's and the row schema's failures to the ledger's typed error (for `Effect.catchTags`). */
const asLedgerError = (operation: string) => ({
  SqlError: (error: SqlError) => Effect.fail(ledgerError(operation)(error)),
  ParseError: (error: ParseResult.ParseError) => Effect.fail(invalidRow(operation, error))
})

// The drivers' codes for a unique constraint violation: node-postgres and better-sqlite3.
const DriverError = Schema.Struct({ code: Schema.Literal("23505", "SQLITE_CONSTRAINT_UNIQUE") })
const isUniqueViolation = (error: SqlError): boolean => Schema.is(DriverError)(error.cause)

/** Why a migration check failed: another process is still migrating. */
class MigrationPending {
  readonly _tag = "MigrationPending"
}

// A migration that fails is a defect of @effect/sql's Migrator (a MigrationError whose cause is
// the migration's own error); the caller gets it as a LedgerError saying why.
const migrationDefect = (defect: unknown): TaskError.LedgerError => {
  const cause =
    typeof defect === "object" && defect !== null && "cause" in defect && defect.cause instanceof Error
      ? `: ${defect.cause.message}`
      : ""
  return new TaskError.LedgerError({
    operation: "migrate",
    message: `${defect instanceof Error ? defect.message : String(defect)}${cause}`,
    cause: defect
  })
}

/**
 * Brings the schema up to date. @effect/sql's Migrator treats a concurrent migration as "already
 * running" and returns at once; on SQLite that can be before the other process has committed, so
 * this waits until the newest migration is recorded.
 */
export const migrate = Effect.gen(function* () {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  yield* Migrations.run
  const rows = yield* sql<{ readonly latest: unknown }>`SELECT MAX(migration_id) AS latest FROM ${sql(
    Migrations.migrationsTable
  )}`
  if (Number(rows[0]?.latest ?? 0) < Migrations.latestId) return yield* Effect.fail(new MigrationPending())
}).pipe(
  Effect.retry({
    while: (error) => error._tag === "MigrationPending" || error._tag === "SqlError",
    schedule: Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(100)))
  }),
  Effect.mapError((error) =>
    error._tag === "MigrationPending"
      ? new TaskError.LedgerError({ operation: "migrate", message: "Another process did not finish migrating" })
      : error._tag === "SqlError"
        ? ledgerError("migrate")(error)
        : new TaskError.LedgerError({ operation: "migrate", message: error.message, cause: error })
  ),
  Effect.catchSomeDefect((defect) =>
    Predicate.isTagged(defect, "MigrationError") ? Option.some(Effect.fail(migrationDefect(defect))) : Option.none()
  )
)

/** Builds the ledger on the `SqlClient` in context, whose schema `migrate` has brought up to date. */
export const make = (dialect: Dialect): Effect.Effect<TaskLedger.Service, never, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    // Our column names are snake_case on purpose; a client's name transforms must not touch them.
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const table = sql(Migrations.tasksTable)
    // Ties on created_at are ordered by key in byte order, as the memory ledger does in JS.
    const byKey = (direction: "ASC" | "DESC"): Fragment =>
      dialect === "pg" ? sql.literal(`task_key COLLATE "C" ${direction}`) : sql.literal(`task_key ${direction}`)

    // Every statement returns whole rows, decoded by the row schema.
    const rowsOf = <E>(statement: Effect.Effect<ReadonlyArray<unknown>, E>) =>
      SqlSchema.findAll({ Request: Schema.Void, Result: TaskRow, execute: () => statement })(undefined)

    const findBy = (column: "task_key" | "remote_task_id" | "idempotency_key", operation: string) => {
      const find = SqlSchema.findOne({
        Request: Schema.String,
        Result: TaskRow,
        execute: (value) => sql`SELECT * FROM ${table} WHERE ${sql(column)} = ${value}`
      })
      return (value: string) => Effect.catchTags(find(value), asLedgerError(operation))
    }
    const get = findBy("task_key", "get")
    const findByRemoteId = findBy("remote_task_id", "findByRemoteId")
    const findByIdempotencyKey = findBy("idempotency_key", "findByIdempotencyKey")

    /** The DuplicateRemoteId a write of `remoteTaskId` to `taskKey` ran into, if another row holds it. */
    const remoteIdHeld = (taskKey: string, remoteTaskId: string | undefined) =>
      remoteTaskId === undefined
        ? Effect.succeed(Option.none<TaskError.DuplicateRemoteId>())
        : Effect.map(
            findByRemoteId(remoteTaskId),
            Option.flatMap((holder) =>
              holder.taskKey === taskKey
                ? Option.none()
                : Option.some(new TaskError.DuplicateRemoteId({ remoteTaskId, taskKey, heldBy: holder.taskKey }))
            )
          )

    // A unique violation on remote_task_id names the row that holds the id; any other is a LedgerError.
    const onUniqueViolation =
      (operation: string, taskKey: string, remoteTaskId: string | undefined) =>
      (error: SqlError): Effect.Effect<never, TaskError.LedgerError | TaskError.DuplicateRemoteId> =>
        isUniqueViolation(error)
          ? Effect.flatMap(remoteIdHeld(taskKey, remoteTaskId), (held) =>
              Effect.fail(Option.getOrElse(held, () => ledgerError(operation)(error)))
            )
          : Effect.fail(ledgerError(operation)(error))

    const create: TaskLedger.Service["create"] = (task) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        // Callers may pass a plain object where the type says WireRequest; the row needs the class.
        const request = yield* Schema.decodeUnknown(Schema.UndefinedOr(TaskProvider.WireRequest))(task.request)
        const record = TaskLedger.newRecord({ ...task, input: task.input ?? null, request }, now)
        const columns = yield* Schema.encode(TaskRow)(record)
        // DO NOTHING on any unique key (task key, idempotency key, remote id): the reads below say which.
        const inserted = yield* rowsOf(
          sql`INSERT INTO ${table} ${sql.insert(columns)} ON CONFLICT DO NOTHING RETURNING *`
        )
        if (inserted.length > 0) return { _tag: "Created", record: inserted[0]! } as const
        // Rows are never deleted, so the row that holds the key is there to read.
        if (task.idempotencyKey !== undefined) {
          const existing = yield* findByIdempotencyKey(task.idempotencyKey)
          if (Option.isSome(existing)) {
            if (TaskLedger.sameInput(existing.value.input, record.input)) {
              return { _tag: "Existing", record: existing.value } as const
            }
            return yield* new TaskError.IdempotencyConflict({
              idempotencyKey: task.idempotencyKey,
              taskKey: existing.value.taskKey
            })
          }
        }
        if (Option.isSome(yield* get(task.taskKey))) {
          return yield* new TaskError.LedgerError({
            operation: "create",
            message: `A task with key "${task.taskKey}" already exists`
          })
        }
        const held = yield* remoteIdHeld(task.taskKey, task.remoteTaskId)
        if (Option.isSome(held)) return yield* held.value
        return yield* new TaskError.LedgerError({ operation: "create", message: "The row was not inserted" })
      }).pipe(Effect.catchTags(asLedgerError("create")))

    const transition: TaskLedger.Service["transition"] = (expected, patch) =>
      Effect.gen(function* () {
        const illegal = TaskLedger.illegalTransition(expected, patch)
        if (illegal !== undefined) return yield* illegal
        const now = yield* Clock.currentTimeMillis
        const columns = yield* patchColumns(patch)
        // The fence: the version the writer read, and no other owner holding an unexpired lease.
        const updated = yield* rowsOf(
          sql`UPDATE ${table} SET ${sql.update({ ...columns, updated_at: now })}, version = version + 1
WHERE task_key = ${expected.taskKey} AND version = ${expected.version}
AND (lease_owner IS NULL OR lease_owner = ${expected.owner} OR lease_expires_at IS NULL OR lease_expires_at <= ${now})
RETURNING *`.pipe(Effect.catchTag("SqlError", onUniqueViolation("transition", expected.taskKey, patch.remoteTaskId)))
        )
        if (updated.length > 0) return updated[0]!
        // Refused: say why, from the row as it is now.
        const current = yield* get(expected.taskKey)
        if (Option.isNone(current)) return yield* new TaskError.UnknownTask({ reference: expected.taskKey })
        return yield* TaskLedger.fenceViolation(current.value, expected, now) ??
          new TaskError.StaleTransition({
            taskKey: expected.taskKey,
            expectedVersion: expected.version,
            actualVersion: current.value.version,
            actual: current.value.state
          })
      }).pipe(Effect.catchTag("ParseError", asLedgerError("transition").ParseError))

    const list: TaskLedger.Service["list"] = (query = {}) => {
      const conditions: Array<Fragment> = []
      if (query.states !== undefined) {
        conditions.push(query.states.length > 0 ? sql.in("state", query.states) : sql.literal("1 = 0"))
      }
      if (query.providerId !== undefined) conditions.push(sql`provider_id = ${query.providerId}`)
      if (query.modelId !== undefined) conditions.push(sql`model_id = ${query.modelId}`)
      if (query.since !== undefined) conditions.push(sql`created_at >= ${query.since}`)
      if (query.until !== undefined) conditions.push(sql`created_at < ${query.until}`)
      const limit = query.limit === undefined ? sql.literal("") : sql`LIMIT ${query.limit}`
      return rowsOf(
        sql`SELECT * FROM ${table} WHERE ${sql.and(conditions)} ORDER BY created_at DESC, ${byKey("DESC")} ${limit}`
      ).pipe(Effect.catchTags(asLedgerError("list")))
    }

    const claimUnfinished: TaskLedger.Service["claimUnfinished"] = (options) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        // Only free or expired leases: a live holder's rows (the claimer's own included) are left.
        const conditions: Array<Fragment> = [
          sql.in("state", TaskState.unfinishedStates),
          sql`(lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ${now})`
        ]
        if (options.providerId !== undefined) conditions.push(sql`provider_id = ${options.providerId}`)
        if (options.modelId !== undefined) conditions.push(sql`model_id = ${options.modelId}`)
        const limit = options.limit === undefined ? sql.literal("") : sql`LIMIT ${options.limit}`
        const lease = sql.update({
          lease_owner: options.owner,
          lease_expires_at: now + options.leaseMillis,
          updated_at: now
        })
        const rows = yield* rowsOf(
          dialect === "pg"
            ? // SKIP LOCKED: a row another claimer holds is skipped, not waited for; a row it has
              // just committed is re-checked against the lease condition before we lock it.
              sql`WITH picked AS (SELECT task_key FROM ${table} WHERE ${sql.and(
                conditions
              )} ORDER BY created_at ASC, ${byKey("ASC")} ${limit} FOR UPDATE SKIP LOCKED)
UPDATE ${table} SET ${lease}, version = ${table}.version + 1 FROM picked
WHERE ${table}.task_key = picked.task_key RETURNING ${table}.*`
            : // One statement: SQLite holds the write lock from the SELECT to the UPDATE.
              sql`UPDATE ${table} SET ${lease}, version = version + 1 WHERE task_key IN (SELECT task_key FROM ${table} WHERE ${sql.and(
                conditions
              )} ORDER BY created_at ASC, ${byKey("ASC")} ${limit}) RETURNING *`
        )
        return [...rows].sort(
          (left, right) => left.createdAt - right.createdAt || (left.taskKey < right.taskKey ? -1 : 1)
        )
      }).pipe(Effect.catchTags(asLedgerError("claimUnfinished")))

    return TaskLedger.TaskLedger.of({
      create,
      get,
      findByRemoteId,
      findByIdempotencyKey,
      transition,
      list,
      claimUnfinished
    })
  })
