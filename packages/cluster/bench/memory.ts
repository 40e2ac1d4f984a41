// Memory a waiting generation costs its runner: one socket runner on PostgreSQL holds N executions
// waiting for tasks that take ten minutes; its heap after a GC is compared with the same runner
// idle. Usage: node --import tsx bench/memory.ts [N (default 300)]
import { FakeApixo } from "@reelkit/testing"
import { join } from "node:path"
import { createDatabase, socketRunnerConfig, startRunner, tempDir } from "../test/utils.js"

const count = Number(process.argv[2] ?? 300)
const database = createDatabase()
const fake = await FakeApixo.start({
  timings: { completeAfter: "10 minutes" },
  requestsPerMinute: 100_000,
  concurrentTasks: 100_000
})
const dir = tempDir("memory")
const config = () =>
  socketRunnerConfig({
    pgUrl: database.url,
    fakeUrl: fake.url,
    storeRoot: join(dir, "store"),
    requestsPerWindow: 100_000,
    concurrentTasks: 100_000,
    // Nothing is polled while we measure.
    pollIntervalMillis: 600_000
  })
const runner = startRunner({ ...(await config()), reportMemory: true }, ["--expose-gc"])
const memoryLines = () => runner.lines.filter((line) => line.startsWith("memory "))
const heapAfter = async (skip: number) => {
  await runner.waitForCount((line) => line.startsWith("memory "), skip + 4)
  const recent = memoryLines()
    .slice(-3)
    .map((line) => Number(line.split(" ")[1]))
  return Math.min(...recent)
}
try {
  await runner.waitFor((line) => line.startsWith("ready "))
  const idle = await heapAfter(memoryLines().length + 4)
  const client = startRunner({ ...(await config()), mode: "client", start: { prefix: "memory", count, wait: false } })
  await runner.waitForCount((line) => line.startsWith("step submitted "), count)
  const waiting = await heapAfter(memoryLines().length + 4)
  await client.kill()
  console.log(
    `memory per waiting generation on its runner: ${((waiting - idle) / count / 1024).toFixed(2)} KB (${count} waiting; heap ${(idle / 1e6).toFixed(1)} MB idle, ${(waiting / 1e6).toFixed(1)} MB waiting)`
  )
  console.log(
    "core's figure (ARCHITECTURE.md, packages/core/bench/run.ts): a TaskClient task awaited in memory costs about 4.1 KB (a fiber on a Deferred) plus a record under 200 bytes"
  )
} finally {
  await runner.kill()
  await fake.close()
  database.drop()
}
