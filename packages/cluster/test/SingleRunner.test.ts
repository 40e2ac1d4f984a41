// One SingleRunner process on a SQLite file, against the fake apixo server on loopback: a
// generation end to end, and SIGKILLs at several points (before, during and after a submit, while
// downloading), each followed by a restart on the same file. No task is lost, none billed twice.
import { FakeApixo } from "@reelkit/testing"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { TaskLedger } from "@reelkit/core"
import * as SqliteLedger from "@reelkit/storage/SqliteLedger"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Retention } from "../src/index.js"
import type { RunnerConfig } from "./fixtures/runner.js"
import { freePort, type Runner, startCallbackRelay, startRunner, tempDir, testSecret } from "./utils.js"

let fake: FakeApixo.Running
const runners: Array<Runner> = []

beforeAll(async () => {
  fake = await FakeApixo.start({
    timings: { processingAfter: "100 millis", completeAfter: "600 millis" },
    requestsPerMinute: 600,
    concurrentTasks: 2,
    // Callbacks go through a relay the test releases; the fake retries a refused one soon.
    callbacks: { retries: 10, retryDelay: "300 millis", timeout: "120 seconds" }
  })
})
afterAll(async () => {
  for (const runner of runners) await runner.kill()
  await fake.close()
})

const base = (dir: string, callbackPort: number, callbackBase = `http://127.0.0.1:${callbackPort}`): RunnerConfig => ({
  mode: "single",
  sqlite: join(dir, "reelkit.db"),
  fakeUrl: fake.url,
  apiKey: FakeApixo.defaultApiKey,
  storeRoot: join(dir, "store"),
  requestsPerWindow: 600,
  concurrentTasks: 2,
  pollIntervalMillis: 200,
  submitTimeoutMillis: 5_000,
  submitLeaseMillis: 1_500,
  sharding: "fast",
  // Callbacks are released once the last runner is up: an ambiguous submit unresolved by then was never created.
  ambiguousWaitMillis: 20_000,
  callbackPort,
  callbackBase,
  secret: testSecret()
})

const run = (config: RunnerConfig) => {
  const runner = startRunner(config)
  runners.push(runner)
  return runner
}

const resultsOf = (runner: Runner) =>
  runner.lines.filter((line) => line.startsWith("result ")).map((line) => line.split(" ").slice(1) as [string, string])

