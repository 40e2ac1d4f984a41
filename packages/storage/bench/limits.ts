// AccountLimits benchmark: the cost of one `takeRequest` on each shared store (a SQLite file, the
// machine's PostgreSQL, Redis) beside the in-memory budget, measured in the same run. The window is
// 1 ms with no margin, so no take ever waits and each one also expires the previous entries (what
// a busy account's takes do). One holder, sequential takes: the latency a caller sees. Prints
// figures only.
//
//   pnpm --filter @reelkit/storage bench:limits        (BENCH_TAKES=5000 for more)
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { AccountLimits } from "@reelkit/core"
import { Duration, Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { createConnection } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as PgAccountLimits from "../src/PgAccountLimits.js"
import * as RedisAccountLimits from "../src/RedisAccountLimits.js"
import * as SqliteAccountLimits from "../src/SqliteAccountLimits.js"

const takes = Number(process.env.BENCH_TAKES ?? 2000)
const options = {
  requestsPerWindow: 1_000_000,
  window: Duration.millis(1),
  marginMillis: 0,
  account: `bench-${randomBytes(4).toString("hex")}`
}
const dir = mkdtempSync(join(tmpdir(), "reelkit-bench-limits-"))

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

// Warms up, then times `takes` sequential takes; microseconds per take.
const measure = (limits: AccountLimits.Service) =>
  Effect.gen(function* () {
    for (let index = 0; index < 100; index++) yield* limits.takeRequest
    const started = performance.now()
    for (let index = 0; index < takes; index++) yield* limits.takeRequest
    return ((performance.now() - started) * 1000) / takes
  })

const onLayer = <E>(layer: Layer.Layer<AccountLimits.AccountLimits, E>) =>
  Effect.scoped(
    Effect.flatMap(Layer.build(layer), (context) =>
      measure(context.unsafeMap.get(AccountLimits.AccountLimits.key) as AccountLimits.Service)
    )
  )

const program = Effect.gen(function* () {
  const rows: Array<[string, number | string]> = []
  const memory = yield* onLayer(AccountLimits.layerMemory(options))
  rows.push(["memory (one process)", memory])
  rows.push([
    "SQLite file",
    yield* onLayer(SqliteAccountLimits.layer({ ...options, filename: join(dir, "bench.sqlite") }))
  ])
  if (yield* Effect.promise(() => answers(5432))) {
    const database = `reelkit_bench_${randomBytes(4).toString("hex")}`
    const admin = (statement: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(
        Effect.provide(PgClient.layer({ host: "127.0.0.1", port: 5432, username: "postgres", database: "postgres" }))
      )
    yield* admin(`CREATE DATABASE ${database}`)
    rows.push([
      "PostgreSQL (127.0.0.1:5432)",
      yield* onLayer(
        PgAccountLimits.layer({
          ...options,
          connection: { host: "127.0.0.1", port: 5432, username: "postgres", database }
        })
      )
    ])
    yield* admin(`DROP DATABASE ${database} WITH (FORCE)`)
  } else rows.push(["PostgreSQL", "skipped: nothing answers on 127.0.0.1:5432"])
  if (yield* Effect.promise(() => answers(6379))) {
    rows.push([
      "Redis (127.0.0.1:6379)",
      yield* onLayer(
        RedisAccountLimits.layer({ ...options, connection: "redis://127.0.0.1:6379", prefix: "reelkit-bench:" })
      )
    ])
  } else rows.push(["Redis", "skipped: nothing answers on 127.0.0.1:6379"])
  console.log(`One takeRequest, ${takes} sequential takes per store (window 1 ms: nothing waits):`)
  for (const [name, value] of rows) {
    console.log(
      typeof value === "string"
        ? `  ${name.padEnd(30)} ${value}`
        : `  ${name.padEnd(30)} ${value.toFixed(1).padStart(9)} µs/take  ${(1e6 / value).toFixed(0).padStart(8)} takes/s  ${(value / memory).toFixed(0).padStart(6)}x memory`
    )
  }
})

Effect.runPromise(
  program.pipe(Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))
).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
