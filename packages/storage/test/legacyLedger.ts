// Shared by the SQLite and PostgreSQL tests: a ledger written by the previous release (schema 1,
// the `submitting` state with a "#sending" suffix on lease_owner), what migration 2 must make of
// it, and rows no release ever wrote, which must be read as a typed LedgerError.
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { expect } from "@effect/vitest"
import { TaskLedger } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Migrations from "../src/internal/migrations.js"

/** A row as schema 1 stored it; unlisted columns take a plain default. */
const legacyRow = (taskKey: string, columns: Record<string, unknown>) => ({
  task_key: taskKey,
  provider_id: "legacy",
  model_id: "m",
  idempotency_key: null,
  state: "submitting",
  input: JSON.stringify({ prompt: taskKey }),
  callback_url: null,
  remote_task_id: null,
  billable_seconds: null,
  created_at: 1_700_000_000_000,
  updated_at: 1_700_000_000_000,
  submitted_at: null,
  completed_at: null,
  fail_code: null,
  fail_message: null,
  result_urls: "[]",
  result_expires_at: null,
  artifacts: "[]",
  lease_owner: null,
  lease_expires_at: null,
  version: 3,
  ...columns
})

/** Rows of each kind schema 1 could hold, with what migration 2 must turn them into. */
export const legacyRows = [
  // No lease owner: nobody can prove the POST never started, so it may be on the wire.
  { row: legacyRow("free", {}), state: "sending", leaseOwner: undefined },
  {
    row: legacyRow("was-sending", { lease_owner: "proc-1#sending", lease_expires_at: 123 }),
    state: "sending",
    leaseOwner: "proc-1"
  },
  {
    row: legacyRow("never-sent", { lease_owner: "proc-2", lease_expires_at: 456 }),
    state: "queued",
    leaseOwner: "proc-2"
  },
  {
    row: legacyRow("done", { state: "completed", remote_task_id: "legacy-r1", result_urls: '["https://cdn/v.mp4"]' }),
    state: "completed",
    leaseOwner: undefined
  }
] as const

/** Writes a ledger at schema 1 holding `rows`, on the `SqlClient` in context. */
export const writeSchemaOne = (rows: ReadonlyArray<Record<string, unknown>>) =>
  Effect.gen(function* () {
    yield* Migrator.make({})({
      loader: Migrator.fromRecord({ "1_create_tasks": Migrations.migrations["1_create_tasks"] }),
      table: Migrations.migrationsTable
    })
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    for (const row of rows) yield* sql`INSERT INTO ${sql(Migrations.tasksTable)} ${sql.insert(row)}`
  })

/** Checks that a ledger opened on the migrated schema reads every legacy row as migration 2 promises. */
export const expectMigrated = (ledger: TaskLedger.Service): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    for (const expected of legacyRows) {
      const record = Option.getOrThrow(yield* ledger.get(expected.row.task_key))
      expect(record.state).toBe(expected.state)
      expect(record.leaseOwner).toBe(expected.leaseOwner)
      expect(record.leaseExpiresAt).toBe(expected.row.lease_expires_at ?? undefined)
      expect(record.request).toBeUndefined()
      expect(record.version).toBe(3)
      expect(record.input).toEqual({ prompt: expected.row.task_key })
    }
    expect(Option.getOrThrow(yield* ledger.findByRemoteId("legacy-r1")).resultUrls).toEqual(["https://cdn/v.mp4"])
    // The unique index is in place: a second row cannot take the id.
    const duplicate = yield* Effect.flip(
      ledger.create({
        taskKey: "second",
        providerId: "legacy",
        modelId: "m",
        input: {},
        state: "submitted",
        remoteTaskId: "legacy-r1"
      })
    )
    expect(duplicate._tag).toBe("DuplicateRemoteId")
  })

/** Rows sharing a remote id, which schema 2 forbids: the upgrade must stop and say so. */
export const sharedRemoteIdRows = [
  legacyRow("first", { state: "completed", remote_task_id: "shared-r" }),
  legacyRow("second", { state: "ambiguous", remote_task_id: "shared-r" })
]

/** A row no release wrote: an unknown state, artifacts that are not JSON, a secret in its input. */
export const corruptRow = (taskKey: string) =>
  legacyRow(taskKey, {
    state: "bogus",
    artifacts: "not json sk-secret-in-artifacts",
    input: JSON.stringify({ apiKey: "sk-secret-in-input" }),
    request: null
  })

/** Checks that reading `corruptRow(taskKey)` is a LedgerError naming the bad column and no value. */
export const expectCorruptRowRefused = (ledger: TaskLedger.Service, taskKey: string): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const byGet = yield* Effect.flip(ledger.get(taskKey))
    const byList = yield* Effect.flip(ledger.list({ providerId: "legacy" }))
    for (const error of [byGet, byList]) {
      expect(error._tag).toBe("LedgerError")
      expect(error.message).toContain("state: Expected")
      expect(error.message).not.toContain("sk-secret")
      expect(error.message).not.toContain("bogus")
    }
  })
