// One account budget across real processes. Eight processes on one SQLite file (one REELKIT_HOME)
// and three on one PostgreSQL database each start several tasks at once against one FakeApixo
// that enforces the same limits as the clients (10 requests per sliding 2 s window, 3 concurrent
// tasks: apixo's limits scaled down in time). Every task must succeed without a single 429 and
// the fake must never see more than the limits. Then: a slot holder killed with SIGKILL frees its
// slots within the lease, and the spend cap refuses a start with nothing sent. Processes say when
// they are ready and when they are done; the test waits for those lines, never for time.
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it } from "@effect/vitest"
import { AccountLimits } from "@reelkit/core"
import * as SqliteAccountLimits from "@reelkit/storage/SqliteAccountLimits"
import { FakeApixo } from "@reelkit/testing"
import { Duration, Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import { bundleFixture, findPostgres, lines, privateDatabaseName, spawnBundle, spawnFixture } from "./utils.js"

const dir = mkdtempSync(join(tmpdir(), "reelkit-budget-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// Eleven clients would each transpile the workspace under tsx; one bundle starts them in a blink.
let budgetClient = ""
beforeAll(async () => {
  budgetClient = await bundleFixture("budgetClient")
}, 60_000)

const limits = { requestsPerWindow: 10, windowMillis: 2_000, concurrentTasks: 3, leaseMillis: 2_000 }

const startFake = () =>
  FakeApixo.start({
    requestsPerMinute: limits.requestsPerWindow,
    rateWindow: Duration.millis(limits.windowMillis),
    concurrentTasks: limits.concurrentTasks,
    timings: { processingAfter: Duration.millis(300), completeAfter: Duration.millis(800) }
  })

type Store =
  | { readonly kind: "sqlite"; readonly filename: string }
  | { readonly kind: "pg"; readonly host: string; readonly port: number; readonly database: string }

interface TaskLine {
  readonly task: string
  readonly state?: string
  readonly error?: string
}

/** Runs `count` client processes on one store, starts them together, and collects their task lines. */
const runClients = async (
  fake: FakeApixo.Running,
  store: Store,
  count: number,
  tasks: number,
  extra: { readonly durationSeconds?: number; readonly secondsPerDay?: number } = {}
): Promise<Array<TaskLine>> => {
  const children = Array.from({ length: count }, (_, index) => {
    const child = spawnBundle(budgetClient, [
      JSON.stringify({
        name: `${store.kind}-p${index}`,
        store,
        baseUrl: fake.url,
        apiKey: FakeApixo.defaultApiKey,
        tasks,
        durationSeconds: extra.durationSeconds ?? 4,
        limits,
        pollMillis: 400,
        secondsPerDay: extra.secondsPerDay
      })
    ])
    return { child, output: lines(child) }
  })
  try {
    const spawnedAt = Date.now()
    await Promise.all(children.map(({ output }) => output.waitFor((line) => line === "ready")))
    const readyAt = Date.now()
    for (const { child } of children) child.stdin!.write("go\n")
    await Promise.all(children.map(({ output }) => output.waitFor((line) => line === "done")))
    console.info(
      `${count} ${store.kind} processes: ready after ${readyAt - spawnedAt} ms, done ${Date.now() - readyAt} ms later`
    )
    const codes = await Promise.all(children.map(({ output }) => output.exited))
    expect(codes.every((code) => code === 0)).toBe(true)
    return children.flatMap(({ output }) =>
      output.seen.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as TaskLine)
    )
  } finally {
    for (const { child } of children) if (child.exitCode === null) child.kill("SIGKILL")
  }
}

const expectWithinLimits = (fake: FakeApixo.Running, taskLines: ReadonlyArray<TaskLine>, expected: number) => {
  expect(taskLines.length).toBe(expected)
  expect(taskLines.filter((line) => line.state !== "completed")).toEqual([])
  expect(fake.tasks.length).toBe(expected)
  const refused = fake.requests.filter((request) => request.status === 429)
  const context = refused.map((request) => ({
    route: request.route,
    at: request.at,
    window: fake.requests
      .filter((other) => other.at > request.at - limits.windowMillis - 500 && other.at <= request.at)
      .map((other) => `${other.route}@${other.at - request.at}:${other.status}`),
    activeTasks: fake.tasks.filter((task) => task.createdAt <= request.at && task.completedAt > request.at).length
  }))
  expect(context).toEqual([])
  expect(fake.maxConcurrentTasks()).toBeLessThanOrEqual(limits.concurrentTasks)
  expect(fake.maxRequestsPerWindow()).toBeLessThanOrEqual(limits.requestsPerWindow)
  // The budget was contended: the runs reached the concurrency limit.
  expect(fake.maxConcurrentTasks()).toBe(limits.concurrentTasks)
  console.info(
    `${expected} tasks: ${fake.requests.length} requests, at most ${fake.maxRequestsPerWindow()} per ${limits.windowMillis} ms, ${fake.maxConcurrentTasks()} concurrent, 0 refused`
  )
}

describe("one account budget across processes", () => {
  it("8 processes on one SQLite file: every task succeeds, no 429, never over the limits", async () => {
    const fake = await startFake()
    try {
      const taskLines = await runClients(fake, { kind: "sqlite", filename: join(dir, "home", "ledger.sqlite") }, 8, 2)
      expectWithinLimits(fake, taskLines, 16)
    } finally {
      await fake.close()
    }
  }, 180_000)

  it("3 processes on one PostgreSQL database: every task succeeds, no 429, never over the limits", async (context) => {
    const server = await findPostgres()
    if ("unavailable" in server) {
      console.warn(`skipped: ${server.unavailable}`)
      context.skip()
      return
    }
    const database = privateDatabaseName()
    const admin = (statement: string) =>
      Effect.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(
          Effect.provide(
            PgClient.layer({ host: server.host, port: server.port, username: "postgres", database: "postgres" })
          )
        )
      )
    await admin(`CREATE DATABASE ${database}`)
    const fake = await startFake()
    try {
      const taskLines = await runClients(fake, { kind: "pg", host: server.host, port: server.port, database }, 3, 3)
      expectWithinLimits(fake, taskLines, 9)
    } finally {
      await fake.close()
      await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
      server.stop()
    }
  }, 180_000)

  it("a holder killed with SIGKILL: its task's slot is re-taken at once, its other slot frees within the lease", async () => {
    const filename = join(dir, "killed", "ledger.sqlite")
    const leaseMillis = 1_500
    const holder = spawnFixture("slotHolder", [filename, String(leaseMillis), "2", "task-a", "task-x"])
    const output = lines(holder)
    await output.waitFor((line) => line === "held")
    holder.kill("SIGKILL")
    await output.exited
    const killedAt = Date.now()
    const program = Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ task_key: string; expires_at: number }>`SELECT task_key, expires_at
        FROM reelkit_limit_slots WHERE account = 'default' ORDER BY task_key`
      // Leases were last renewed before the kill: they end within one lease of it.
      expect(rows.map((row) => row.task_key)).toEqual(["task-a", "task-x"])
      for (const row of rows) expect(Number(row.expires_at)).toBeLessThanOrEqual(killedAt + leaseMillis)
      const limits = yield* AccountLimits.AccountLimits
      // reconcile re-takes the dead process's task: the same task's slot moves here, no wait.
      yield* limits.acquireTaskSlot("task-a")
      expect(yield* limits.holdsTaskSlot("task-a")).toBe(true)
      // A new task waits for the dead holder's other slot to run out, and gets it.
      yield* limits.acquireTaskSlot("task-b")
      const gotAt = Date.now()
      const xExpiry = Number(rows.find((row) => row.task_key === "task-x")!.expires_at)
      expect(gotAt).toBeGreaterThanOrEqual(xExpiry)
      const snapshot = yield* limits.snapshot
      expect(snapshot.tasksInFlight).toBe(2)
      expect(yield* limits.holdsTaskSlot("task-x")).toBe(false)
    })
    await Effect.runPromise(
      Effect.scoped(
        program.pipe(
          Effect.provide(SqliteAccountLimits.layerClient({ leaseMillis, concurrentTasks: 2, slotPollMillis: 50 })),
          Effect.provide(SqliteClient.layer({ filename }))
        )
      )
    )
  }, 60_000)

  it("the spend cap refuses a start that would exceed it, with nothing sent", async () => {
    const fake = await startFake()
    try {
      // 8 seconds a day; each task bills 5: one fits, the other is refused before any request.
      const taskLines = await runClients(
        fake,
        { kind: "sqlite", filename: join(dir, "capped", "ledger.sqlite") },
        1,
        2,
        {
          durationSeconds: 5,
          secondsPerDay: 8
        }
      )
      expect(taskLines.map((line) => line.state ?? line.error).sort()).toEqual(["SpendCapExceeded", "completed"])
      expect(fake.requests.filter((request) => request.route === "generate").length).toBe(1)
      expect(fake.tasks.length).toBe(1)
      expect(fake.billedSeconds()).toBe(5)
    } finally {
      await fake.close()
    }
  }, 60_000)
})
