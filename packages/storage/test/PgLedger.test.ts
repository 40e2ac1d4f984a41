// PgLedger against a real PostgreSQL on loopback: the machine's (127.0.0.1:5432) or a private
// cluster this run starts. Each run works in a database of its own, dropped at the end.
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as EffectVitest from "@effect/vitest"
import { describe, expect, it } from "@effect/vitest"
import { TaskError, TaskLedger } from "@reelkit/core"
import * as PgLedger from "@reelkit/storage/PgLedger"
import { TaskLedgerContract } from "@reelkit/testing"
import { Context, Effect, Either, Layer, Option } from "effect"
import { afterAll, beforeAll } from "vitest"
import * as Migrations from "../src/internal/migrations.js"
import {
  corruptRow,
  expectCorruptRowRefused,
  expectMigrated,
  legacyRows,
  sharedRemoteIdRows,
  writeSchemaOne
} from "./legacyLedger.js"
import { findPostgres, privateDatabaseName } from "./utils.js"

const server = await findPostgres()

if ("unavailable" in server) {
  console.warn(`PgLedger tests skipped: ${server.unavailable}`)
  describe.skip(`PgLedger (skipped: ${server.unavailable})`, () => {
    it("needs a PostgreSQL server", () => undefined)
  })
} else {
  const database = privateDatabaseName()
  const connection = { host: server.host, port: server.port, username: "postgres" }
  const admin = (statement: string) =>
    Effect.runPromise(
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(
        Effect.provide(PgClient.layer({ ...connection, database: "postgres" }))
      )
    )
  beforeAll(() => admin(`CREATE DATABASE ${database}`))
  afterAll(async () => {
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    server.stop()
  })

  const ledgerLayer = () => PgLedger.layer({ ...connection, database, maxConnections: 8 })

  // A fresh database of its own for one test (e.g. at an older schema), dropped afterwards.
  const withDatabase = <A, E>(
    use: (layers: {
      readonly client: Layer.Layer<SqlClient.SqlClient, unknown>
      readonly ledger: Layer.Layer<TaskLedger.TaskLedger, TaskError.LedgerError>
    }) => Effect.Effect<A, E>
  ) => {
    const name = privateDatabaseName()
    return Effect.acquireUseRelease(
      Effect.promise(() => admin(`CREATE DATABASE ${name}`)),
      () =>
        use({
          client: PgClient.layer({ ...connection, database: name, maxConnections: 1 }),
          ledger: PgLedger.layer({ ...connection, database: name, maxConnections: 2 })
        }),
      () => Effect.promise(() => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    )
  }

  // A second pool on the same database, as another process would have: the contract's racing and
  // lease-taking writers use it.
  TaskLedgerContract.suite("PgLedger", ledgerLayer(), EffectVitest, { other: ledgerLayer() })

  // Two ledgers, each with its own connection pool, as two processes would have.
  const buildLedger = Effect.map(Layer.build(ledgerLayer()), (context) => Context.get(context, TaskLedger.TaskLedger))
  const twoLedgers = Effect.all([buildLedger, buildLedger])

  describe("PgLedger", () => {
    it.scoped("two pools claiming at once never claim the same task, and together claim every one", () =>
      Effect.gen(function* () {
        const [first, second] = yield* twoLedgers
        const providerId = `claims-${database}`
        for (let index = 0; index < 30; index++) {
          yield* first.create({ taskKey: `${providerId}-${index}`, providerId, modelId: "m", input: { index } })
        }
        // Twelve claimers, six per pool, each taking up to three tasks, all at once.
        const claims = yield* Effect.all(
          Array.from({ length: 12 }, (_, index) =>
            (index % 2 === 0 ? first : second).claimUnfinished({
              owner: `owner-${index}`,
              leaseMillis: 60_000,
              providerId,
              limit: 3
            })
          ),
          { concurrency: "unbounded" }
        )
        const claimed = claims.flatMap((records) => records.map((record) => record.taskKey))
        expect(new Set(claimed).size).toBe(claimed.length)
        const rest = yield* second.claimUnfinished({ owner: "last", leaseMillis: 60_000, providerId })
        const everything = [...claimed, ...rest.map((record) => record.taskKey)]
        expect(new Set(everything).size).toBe(30)
        expect(everything.length).toBe(30)
        for (const taskKey of everything) {
          expect(Option.getOrThrow(yield* first.get(taskKey)).version).toBe(2)
        }
      })
    )

    it.scoped("two pools racing one fenced write: exactly one wins; read-modify-write loops lose no update", () =>
      Effect.gen(function* () {
        const [first, second] = yield* twoLedgers
        const taskKey = `race-${database}`
        const { record } = yield* first.create({ taskKey, providerId: "race", modelId: "m", input: {} })
        const results = yield* Effect.all(
          Array.from({ length: 10 }, (_, index) =>
            Effect.either(
              (index % 2 === 0 ? first : second).transition(TaskLedger.fence(record, `w-${index}`), {
                state: "sending"
              })
            )
          ),
          { concurrency: "unbounded" }
        )
        expect(results.filter(Either.isRight).length).toBe(1)
        // Every writer re-reads and retries when another moved the row on first.
        const marks = Array.from({ length: 20 }, (_, index) => `m${index}`)
        yield* Effect.all(
          marks.map((mark, index) =>
            TaskLedgerContract.readModifyWrite(index % 2 === 0 ? first : second, taskKey, mark, (current) => ({
              resultUrls: [...current.resultUrls, mark]
            }))
          ),
          { concurrency: "unbounded", discard: true }
        )
        const final = Option.getOrThrow(yield* second.get(taskKey))
        expect(final.version).toBe(2 + marks.length)
        expect([...final.resultUrls].sort()).toEqual([...marks].sort())
      })
    )

    it.effect("migration 2 renames the submit states, keeps every row and makes remote ids unique", () =>
      withDatabase((layer) =>
        Effect.gen(function* () {
          yield* Effect.provide(writeSchemaOne(legacyRows.map((legacy) => legacy.row)), layer.client)
          yield* Effect.flatMap(TaskLedger.TaskLedger, expectMigrated).pipe(Effect.provide(layer.ledger))
        })
      )
    )

    it.effect(
      "a database whose rows share a remote id is not upgraded: opening it fails with a LedgerError naming the id",
      () =>
        withDatabase((layer) =>
          Effect.gen(function* () {
            yield* Effect.provide(writeSchemaOne(sharedRemoteIdRows), layer.client)
            const error = yield* Effect.flip(
              Effect.flatMap(TaskLedger.TaskLedger, (ledger) => ledger.list()).pipe(Effect.provide(layer.ledger))
            )
            expect(error._tag).toBe("LedgerError")
            expect(error.message).toContain("shared-r")
            // The migration ran in a transaction: the schema and the rows are as they were.
            const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
              Effect.all([
                sql.unsafe(`SELECT MAX(migration_id) AS latest FROM ${Migrations.migrationsTable}`),
                sql.unsafe(
                  `SELECT column_name FROM information_schema.columns WHERE table_name = '${Migrations.tasksTable}' AND column_name = 'request'`
                )
              ])
            ).pipe(Effect.provide(layer.client))
            expect(rows).toEqual([[{ latest: 1 }], []])
          })
        )
    )

    it.effect("a row that does not match the schema is read as a LedgerError naming the column, never its values", () =>
      Effect.gen(function* () {
        const taskKey = `corrupt-${database}`
        yield* Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql`INSERT INTO ${sql(Migrations.tasksTable)} ${sql.insert(corruptRow(taskKey))}`
        ).pipe(Effect.provide(PgClient.layer({ ...connection, database })))
        yield* Effect.flatMap(TaskLedger.TaskLedger, (ledger) => expectCorruptRowRefused(ledger, taskKey)).pipe(
          Effect.provide(ledgerLayer())
        )
      })
    )
  })
}
