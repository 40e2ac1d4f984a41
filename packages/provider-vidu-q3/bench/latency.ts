/**
 * `pnpm --filter @reelkit/provider-vidu-q3 bench:latency`: completion latency, the time from the
 * fake apixo server finishing a task to `wait` returning, over 200 tasks, in callback mode and in
 * polling mode, through the real apixo transport on loopback. Beside each, its physical limit
 * measured in the same run: after a callback, one status round trip (the confirmation); when
 * polling, the poll interval (a task finishes at a random moment between two polls). The fake
 * runs in its own process; both read the same machine clock.
 * Figures only; nothing is asserted.
 *
 *   BENCH_TASKS=200 BENCH_POLL_MS=1000
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { AccountLimits, CallbackUrls, Callbacks, ResultStorage, TaskClient, TaskLedger } from "@reelkit/core"
import { Clock, Context, Duration, Effect, Layer, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer as createHttpServer } from "node:http"
import { createServer } from "node:net"
import * as ViduQ3 from "../src/ViduQ3.js"
import { fileURLToPath } from "node:url"
import type * as ViduQ3Input from "../src/ViduQ3Input.js"

const taskCount = Number(process.env.BENCH_TASKS ?? 200)
const pollMillis = Number(process.env.BENCH_POLL_MS ?? 1000)
const callbackSecret = Redacted.make("latency-bench-callback-secret-0123456789abcdef")
const input: ViduQ3Input.ViduQ3Input = { mode: "text-to-video", prompt: "a kite over dunes", duration: 4 }

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number }
    server.close(() => resume(Effect.succeed(port)))
  })
})

const percentile = (values: ReadonlyArray<number>, fraction: number) => {
  const sorted = [...values].sort((left, right) => left - right)
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!
}
const summary = (values: ReadonlyArray<number>) =>
  `median ${percentile(values, 0.5).toFixed(1).padStart(7)} ms   p99 ${percentile(values, 0.99).toFixed(1).padStart(7)} ms`

/** The fake apixo server in a child process (see fakeApixoProcess.ts), stopped with the scope. */
const startFake = Effect.acquireRelease(
  Effect.async<{ url: string; apiKey: string; child: ChildProcess; lines: Array<(line: string) => void> }>((resume) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", fileURLToPath(new URL("./fakeApixoProcess.ts", import.meta.url))],
      {
        stdio: ["pipe", "pipe", "inherit"]
      }
    )
    const lines: Array<(line: string) => void> = []
    let buffered = ""
    child.stdout!.on("data", (data: Buffer) => {
      buffered += String(data)
      for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
        const line = buffered.slice(0, end)
        buffered = buffered.slice(end + 1)
        lines.shift()?.(line)
      }
    })
    lines.push((line) =>
      resume(Effect.succeed({ ...(JSON.parse(line) as { url: string; apiKey: string }), child, lines }))
    )
  }),
  ({ child }) => Effect.sync(() => child.kill("SIGTERM"))
).pipe(
  Effect.map(({ url, apiKey, child, lines }) => ({
    url,
    apiKey,
    /** When each task finished, by the fake's clock (the same machine's). */
    finishedAt: Effect.async<ReadonlyArray<[string, number]>>((resume) => {
      lines.push((line) => resume(Effect.succeed(JSON.parse(line) as Array<[string, number]>)))
      child.stdin!.write("tasks\n")
    })
  }))
)

/** Runs `taskCount` tasks in one mode and returns, per task, finish-to-return milliseconds. */
const run = (mode: "callback" | "polling") =>
  Effect.scoped(
    Effect.gen(function* () {
      const fake = yield* startFake
      const callbackPort = yield* freePort
      const callbackBase = `http://127.0.0.1:${callbackPort}`
      const poll = Duration.millis(pollMillis)
      const clientLayer = TaskClient.layer(
        mode === "polling"
          ? { pollPlan: { firstPollAfter: poll, interval: poll } }
          : // Callback mode: no poll before an hour, so every early return is the callback's doing.
            {
              pollPlan: { firstPollAfter: Duration.hours(1), interval: Duration.hours(1) },
              callbackFallbackInterval: Duration.hours(1)
            }
      ).pipe(
        Layer.provideMerge(
          Layer.mergeAll(
            ViduQ3.layer({ apiKey: Redacted.make(fake.apiKey), baseUrl: fake.url }),
            TaskLedger.layerMemory,
            AccountLimits.layerUnlimited,
            ResultStorage.layerNone,
            mode === "callback"
              ? CallbackUrls.layer({ secret: callbackSecret, publicBaseUrl: callbackBase }).pipe(Layer.orDie)
              : Layer.merge(
                  CallbackUrls.layerNone,
                  Callbacks.layerConfig({ secret: callbackSecret, publicBaseUrl: callbackBase })
                )
          )
        ),
        Layer.provideMerge(NodeHttpClient.layerUndici)
      )
      const serving = Callbacks.layerServe().pipe(
        Layer.provideMerge(clientLayer),
        Layer.provideMerge(NodeHttpServer.layer(createHttpServer, { port: callbackPort, host: "127.0.0.1" }))
      )
      const context = yield* Layer.build(serving)
      const client = Context.get(context, TaskClient.TaskClient)

      const returnedAt = yield* Effect.forEach(
        Array.from({ length: taskCount }, (_, index) => index),
        (index) =>
          Effect.gen(function* () {
            const handle = yield* client.start(input, { taskKey: `tk_${mode}_${index}` })
            const record = yield* client.wait(handle)
            return { remoteTaskId: record.remoteTaskId!, at: yield* Clock.currentTimeMillis }
          }),
        { concurrency: "unbounded" }
      )
      const finishedAt = new Map(yield* fake.finishedAt)
      const latencies = returnedAt.map(({ at, remoteTaskId }) => at - finishedAt.get(remoteTaskId)!)

      // The limit after a callback: one status round trip, measured now, on this fake and transport.
      const roundTrips: Array<number> = []
      if (mode === "callback") {
        for (const { remoteTaskId } of returnedAt) {
          const start = performance.now()
          yield* client.provider.status(remoteTaskId)
          roundTrips.push(performance.now() - start)
        }
      }
      return { latencies, roundTrips }
    })
  )

const main = Effect.gen(function* () {
  console.log(
    `completion latency: fake apixo finishing a task -> wait returning, ${taskCount} tasks, loopback, node ${process.version}`
  )
  const callback = yield* run("callback")
  console.log(`  callback mode              ${summary(callback.latencies)}`)
  console.log(`    limit: one status round trip ${summary(callback.roundTrips)}`)
  const polling = yield* run("polling")
  console.log(`  polling mode (${pollMillis} ms)      ${summary(polling.latencies)}`)
  console.log(
    `    limit: the poll interval, ${pollMillis} ms (a finish lands uniformly between polls: median ${pollMillis / 2} ms, p99 ${(pollMillis * 0.99).toFixed(0)} ms)`
  )
  console.log(
    `  callback / polling median: ${(percentile(callback.latencies, 0.5) / percentile(polling.latencies, 0.5)).toFixed(3)}x`
  )
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exit(1)
})
