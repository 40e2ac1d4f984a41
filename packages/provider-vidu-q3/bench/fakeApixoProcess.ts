// The latency benchmark's fake apixo server, in its own process so that its work never shares an
// event loop with the client being measured. Prints `{ url, apiKey }` once listening; each line
// on stdin is answered with the finishing moments of the tasks so far: `[[taskId, completedAt], ...]`.
import { FakeApixo } from "@reelkit/testing"
import { Duration, Redacted } from "effect"
import * as ViduQ3Input from "../src/ViduQ3Input.js"

const fake = await FakeApixo.start({
  models: { "vidu-q3": { inputSchema: ViduQ3Input.ViduQ3Input } },
  requestsPerMinute: 1_000_000_000,
  concurrentTasks: 1_000_000_000,
  // Finishing moments spread over 2 s (a fixed pattern), so they do not line up with the polls.
  timings: (task) => ({
    processingAfter: Duration.millis(100),
    completeAfter: Duration.millis(1500 + ((task.sequence * 7919) % 2000))
  })
})
process.stdout.write(`${JSON.stringify({ url: fake.url, apiKey: Redacted.value(fake.apiKey) })}\n`)
process.stdin.on("data", () => {
  process.stdout.write(`${JSON.stringify(fake.tasks.map((task) => [task.taskId, task.completedAt]))}\n`)
})
process.on("SIGTERM", () => {
  fake.close().then(() => process.exit(0))
})
