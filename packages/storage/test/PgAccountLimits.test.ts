// The AccountLimits and SpendCap contracts on a real PostgreSQL: the machine's (127.0.0.1:5432) or
// a private cluster this run starts, in a database of its own, dropped at the end. Every holder
// has a pool of its own, as separate processes (or machines) do.
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as EffectVitest from "@effect/vitest"
import { describe, it } from "@effect/vitest"
import * as PgAccountLimits from "@reelkit/storage/PgAccountLimits"
import { AccountLimitsContract, SpendCapContract } from "@reelkit/testing"
import { Effect, Layer } from "effect"
import { afterAll, beforeAll } from "vitest"
import { findPostgres, privateDatabaseName } from "./utils.js"

const server = await findPostgres()

if ("unavailable" in server) {
  console.warn(`PgAccountLimits tests skipped: ${server.unavailable}`)
  describe.skip(`PgAccountLimits (skipped: ${server.unavailable})`, () => {
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
  const pool = () => Layer.build(PgClient.layer({ ...connection, database, maxConnections: 2 }))

  const store = Layer.succeed(AccountLimitsContract.Store, {
    makeHolder: (options) =>
      Effect.flatMap(pool(), (context) => PgAccountLimits.makeHolder(options).pipe(Effect.provide(context))).pipe(
        Effect.orDie
      )
  })
  AccountLimitsContract.suite("PgAccountLimits", store, EffectVitest)

  const spendStore = Layer.succeed(SpendCapContract.Store, {
    makeStore: (account) =>
      Effect.flatMap(pool(), (context) =>
        PgAccountLimits.makeSpendStore({ account }).pipe(Effect.provide(context))
      ).pipe(Effect.orDie)
  })
  SpendCapContract.suite("PgAccountLimits", spendStore, EffectVitest)
}
