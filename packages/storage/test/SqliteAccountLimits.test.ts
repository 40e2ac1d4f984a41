// The AccountLimits and SpendCap contracts on a real SQLite file: every holder opens the file with
// a connection of its own, as separate processes on one REELKIT_HOME do.
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as EffectVitest from "@effect/vitest"
import * as SqliteAccountLimits from "@reelkit/storage/SqliteAccountLimits"
import { AccountLimitsContract, SpendCapContract } from "@reelkit/testing"
import { Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"

const dir = mkdtempSync(join(tmpdir(), "reelkit-limits-sqlite-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const filename = join(dir, "ledger.sqlite")

const store = Layer.succeed(AccountLimitsContract.Store, {
  makeHolder: (options) =>
    Effect.flatMap(Layer.build(SqliteClient.layer({ filename })), (context) =>
      SqliteAccountLimits.makeHolder(options).pipe(Effect.provide(context))
    ).pipe(Effect.orDie)
})

AccountLimitsContract.suite("SqliteAccountLimits", store, EffectVitest)

const spendStore = Layer.succeed(SpendCapContract.Store, {
  makeStore: (account) =>
    Effect.flatMap(Layer.build(SqliteClient.layer({ filename })), (context) =>
      SqliteAccountLimits.makeSpendStore({ account }).pipe(Effect.provide(context))
    ).pipe(Effect.orDie)
})

SpendCapContract.suite("SqliteAccountLimits", spendStore, EffectVitest)
