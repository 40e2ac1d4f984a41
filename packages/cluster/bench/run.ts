// Benchmark: tasks completed per minute by 1, 2 and 3 socket runners on one PostgreSQL database,
// against the fake apixo server with a raised limit (printed beside the figures), and the memory a
// waiting workflow costs a runner beside core's per-task figure. Usage:
//   node --import tsx bench/run.ts [tasks per run (default 60)]
import { FakeApixo } from "@reelkit/testing"
import { join } from "node:path"
import {
  createDatabase,
  freePort,
  type Runner,
  socketRunnerConfig,
  startRunner,
  tempDir,
  testSecret
} from "../test/utils.js"

const tasks = Number(process.argv[2] ?? 60)
const concurrentTasks = 30
const requestsPerMinute = 3_000

const measure = async (runnerCount: number) => {
  const database = createDatabase()
  const fake = await FakeApixo.start({
    timings: { processingAfter: "200 millis", completeAfter: "1 second" },
    requestsPerMinute,
    concurrentTasks
  })
  const dir = tempDir("bench")
  const secret = testSecret()
  const callbackPort = await freePort()
  const runners: Array<Runner> = []
  try {
    const config = () =>
      socketRunnerConfig({
        pgUrl: database.url,
        fakeUrl: fake.url,
        storeRoot: join(dir, "store"),
        requestsPerWindow: requestsPerMinute,
        concurrentTasks,
        callbackBase: `http://127.0.0.1:${callbackPort}`,
        secret
      })
    for (let index = 0; index < runnerCount; index++) {
      runners.push(startRunner({ ...(await config()), ...(index === 0 ? { callbackPort } : {}) }))
    }
    await Promise.all(runners.map((runner) => runner.waitFor((line) => line.startsWith("ready "))))
    const startedAt = Date.now()
    const client = startRunner({
      ...(await config()),
      mode: "client",
      start: { prefix: "bench", count: tasks, wait: true }
    })
    runners.push(client)
    await client.waitForCount((line) => line.startsWith("result "), tasks)
    const minutes = (Date.now() - startedAt) / 60_000
    return tasks / minutes
  } finally {
    for (const runner of runners) await runner.kill()
    await fake.close()
    database.drop()
  }
}

for (const runnerCount of [1, 2, 3]) {
  const perMinute = await measure(runnerCount)
  console.log(
    `${runnerCount} runner(s): ${perMinute.toFixed(0)} tasks/minute (limit: ${concurrentTasks} concurrent tasks of 1 s each, ${requestsPerMinute} requests/minute: at most ${((concurrentTasks * 60) / 1.2).toFixed(0)} tasks/minute)`
  )
}
