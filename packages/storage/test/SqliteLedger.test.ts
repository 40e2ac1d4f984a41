import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as EffectVitest from "@effect/vitest"
import { describe, expect, it } from "@effect/vitest"
import { TaskLedger } from "@reelkit/core"
import * as SqliteLedger from "@reelkit/storage/SqliteLedger"
import { TaskLedgerContract } from "@reelkit/testing"
import { Effect, Option } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import * as Migrations from "../src/internal/migrations.js"
import {
  corruptRow,
  expectCorruptRowRefused,
  expectMigrated,
  legacyRows,
  sharedRemoteIdRows,
  writeSchemaOne
} from "./legacyLedger.js"
import { lines, spawnFixture } from "./utils.js"

const dir = mkdtempSync(join(tmpdir(), "reelkit-sqlite-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// Two SQLite clients on one file, as two processes would have: the contract's racing and
// lease-taking writers use the second.
const contractFile = join(dir, "contract.db")
TaskLedgerContract.suite("SqliteLedger", SqliteLedger.layer({ filename: contractFile }), EffectVitest, {
  other: SqliteLedger.layer({ filename: contractFile })
})

const withLedger = <A, E>(filename: string, use: (ledger: TaskLedger.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(TaskLedger.TaskLedger, use).pipe(Effect.provide(SqliteLedger.layer({ filename })))

const withClient = <A, E>(filename: string, use: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.provide(use, SqliteClient.layer({ filename }))

describe("SqliteLedger", () => {
  it.effect("keeps every row across reopening the file", () =>
    Effect.gen(function* () {
      // In a directory that does not exist yet: the layer creates it.
      const filename = join(dir, "nested", "deeper", "reopen.db")
      yield* withLedger(filename, (ledger) =>
        Effect.gen(function* () {
          const { record } = yield* ledger.create({
            taskKey: "tk_1",
            providerId: "p",
            modelId: "m",
            idempotencyKey: "k",
            input: { a: 1 }
          })
          const sending = yield* ledger.transition(TaskLedger.fence(record, "w"), { state: "sending" })
          yield* ledger.transition(TaskLedger.fence(sending, "w"), { state: "submitted", remoteTaskId: "r1" })
        })
      )
      const reopened = yield* withLedger(filename, (ledger) => ledger.findByRemoteId("r1"))
      expect(Option.getOrThrow(reopened).taskKey).toBe("tk_1")
      expect(Option.getOrThrow(reopened).state).toBe("submitted")
      expect(Option.getOrThrow(reopened).version).toBe(3)
    })
  )

  it.effect("migration 2 renames the submit states, keeps every row and makes remote ids unique", () =>
    Effect.gen(function* () {
      const filename = join(dir, "legacy.db")
      yield* withClient(filename, writeSchemaOne(legacyRows.map((legacy) => legacy.row)))
      yield* withLedger(filename, expectMigrated)
      const latest = yield* withClient(
        filename,
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.unsafe(`SELECT MAX(migration_id) AS latest FROM ${Migrations.migrationsTable}`)
        )
      )
      expect(latest).toEqual([{ latest: Migrations.latestId }])
    })
  )

  it.effect(
    "a file whose rows share a remote id is not upgraded: opening it fails with a LedgerError naming the id",
    () =>
      Effect.gen(function* () {
        const filename = join(dir, "shared-remote.db")
        yield* withClient(filename, writeSchemaOne(sharedRemoteIdRows))
        const error = yield* Effect.flip(withLedger(filename, (ledger) => ledger.list()))
        expect(error._tag).toBe("LedgerError")
        expect(error.message).toContain("shared-r")
        // Nothing of migration 2 was applied: the rows are as they were, under schema 1.
        const rows = yield* withClient(
          filename,
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.all([
              sql.unsafe(`SELECT MAX(migration_id) AS latest FROM ${Migrations.migrationsTable}`),
              sql.unsafe(`SELECT task_key, state FROM ${Migrations.tasksTable} ORDER BY task_key`)
            ])
          )
        )
        expect(rows).toEqual([
          [{ latest: 1 }],
          [
            { task_key: "first", state: "completed" },
            { task_key: "second", state: "ambiguous" }
          ]
        ])
      })
  )

  it.effect("a row that does not match the schema is read as a LedgerError naming the column, never its values", () =>
    Effect.gen(function* () {
      const filename = join(dir, "corrupt.db")
      yield* withLedger(filename, (ledger) => ledger.list())
      yield* withClient(
        filename,
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql`INSERT INTO ${sql(Migrations.tasksTable)} ${sql.insert(corruptRow("corrupt"))}`
        )
      )
      yield* withLedger(filename, (ledger) => expectCorruptRowRefused(ledger, "corrupt"))
    })
  )

  it.effect(
    "two processes on one file: one create per idempotency key, one sender per task, no lost update, a lost lease refused, disjoint claims",
    () =>
      Effect.gen(function* () {
        const filename = join(dir, "shared.db")
        const rounds = 10
        // Tasks for the claim race, written before the children start.
        yield* withLedger(filename, (ledger) =>
          Effect.forEach(
            Array.from({ length: 40 }, (_, index) => index),
            (index) => ledger.create({ taskKey: `claim-${index}`, providerId: "claims", modelId: "m", input: {} })
          ).pipe(
            // Tasks worker-a held under a lease that has long expired: worker-a is a stalled process.
            Effect.zipRight(
              Effect.forEach(
                Array.from({ length: 5 }, (_, index) => index),
                (index) =>
                  ledger.create({
                    taskKey: `lost-${index}`,
                    providerId: "lost",
                    modelId: "m",
                    input: {},
                    leaseOwner: "worker-a",
                    leaseExpiresAt: 1
                  })
              )
            )
          )
        )
        const children = ["worker-a", "worker-b"].map((worker) => {
          const child = spawnFixture("sqliteHammer", [filename, worker, String(rounds)])
          return { worker, child, output: lines(child) }
        })
        // Start each phase in both children at once, when both are ready for it.
        for (const phase of ["create", "hammer", "takeover", "late", "claim"]) {
          yield* Effect.promise(() =>
            Promise.all(children.map(({ output }) => output.waitFor((line) => line === `${phase}?`)))
          )
          for (const { child } of children) child.stdin!.write(`${phase}\n`)
        }
        const results = yield* Effect.promise(() =>
          Promise.all(
            children.map(async ({ worker, output }) => {
              const line = await output.waitFor((text) => text.startsWith("{"))
              expect(await output.exited).toBe(0)
              return {
                worker,
                ...(JSON.parse(line) as {
                  created: number
                  sent: Array<string>
                  claimed: Array<string>
                  lateRefusedBy: Array<string | null>
                  takenOverSent: number
                })
              }
            })
          )
        )
        // Thirty idempotency keys, raced by two processes: exactly thirty rows, each sent by one.
        expect(results.reduce((sum, result) => sum + result.created, 0)).toBe(30)
        const senders = results.flatMap((result) => result.sent.map((taskKey) => ({ taskKey, worker: result.worker })))
        expect(senders.length).toBe(30)
        expect(new Set(senders.map((sender) => sender.taskKey)).size).toBe(30)
        // A process that lost its lease can neither write nor send: every late write of worker-a
        // was refused, naming the new holder, and worker-b sent each task it took over.
        const [workerA, workerB] = results
        expect(workerA!.lateRefusedBy).toEqual(Array.from({ length: 5 }, () => "worker-b"))
        expect(workerB!.takenOverSent).toBe(5)
        const lost = yield* withLedger(filename, (ledger) => ledger.list({ providerId: "lost" }))
        expect(lost.map((row) => [row.state, row.leaseOwner, row.version])).toEqual(
          Array.from({ length: 5 }, () => ["sending", "worker-b", 3])
        )
        const claimed = results.flatMap((result) => result.claimed)
        expect(new Set(claimed).size).toBe(claimed.length)
        expect(claimed.length).toBe(40)
        const rows = yield* withLedger(filename, (ledger) => ledger.list({ providerId: "hammer" }))
        expect(rows.length).toBe(30)
        for (const row of rows) {
          // create (1) + sending (1) + submitted (1) + every read-modify-write of both workers.
          expect(row.version).toBe(3 + 2 * rounds)
          const sender = senders.find((candidate) => candidate.taskKey === row.taskKey)!.worker
          expect(row.remoteTaskId).toBe(`${sender}-${row.taskKey}`)
          expect(row.resultUrls.length).toBe(2 * rounds)
        }
      }),
    60_000
  )
})
