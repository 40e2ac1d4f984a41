// The TaskLedger on an @effect/sql client, shared by the SQLite and PostgreSQL adapters. Every
// write is one conditional statement (INSERT ... ON CONFLICT DO NOTHING, UPDATE ... WHERE state IN
// (...)), so correctness never depends on a read-then-write transaction: on SQLite a single
// statement holds the write lock from start to end, on PostgreSQL the row lock re-checks the WHERE.
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import { TaskError, TaskLedger } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Migrations from "./migrations.js"

/** Which SQL the adapter speaks where the two differ. */
export type Dialect = "sqlite" | "pg"

type Row = Record<string, unknown>

const decodeArtifacts = Schema.decodeUnknownSync(Schema.parseJson(Schema.Array(TaskLedger.StoredArtifact)))
const encodeArtifacts = Schema.encodeSync(Schema.parseJson(Schema.Array(TaskLedger.StoredArtifact)))

// PostgreSQL returns BIGINT as text; SQLite returns numbers. Epoch milliseconds fit a double.
const optionalNumber = (value: unknown): number | undefined =>
  value === null || value === undefined ? undefined : Number(value)
const optionalString = (value: unknown): string | undefined =>
  value === null || value === undefined ? undefined : String(value)

/** Turns a row of the tasks table into a record. */
export const fromRow = (row: Row): TaskLedger.TaskRecord =>
  new TaskLedger.TaskRecord({
    taskKey: String(row.task_key),
    providerId: String(row.provider_id),
    modelId: String(row.model_id),
    idempotencyKey: optionalString(row.idempotency_key),
    state: row.state as TaskLedger.TaskState,
    input: JSON.parse(String(row.input)),
    callbackUrl: optionalString(row.callback_url),
    remoteTaskId: optionalString(row.remote_task_id),
    billableSeconds: optionalNumber(row.billable_seconds),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    submittedAt: optionalNumber(row.submitted_at),
    completedAt: optionalNumber(row.completed_at),
    failCode: optionalString(row.fail_code),
    failMessage: optionalString(row.fail_message),
    resultUrls: JSON.parse(String(row.result_urls)),
    resultExpiresAt: optionalNumber(row.result_expires_at),
    artifacts: decodeArtifacts(String(row.artifacts)),
    leaseOwner: optionalString(row.lease_owner),
    leaseExpiresAt: optionalNumber(row.lease_expires_at),
    version: Number(row.version)
  })

// Column values for the fields a patch sets; absent fields are left out, `null` clears a lease.
const patchColumns = (patch: TaskLedger.TaskPatch): Record<string, unknown> => {
  const columns: Record<string, unknown> = {}
  if (patch.state !== undefined) columns.state = patch.state
  if (patch.remoteTaskId !== undefined) columns.remote_task_id = patch.remoteTaskId
  if (patch.callbackUrl !== undefined) columns.callback_url = patch.callbackUrl
  if (patch.submittedAt !== undefined) columns.submitted_at = patch.submittedAt
  if (patch.completedAt !== undefined) columns.completed_at = patch.completedAt
  if (patch.failCode !== undefined) columns.fail_code = patch.failCode
  if (patch.failMessage !== undefined) columns.fail_message = patch.failMessage
  if (patch.resultUrls !== undefined) columns.result_urls = JSON.stringify(patch.resultUrls)
  if (patch.resultExpiresAt !== undefined) columns.result_expires_at = patch.resultExpiresAt
  if (patch.artifacts !== undefined) columns.artifacts = encodeArtifacts(patch.artifacts.map(toStoredArtifact))
  if (patch.leaseOwner !== undefined) columns.lease_owner = patch.leaseOwner
  if (patch.leaseExpiresAt !== undefined) columns.lease_expires_at = patch.leaseExpiresAt
  return columns
}

// Callers may pass plain objects where the type says StoredArtifact; encoding needs the class.
const toStoredArtifact = (artifact: TaskLedger.StoredArtifact): TaskLedger.StoredArtifact =>
  artifact instanceof TaskLedger.StoredArtifact ? artifact : new TaskLedger.StoredArtifact(artifact)

const describeSqlError = (error: SqlError): string => {
  const cause = error.cause instanceof Error ? error.cause.message : undefined
  return cause === undefined ? error.message : `${error.message}: ${cause}`
}

const ledgerError =
  (operation: string) =>
  (error: SqlError): TaskError.LedgerError =>
    new TaskError.LedgerError({ operation, message: describeSqlError(error), cause: error })

/** Why a migration check failed: another process is still migrating. */
class MigrationPending {
  readonly _tag = "MigrationPending"
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

