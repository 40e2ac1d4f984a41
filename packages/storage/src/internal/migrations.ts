// The ledger schema, shared by SQLite and PostgreSQL: one table, portable types (times as BIGINT
// epoch milliseconds, JSON as TEXT), so both adapters run the same migrations through @effect/sql's
// Migrator under their own migrations table.
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

/** The ledger's table. */
export const tasksTable = "reelkit_tasks"

/** The Migrator's bookkeeping table, separate from the application's own migrations. */
export const migrationsTable = "reelkit_migrations"

const createTasks = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE TABLE ${tasksTable} (
  task_key TEXT PRIMARY KEY NOT NULL,
  provider_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  idempotency_key TEXT UNIQUE,
  state TEXT NOT NULL,
  input TEXT NOT NULL,
  callback_url TEXT,
  remote_task_id TEXT,
  billable_seconds DOUBLE PRECISION,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  submitted_at BIGINT,
  completed_at BIGINT,
  fail_code TEXT,
  fail_message TEXT,
  result_urls TEXT NOT NULL,
  result_expires_at BIGINT,
  artifacts TEXT NOT NULL,
  lease_owner TEXT,
  lease_expires_at BIGINT,
  version BIGINT NOT NULL
)`)
  // The dashboard queries: by state, by provider/model, by time (all newest first), by remote id.
  yield* sql.unsafe(`CREATE INDEX ${tasksTable}_state_created ON ${tasksTable} (state, created_at)`)
  yield* sql.unsafe(`CREATE INDEX ${tasksTable}_provider_created ON ${tasksTable} (provider_id, model_id, created_at)`)
  yield* sql.unsafe(`CREATE INDEX ${tasksTable}_created ON ${tasksTable} (created_at)`)
  yield* sql.unsafe(`CREATE INDEX ${tasksTable}_remote ON ${tasksTable} (remote_task_id)`)
})

/** The unique index on remote task ids (two rows never share one). */
export const remoteTaskIdIndex = `${tasksTable}_remote_task_id`

/** Why migration 2 cannot run: rows already share a remote task id, which the new unique index forbids. */
export class DuplicateRemoteIds extends Error {
  constructor(readonly remoteTaskIds: ReadonlyArray<string>) {
    super(
      `rows of ${tasksTable} share remote task ids (${remoteTaskIds.join(", ")}); give each id to one row ` +
        "(clear remote_task_id on the others) before upgrading"
    )
  }
}

// Issue 11: the paid request is stored with the row; the submit phase becomes a state of its own
// (`submitting` with a "#sending" suffix on lease_owner was "maybe on the wire", now `sending`;
// without it the POST provably had not started, now `queued`; a row without any lease owner cannot
// prove it, so it is `sending` and never re-sent automatically); remote task ids become unique.
const fencedWrites = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const shared = yield* sql.unsafe<{ readonly remote_task_id: string }>(
    `SELECT remote_task_id FROM ${tasksTable} WHERE remote_task_id IS NOT NULL
GROUP BY remote_task_id HAVING COUNT(*) > 1 ORDER BY remote_task_id`
  )
  if (shared.length > 0) return yield* Effect.fail(new DuplicateRemoteIds(shared.map((row) => row.remote_task_id)))
  yield* sql.unsafe(`ALTER TABLE ${tasksTable} ADD COLUMN request TEXT`)
  yield* sql.unsafe(`UPDATE ${tasksTable} SET state = 'sending', lease_owner = CASE WHEN lease_owner IS NULL THEN NULL
  ELSE substr(lease_owner, 1, length(lease_owner) - ${"#sending".length}) END
WHERE state = 'submitting' AND (lease_owner IS NULL OR lease_owner LIKE '%#sending')`)
  yield* sql.unsafe(`UPDATE ${tasksTable} SET state = 'queued' WHERE state = 'submitting'`)
  yield* sql.unsafe(`DROP INDEX ${tasksTable}_remote`)
  yield* sql.unsafe(`CREATE UNIQUE INDEX ${remoteTaskIdIndex} ON ${tasksTable} (remote_task_id)`)
})

/** Every migration, by `<id>_<name>`. Append only: never edit a released one. */
export const migrations = {
  "1_create_tasks": createTasks,
  "2_fenced_writes": fencedWrites
}

/** Runs the pending migrations with @effect/sql's Migrator. */
export const run = Migrator.make({})({
  loader: Migrator.fromRecord(migrations),
  table: migrationsTable
})

/** The id of the newest migration, to check that a database is fully migrated. */
export const latestId = Math.max(...Object.keys(migrations).map((name) => Number(name.split("_")[0])))
