// One SingleRunner process on a SQLite file, against the fake apixo server on loopback: a
// generation end to end, and SIGKILLs at several points (before, during and after a submit, while
// downloading), each followed by a restart on the same file. No task is lost, none billed twice.
import { FakeApixo } from "@reelkit/testing"
import * as Effect from "effect/Effect"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
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
    expect(runner.lines).toContain(`step downloading ${taskKey}`)
    expect(runner.lines).toContain(`step released ${taskKey}`)
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
    if (process.env.DEBUG_CLUSTER) {
      for (const runner of runners)
        console.log(runner.lines.filter((line) => !line.startsWith("step")).join("\n"), runner.stderr().slice(-2000))
      console.log(JSON.stringify(fake.callbacks.map((c) => [c.taskId, c.attempt, c.outcome, c.status, c.url])))
    }
    expect(results.map(([, state]) => state)).toEqual(Array(count).fill("completed"))
    for (const prompt of prompts) {
      expect(
        fake.tasks.filter((task) => task.input.prompt === prompt),
        prompt
      ).toHaveLength(1)
    }
    expect(fake.requests.filter((request) => request.status === 429)).toHaveLength(0)
    expect(fake.maxConcurrentTasks()).toBeLessThanOrEqual(2)
    await last.kill()
    await relay.close()
  }, 180_000)
})