    const selectOne = (operation: string, column: string, value: string) =>
      sql<Row>`SELECT * FROM ${table} WHERE ${sql(column)} = ${value}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromRow)),
        Effect.mapError(ledgerError(operation))
      )

    const create: TaskLedger.Service["create"] = (task) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const inserted = yield* sql<Row>`INSERT INTO ${table} ${sql.insert({
          task_key: task.taskKey,
          provider_id: task.providerId,
          model_id: task.modelId,
          idempotency_key: task.idempotencyKey ?? null,
          state: "submitting",
          input: JSON.stringify(task.input ?? null),
          callback_url: task.callbackUrl ?? null,
          billable_seconds: task.billableSeconds ?? null,
          created_at: now,
          updated_at: now,
          result_urls: "[]",
          artifacts: "[]",
          version: 1
        })} ON CONFLICT DO NOTHING RETURNING *`.pipe(Effect.mapError(ledgerError("create")))
        if (inserted.length > 0) return { _tag: "Created", record: fromRow(inserted[0]!) } as const
        // Nothing inserted: the idempotency key (or the task key) is taken. Rows are never deleted,
        // so the row that won is there to read.
        if (task.idempotencyKey !== undefined) {
          const existing = yield* selectOne("create", "idempotency_key", task.idempotencyKey)
          if (Option.isSome(existing)) {
            if (TaskLedger.sameInput(existing.value.input, task.input ?? null)) {
              return { _tag: "Existing", record: existing.value } as const
            }
            return yield* new TaskError.IdempotencyConflict({
              idempotencyKey: task.idempotencyKey,
              taskKey: existing.value.taskKey
            })
          }
        }
        return yield* new TaskError.LedgerError({
          operation: "create",
          message: `A task with key "${task.taskKey}" already exists`
        })
      })

    const transition: TaskLedger.Service["transition"] = (taskKey, from, patch) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const conditions = [sql`task_key = ${taskKey}`, ...(from.length > 0 ? [sql.in("state", from)] : [])]
        const updated = yield* sql<Row>`UPDATE ${table} SET ${sql.update({
          ...patchColumns(patch),
          updated_at: now
        })}, version = version + 1 WHERE ${sql.and(conditions)} RETURNING *`.pipe(
          Effect.mapError(ledgerError("transition"))
        )
        if (updated.length > 0) return fromRow(updated[0]!)
        const current = yield* selectOne("transition", "task_key", taskKey)
        if (Option.isNone(current)) return yield* new TaskError.UnknownTask({ reference: taskKey })
        return yield* new TaskError.StaleTransition({ taskKey, expected: [...from], actual: current.value.state })
      })

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
      return sql<Row>`SELECT * FROM ${table} WHERE ${sql.and(conditions)} ORDER BY created_at DESC, ${byKey(
        "DESC"
      )} ${limit}`.pipe(
        Effect.map((rows) => rows.map(fromRow)),
        Effect.mapError(ledgerError("list"))
      )
    }

    const claimUnfinished: TaskLedger.Service["claimUnfinished"] = (options) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const conditions: Array<Fragment> = [
          sql.in("state", TaskLedger.unfinishedStates),
          sql`(lease_owner IS NULL OR lease_owner = ${options.owner} OR lease_expires_at IS NULL OR lease_expires_at <= ${now})`
        ]
        if (options.providerId !== undefined) conditions.push(sql`provider_id = ${options.providerId}`)
        if (options.modelId !== undefined) conditions.push(sql`model_id = ${options.modelId}`)
        const limit = options.limit === undefined ? sql.literal("") : sql`LIMIT ${options.limit}`
        const lease = sql.update({
          lease_owner: options.owner,
          lease_expires_at: now + options.leaseMillis,
          updated_at: now
        })
        const rows =
          dialect === "pg"
            ? // SKIP LOCKED: a row another claimer holds is skipped, not waited for; a row it has
              // just committed is re-checked against the lease condition before we lock it.
              yield* sql<Row>`WITH picked AS (SELECT task_key FROM ${table} WHERE ${sql.and(
                conditions
              )} ORDER BY created_at ASC, ${byKey("ASC")} ${limit} FOR UPDATE SKIP LOCKED)
UPDATE ${table} SET ${lease}, version = ${table}.version + 1 FROM picked
WHERE ${table}.task_key = picked.task_key RETURNING ${table}.*`
            : // One statement: SQLite holds the write lock from the SELECT to the UPDATE.
              yield* sql<Row>`UPDATE ${table} SET ${lease}, version = version + 1 WHERE task_key IN (SELECT task_key FROM ${table} WHERE ${sql.and(
                conditions
              )} ORDER BY created_at ASC, ${byKey("ASC")} ${limit}) RETURNING *`
        return rows
          .map(fromRow)
          .sort((left, right) => left.createdAt - right.createdAt || (left.taskKey < right.taskKey ? -1 : 1))
      }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(ledgerError("claimUnfinished")(error))))

    return TaskLedger.TaskLedger.of({
      create,
      get: (taskKey) => selectOne("get", "task_key", taskKey),
      findByRemoteId: (remoteTaskId) =>
        sql<Row>`SELECT * FROM ${table} WHERE remote_task_id = ${remoteTaskId} ORDER BY created_at DESC LIMIT 1`.pipe(
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromRow)),
          Effect.mapError(ledgerError("findByRemoteId"))
        ),
      findByIdempotencyKey: (idempotencyKey) => selectOne("findByIdempotencyKey", "idempotency_key", idempotencyKey),
      transition,
      list,
      claimUnfinished
    })
  })
