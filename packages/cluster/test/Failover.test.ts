// Failover after a SIGKILL, measured: two socket runners on PostgreSQL (fast failover settings);
// the runner downloading a task's output is killed while the fake holds the download; the other
// runner re-runs the persist step. Printed: the time from the kill to the re-run, and that the task
// was billed once.
import { FakeApixo } from "@reelkit/testing"
import * as Effect from "effect/Effect"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  createDatabase,
  freePort,
  type Runner,
  socketRunnerConfig,
  startCallbackRelay,
  startRunner,
  tempDir,
  testSecret
} from "./utils.js"

let fake: FakeApixo.Running
let database: { readonly url: string; readonly drop: () => void }
const runners: Array<Runner> = []

beforeAll(async () => {
  database = createDatabase()
  fake = await FakeApixo.start({ timings: { processingAfter: "100 millis", completeAfter: "300 millis" } })
})
afterAll(async () => {
  for (const runner of runners) await runner.kill()
  await fake.close()
  database.drop()
})

// CI measures the fast settings; CLUSTER_FAILOVER_SHARDING=shipped measures what the package ships
// (about 40 s more).
const sharding = process.env.CLUSTER_FAILOVER_SHARDING === "shipped" ? "shipped" : "fast"
const settingsName =
  sharding === "fast"
    ? "fast test settings, ClusterRunner.fastFailoverSharding"
    : "shipped settings, ClusterRunner.shippedSharding"

describe("failover", () => {
  it("re-runs the persist step of a SIGKILLed runner on the other runner, billed once", async () => {
    const dir = tempDir("failover")
    const config = () =>
      socketRunnerConfig({
        pgUrl: database.url,
        fakeUrl: fake.url,
        storeRoot: join(dir, "store"),
        requestsPerWindow: 600,
        concurrentTasks: 10,
        pollIntervalMillis: 200,
        sharding,
        secret: testSecret()
      })
    const pair = [startRunner(await config()), startRunner(await config())]
    runners.push(...pair)
    await Promise.all(pair.map((runner) => runner.waitFor((line) => line.startsWith("ready "))))
    // The first download is held: whichever runner runs the task is caught downloading.
    fake.addFault({ match: { route: "download", nth: 1 }, fault: FakeApixo.slow("120 seconds") })
    const client = startRunner({
      ...(await config()),
      mode: "client",
      start: { prefix: "failover", count: 1, wait: true }
    })
    runners.push(client)
    const downloading = await Promise.race(
      pair.map((runner) =>
        runner.waitFor((line) => line.startsWith("step downloading ")).then((line) => ({ runner, line }))
      )
    )
    const taskKey = downloading.line.split(" ")[2]!
    const survivor = pair.find((runner) => runner !== downloading.runner)!
    const killedAt = Date.now()
    await downloading.runner.kill()
    fake.clearFaults()
    await survivor.waitFor((line) => line.startsWith(`step downloading ${taskKey} `))
    const failoverMillis = Date.now() - killedAt
    const result = await client.waitFor((line) => line.startsWith("result "))
    expect(result).toBe(`result ${taskKey} completed`)
    expect(fake.tasks.filter((task) => task.input.prompt === "clip failover-0")).toHaveLength(1)
    console.log(`failover after SIGKILL (${settingsName}): ${failoverMillis} ms`)
    // The next test runs a cluster of its own: nothing of this one may poll its tasks.
    for (const runner of [...pair, client]) await runner.kill()
  }, 120_000)

  it("a callback that arrives while its execution's runner is dead is not lost: confirmed elsewhere, consumed after failover", async () => {
    const dir = tempDir("dead-callback")
    const ownDatabase = createDatabase()
    const secret = testSecret()
    const callbackPort = await freePort()
    // The client process serves callbacks; the fake's callbacks are held by a relay until the
    // runner waiting for the task has been killed.
    const relay = await startCallbackRelay(`http://127.0.0.1:${callbackPort}`)
    const config = () =>
      socketRunnerConfig({
        pgUrl: ownDatabase.url,
        fakeUrl: fake.url,
        storeRoot: join(dir, "store"),
        requestsPerWindow: 600,
        concurrentTasks: 10,
        // Polls are only a fallback a minute away: the callback is what ends the wait.
        pollIntervalMillis: 60_000,
        sharding,
        callbackBase: relay.url,
        secret
      })
    const pair = [startRunner(await config()), startRunner(await config())]
    runners.push(...pair)
    await Promise.all(pair.map((runner) => runner.waitFor((line) => line.startsWith("ready "))))
    const client = startRunner({
      ...(await config()),
      mode: "client",
      callbackPort,
      start: { prefix: "dead-callback", count: 1, wait: true }
    })
    runners.push(client)
    const submitted = await Promise.race(
      pair.map((runner) =>
        runner.waitFor((line) => line.startsWith("step submitted ")).then((line) => ({ runner, line }))
      )
    )
    const taskKey = submitted.line.split(" ")[2]!
    const survivor = pair.find((runner) => runner !== submitted.runner)!
    await Effect.runPromise(fake.waitUntil(() => relay.held() >= 1))
    await submitted.runner.kill()
    relay.release()
    await client.waitFor((line) => line === `callback ${taskKey} confirmed`)
    const result = await client.waitFor((line) => line.startsWith("result "))
    expect(result).toBe(`result ${taskKey} completed`)
    expect(survivor.lines.some((line) => line.startsWith(`step released ${taskKey} `))).toBe(true)
    expect(fake.tasks.filter((task) => task.input.prompt === "clip dead-callback-0")).toHaveLength(1)
    await relay.close()
    for (const runner of [...pair, client]) await runner.kill()
    ownDatabase.drop()
  }, 120_000)
})
