// PgLedger against a real PostgreSQL on loopback: the machine's (127.0.0.1:5432) or a private
// cluster this run starts. Each run works in a database of its own, dropped at the end.
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as EffectVitest from "@effect/vitest"
import { describe, expect, it } from "@effect/vitest"
import { TaskLedger } from "@reelkit/core"
import * as PgLedger from "@reelkit/storage/PgLedger"
import { TaskLedgerContract } from "@reelkit/testing"
import { Context, Effect, Either, Layer, Option } from "effect"
import { afterAll, beforeAll } from "vitest"
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

  TaskLedgerContract.suite("PgLedger", ledgerLayer(), EffectVitest)

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

    it.scoped("two pools racing one conditional transition: exactly one wins", () =>
      Effect.gen(function* () {
        const [first, second] = yield* twoLedgers
        const taskKey = `race-${database}`
        yield* first.create({ taskKey, providerId: "race", modelId: "m", input: {} })
        const results = yield* Effect.all(
          Array.from({ length: 10 }, (_, index) =>
            Effect.either(
              (index % 2 === 0 ? first : second).transition(taskKey, ["submitting"], {
                state: "submitted",
                remoteTaskId: `r-${index}`
              })
            )
          ),
          { concurrency: "unbounded" }
        )
        expect(results.filter(Either.isRight).length).toBe(1)
        const unconditional = yield* Effect.all(
          Array.from({ length: 40 }, (_, index) =>
            (index % 2 === 0 ? first : second).transition(taskKey, [], { failMessage: `m${index}` })
          ),
          { concurrency: "unbounded" }
        )
        expect(unconditional.length).toBe(40)
        expect(Option.getOrThrow(yield* second.get(taskKey)).version).toBe(42)
      })
    )
  })
}