describe("SingleRunner on SQLite", () => {
  it("completes a generation end to end: one paid submit, outputs stored", async () => {
    const dir = tempDir("single")
    const runner = run({ ...base(dir, await freePort()), start: { prefix: "one", count: 1, wait: true } })
    await runner.waitFor((line) => line.startsWith("result "))
    const [[taskKey, state]] = resultsOf(runner)
    expect(state).toBe("completed")
    expect(taskKey).toMatch(/^wf_[0-9a-f]{32}$/)
    expect(fake.tasks.filter((task) => task.input.prompt === "clip one-0")).toHaveLength(1)
    expect(runner.lines.some((line) => line.startsWith(`step released ${taskKey} `))).toBe(true)
    await runner.kill()

    // Retention: the finished execution's cluster messages are pruned; its ledger row stays.
    const executionId = taskKey!.slice("wf_".length)
    const counts = await Effect.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const count = () =>
          Effect.map(
            sql<{ readonly n: number }>`SELECT COUNT(*) AS n FROM cluster_messages WHERE entity_id = ${executionId}`,
            (rows) => Number(rows[0]!.n)
          )
        const before = yield* count()
        const kept = yield* Retention.prune({ olderThan: Duration.hours(1) })
        const pruned = yield* Retention.prune({ olderThan: Duration.zero })
        const ledger = yield* TaskLedger.TaskLedger
        const row = yield* ledger.get(taskKey!)
        return { before, kept, pruned, after: yield* count(), state: Option.map(row, (record) => record.state) }
      }).pipe(
        Effect.provide(
          SqliteLedger.layerClient().pipe(Layer.provideMerge(SqliteClient.layer({ filename: join(dir, "reelkit.db") })))
        )
      )
    )
    expect(counts.before).toBeGreaterThan(0)
    expect(counts.kept).toBe(0)
    expect(counts.pruned).toBe(1)
    expect(counts.after).toBe(0)
    expect(counts.state).toEqual(Option.some("completed"))
  }, 60_000)

  it("refuses bad input with a typed error naming the field and the rule, before any paid request", async () => {
    const dir = tempDir("invalid")
    const generatesBefore = fake.requests.filter((request) => request.route === "generate").length
    const runner = run({
      ...base(dir, await freePort()),
      start: { prefix: "invalid", count: 1, wait: true, input: { prompt: "a cat", duration: "long" } }
    })
    const line = await runner.waitFor((text) => text.startsWith("error ") || text.startsWith("result "))
    expect(line).toMatch(/^error InvalidInput input\.duration /)
    expect(fake.requests.filter((request) => request.route === "generate")).toHaveLength(generatesBefore)
    await runner.kill()
  }, 60_000)

  it("survives SIGKILL before, during and after a submit and while downloading: no task lost, none billed twice", async () => {
    const dir = tempDir("crash")
    const callbackPort = await freePort()
    // Callbacks are held until the last runner is up: the one of the task whose runner died while
    // sending it is what resolves its ambiguous row (no timer decides when it arrives).
    const relay = await startCallbackRelay(`http://127.0.0.1:${callbackPort}`)
    const config = base(dir, callbackPort, relay.url)
    const count = 6
    const prompts = Array.from({ length: count }, (_, index) => `clip crash-${index}`)
    const startAll = { prefix: "crash", count, wait: false }
    const generatesBefore = fake.requests.filter((request) => request.route === "generate").length

    // 1. Before any submit: killed as soon as a row is reserved.
    const first = run({ ...config, start: startAll })
    await first.waitFor((line) => line.startsWith("step reserved "))
    await first.kill()

    // 2. During a submit: the fake creates (and bills) the task but holds its answer; the runner
    // dies with the row `sending`. The restart must not send it again.
    fake.addFault({ match: { route: "generate", nth: generatesBefore + 1 }, fault: FakeApixo.slow("60 seconds") })
    const second = run({ ...config, start: startAll })
    await Effect.runPromise(
      fake.waitUntil((state) =>
        state.requests.some(
          (request) => request.route === "generate" && request.status === undefined && request.fault === "Slow"
        )
      )
    )
    await second.kill()
    fake.clearFaults()

    // 3. Right after a submit is recorded.
    const third = run({ ...config, start: startAll })
    await third.waitFor((line) => line.startsWith("step submitted "))
    await third.kill()

    // 4. While downloading outputs.
    const fourth = run({ ...config, start: startAll })
    await fourth.waitFor((line) => line.startsWith("step downloading "))
    await fourth.kill()

    // 5. The last run joins every execution and waits for its result.
    const last = run({ ...config, start: { prefix: "crash", count, wait: true } })
    await last.waitFor((line) => line.startsWith("ready "))
    relay.release()
    await last.waitForCount((line) => line.startsWith("result "), count)
    const results = resultsOf(last)
    // The task caught on the wire in step 2 was created by the fake: its callback resolved it.
    const slowRequest = fake.requests.find((request) => request.route === "generate" && request.fault === "Slow")
    const slowTask = fake.tasks.find((task) => task.taskId === slowRequest?.taskId)
    expect(slowTask).toBeDefined()
    // A SIGKILL can also land while another submit is on the wire but before it left: that one
    // ends ambiguous (never re-sent automatically) and the fake has no task for it.
    const completed = results.filter(([, state]) => state === "completed")
    const ambiguous = results.filter(([, state]) => state === "ambiguous")
    expect(completed.length + ambiguous.length).toBe(count)
    const created = fake.tasks.filter((task) => prompts.includes(String(task.input.prompt)))
    for (const prompt of prompts) {
      expect(created.filter((task) => task.input.prompt === prompt).length, prompt).toBeLessThanOrEqual(1)
    }
    expect(created).toHaveLength(completed.length)
    expect(ambiguous.length).toBeLessThanOrEqual(2)
    expect(fake.requests.filter((request) => request.status === 429)).toHaveLength(0)
    expect(fake.maxConcurrentTasks()).toBeLessThanOrEqual(2)
    await last.kill()
    await relay.close()
  }, 180_000)
})
