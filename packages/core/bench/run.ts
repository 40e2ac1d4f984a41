import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as AccountLimits from "../src/AccountLimits.js"
import * as CallbackUrls from "../src/CallbackUrls.js"
import * as ResultStorage from "../src/ResultStorage.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskError from "../src/TaskError.js"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskProvider from "../src/TaskProvider.js"
import * as TaskStatus from "../src/TaskStatus.js"

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")
const heapUsed = async () => {
  for (let index = 0; index < 3; index++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}
const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} KB`

/** A provider speaking the apixo status shape over the injected HttpClient. */
const httpProvider = (baseUrl: string): Effect.Effect<TaskProvider.Service, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (client) => ({
    providerId: "bench",
    modelId: "bench-model",
    prepare: () => Effect.die("not used"),
    submit: () => Effect.die("not used"),
    status: (remoteTaskId) =>
      client.get(`${baseUrl}/api/v1/statusTask/bench?taskId=${remoteTaskId}`).pipe(
        Effect.flatMap((response) => response.json),
        Effect.mapError((error) => new TaskError.TransportError({ message: error.message, requestSent: true })),
        Effect.map((body) => {
          const data = (body as { data: { state: string; resultJson?: string } }).data
          return data.state === "success"
            ? new TaskStatus.Succeeded({
                outputs: (JSON.parse(data.resultJson!) as { resultUrls: Array<string> }).resultUrls.map(
                  (url) => new TaskStatus.TaskOutput({ url })
                )
              })
            : new TaskStatus.Processing({})
        })
      ),
    hints: {
      pollPlan: { firstPollAfter: Duration.zero, interval: Duration.zero, deadline: Duration.hours(1) },
      resultRetention: Duration.days(15)
    }
  }))

/** Ledger rows for `count` submitted tasks, remote ids `t<offset + index>`. */
const seedLedger = (ledger: TaskLedger.Service, count: number, offset = 0) =>
  Effect.forEach(
    Array.from({ length: count }, (_, index) => index),
    (index) =>
      ledger.create({
        taskKey: `k${index}`,
        providerId: "bench",
        modelId: "bench-model",
        input: null,
        state: "submitted",
        remoteTaskId: `t${offset + index}`,
        submittedAt: 0
      }),
    { discard: true }
  )

/** The client's optional capabilities, switched off: the benchmark measures polling only. */
const noCapabilities = Layer.mergeAll(ResultStorage.layerNone, CallbackUrls.layerNone)

const memoryOfEffect = async (count: number) => {
  const never: TaskProvider.Service = {
    providerId: "bench",
    modelId: "bench-model",
    prepare: () => Effect.die("not used"),
    submit: () => Effect.die("not used"),
    status: () => Effect.succeed(new TaskStatus.Processing({})),
    hints: {
      // Nothing is polled while we measure: the first poll is an hour away.
      pollPlan: { firstPollAfter: Duration.hours(1), interval: Duration.hours(1), deadline: Duration.hours(2) },
      resultRetention: Duration.days(15)
    }
  }
  const ledgerLayer = TaskLedger.layerMemory
  const runtime = ManagedRuntime.make(
    TaskClient.layer().pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          Layer.succeed(TaskProvider.TaskProvider, never),
          ledgerLayer,
          AccountLimits.layerMemory({ concurrentTasks: 1_000_000, requestsPerWindow: 1_000_000 }),
          noCapabilities
        )
      )
    )
  )
  const { client, ledger } = await runtime.runPromise(
    Effect.all({ client: TaskClient.TaskClient, ledger: TaskLedger.TaskLedger })
  )
  await runtime.runPromise(seedLedger(ledger, count))
  const before = await heapUsed()
  runtime.runFork(client.reconcile())
  await new Promise((resolve) => setTimeout(resolve, 500))
  const after = await heapUsed()
  await runtime.dispose()
  return (after - before) / count
}

const memoryOfBaseline = async (count: number) => {
  const before = await heapUsed()
  const tasks: Array<{ taskKey: string; remoteTaskId: string; polls: number; timer: NodeJS.Timeout }> = []
  for (let index = 0; index < count; index++) {
    const task = {
      taskKey: `k${index}`,
      remoteTaskId: `t${index}`,
      polls: 0,
      timer: undefined as unknown as NodeJS.Timeout
    }
    task.timer = setTimeout(() => task.polls++, 3_600_000)
    tasks.push(task)
  }
  const after = await heapUsed()
  for (const task of tasks) clearTimeout(task.timer)
  return (after - before) / count
}

const startStatusServer = () =>
  new Promise<{ baseUrl: string; stop: () => void }>((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL("./statusServer.mjs", import.meta.url))], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    child.once("error", reject)
    child.stdout.once("data", (data: Buffer) =>
      resolve({ baseUrl: `http://127.0.0.1:${String(data).trim()}`, stop: () => child.kill("SIGTERM") })
    )
  })

const cpuPerPollEffect = async (
  tasks: number,
  offset: number,
  httpLayer: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndici
) => {
  const server = await startStatusServer()
  const runtime = ManagedRuntime.make(
    TaskClient.layer({ pollConcurrency: 8 }).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          Layer.effect(TaskProvider.TaskProvider, httpProvider(server.baseUrl)),
          TaskLedger.layerMemory,
          AccountLimits.layerMemory({ concurrentTasks: 1_000_000, requestsPerWindow: 1_000_000 }),
          noCapabilities
        )
      ),
      Layer.provide(httpLayer)
    )
  )
  const { client, ledger } = await runtime.runPromise(
    Effect.all({ client: TaskClient.TaskClient, ledger: TaskLedger.TaskLedger })
  )
  await runtime.runPromise(seedLedger(ledger, tasks, offset))
  const cpu = process.cpuUsage()
  const started = performance.now()
  const summary = await runtime.runPromise(client.reconcile())
  const elapsed = performance.now() - started
  const used = process.cpuUsage(cpu)
  await runtime.dispose()
  server.stop()
  if (summary.completed.length !== tasks) throw new Error(`only ${summary.completed.length} of ${tasks} completed`)
  const polls = tasks * 5
  return { microsPerPoll: (used.user + used.system) / polls, polls, seconds: elapsed / 1000 }
}

/**
 * The same client and polls with no I/O at all (the provider answers from memory): what reelkit's
 * own machinery (scheduler, ledger writes, events, spans) costs per poll.
 */
const cpuPerPollNoIo = async (tasks: number) => {
  const processing = new TaskStatus.Processing({})
  const succeeded = new TaskStatus.Succeeded({
    outputs: [new TaskStatus.TaskOutput({ url: "https://cdn.example/x.mp4" })]
  })
  const polls = new Map<string, number>()
  const memoryProvider: TaskProvider.Service = {
    providerId: "bench",
    modelId: "bench-model",
    prepare: () => Effect.die("not used"),
    submit: () => Effect.die("not used"),
    status: (remoteTaskId) =>
      Effect.sync(() => {
        const count = (polls.get(remoteTaskId) ?? 0) + 1
        polls.set(remoteTaskId, count)
        return count >= 5 ? succeeded : processing
      }),
    hints: {
      pollPlan: { firstPollAfter: Duration.zero, interval: Duration.zero, deadline: Duration.hours(1) },
      resultRetention: Duration.days(15)
    }
  }
  const runtime = ManagedRuntime.make(
    TaskClient.layer({ pollConcurrency: 8 }).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          Layer.succeed(TaskProvider.TaskProvider, memoryProvider),
          TaskLedger.layerMemory,
          AccountLimits.layerMemory({ concurrentTasks: 1_000_000, requestsPerWindow: 1_000_000 }),
          noCapabilities
        )
      )
    )
  )
  const { client, ledger } = await runtime.runPromise(
    Effect.all({ client: TaskClient.TaskClient, ledger: TaskLedger.TaskLedger })
  )
  await runtime.runPromise(seedLedger(ledger, tasks))
  const cpu = process.cpuUsage()
  const summary = await runtime.runPromise(client.reconcile())
  const used = process.cpuUsage(cpu)
  await runtime.dispose()
  if (summary.completed.length !== tasks) throw new Error(`only ${summary.completed.length} of ${tasks} completed`)
  return { microsPerPoll: (used.user + used.system) / (tasks * 5) }
}

/** The same polls through Effect's HttpClient alone: what Effect's HTTP stack costs without reelkit. */
const cpuPerPollEffectHttp = async (
  tasks: number,
  offset: number,
  httpLayer: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndici
) => {
  const server = await startStatusServer()
  const queue = Array.from({ length: tasks }, (_, index) => `t${offset + index}`)
  let polls = 0
  const worker: Effect.Effect<void, unknown, HttpClient.HttpClient> = Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    for (;;) {
      const taskId = queue.shift()
      if (taskId === undefined) return
      const response = yield* client.get(`${server.baseUrl}/api/v1/statusTask/bench?taskId=${taskId}`)
      const body = (yield* response.json) as { data: { state: string; resultJson?: string } }
      polls++
      if (body.data.state === "success") JSON.parse(body.data.resultJson!)
      else queue.push(taskId)
    }
  })
  const cpu = process.cpuUsage()
  const started = performance.now()
  await Effect.runPromise(
    Effect.all(
      Array.from({ length: 8 }, () => worker),
      { concurrency: "unbounded" }
    ).pipe(Effect.provide(httpLayer))
  )
  const elapsed = performance.now() - started
  const used = process.cpuUsage(cpu)
  server.stop()
  return { microsPerPoll: (used.user + used.system) / polls, polls, seconds: elapsed / 1000 }
}

const cpuPerPollBaseline = async (tasks: number, offset: number) => {
  const server = await startStatusServer()
  const queue = Array.from({ length: tasks }, (_, index) => `t${offset + index}`)
  const cpu = process.cpuUsage()
  const started = performance.now()
  let polls = 0
  const worker = async () => {
    for (;;) {
      const taskId = queue.shift()
      if (taskId === undefined) return
      const response = await fetch(`${server.baseUrl}/api/v1/statusTask/bench?taskId=${taskId}`)
      const body = (await response.json()) as { data: { state: string; resultJson?: string } }
      polls++
      if (body.data.state === "success") JSON.parse(body.data.resultJson!)
      else setTimeout(() => queue.push(taskId), 0)
      if (queue.length === 0) await new Promise((resolve) => setTimeout(resolve, 1))
    }
  }
  // Same concurrency as the client's scheduler (8 status requests in flight).
  await Promise.all(Array.from({ length: 8 }, worker))
  while (polls < tasks * 5) {
    await new Promise((resolve) => setTimeout(resolve, 1))
    await Promise.all(Array.from({ length: 8 }, worker))
  }
  const elapsed = performance.now() - started
  const used = process.cpuUsage(cpu)
  server.stop()
  return { microsPerPoll: (used.user + used.system) / polls, polls, seconds: elapsed / 1000 }
}

const main = async () => {
  if (process.env.BENCH_ONLY === "cpu-effect") {
    await cpuPerPollEffect(2_000, 0)
    return
  }
  if (process.env.BENCH_ONLY === "cpu-noio") {
    await cpuPerPollNoIo(2_000)
    console.log(`no-I/O: ${(await cpuPerPollNoIo(10_000)).microsPerPoll.toFixed(1)} µs/poll`)
    return
  }
  const inFlight = 10_000
  console.log(`reelkit core benchmark (node ${process.version}, ${new Date().toISOString()})`)
  // Warm both paths once so JIT and module loading are not measured.
  await memoryOfEffect(1_000)
  await memoryOfBaseline(1_000)
  const effectBytes = await memoryOfEffect(inFlight)
  const baselineBytes = await memoryOfBaseline(inFlight)
  console.log(`\nmemory per in-flight task (${inFlight} tasks in flight)`)
  console.log(`  reelkit TaskClient scheduler : ${kb(effectBytes)}`)
  console.log(`  baseline record + setTimeout : ${kb(baselineBytes)}`)
  console.log(
    `  ratio                        : ${(effectBytes / baselineBytes).toFixed(2)}x   (aim: under 4 KB per task)`
  )

  const tasks = 2_000
  await cpuPerPollEffect(200, 1_000_000)
  await cpuPerPollBaseline(200, 2_000_000)
  await cpuPerPollEffectHttp(200, 3_000_000)
  await cpuPerPollNoIo(200)
  const effectCpu = await cpuPerPollEffect(tasks, 0)
  const baselineCpu = await cpuPerPollBaseline(tasks, 100_000)
  const effectHttpCpu = await cpuPerPollEffectHttp(tasks, 200_000)
  const noIoCpu = await cpuPerPollNoIo(tasks)
  console.log(`\nclient CPU per status poll over loopback HTTP (${effectCpu.polls} polls, 8 in flight)`)
  console.log(
    `  reelkit TaskClient           : ${effectCpu.microsPerPoll.toFixed(1)} µs/poll (${effectCpu.seconds.toFixed(2)} s wall)`
  )
  console.log(
    `  baseline fetch + timer loop  : ${baselineCpu.microsPerPoll.toFixed(1)} µs/poll (${baselineCpu.seconds.toFixed(2)} s wall)`
  )
  console.log(
    `  ratio                        : ${(effectCpu.microsPerPoll / baselineCpu.microsPerPoll).toFixed(2)}x   (aim: under 1.3x)`
  )
  console.log(
    `  for reference, Effect HttpClient loop alone (no reelkit): ${effectHttpCpu.microsPerPoll.toFixed(1)} µs/poll, ${(effectHttpCpu.microsPerPoll / baselineCpu.microsPerPoll).toFixed(2)}x the baseline`
  )
  // Where the client's time goes: Effect's HTTP stack, reelkit's own machinery with no I/O at all
  // (scheduler, fenced ledger writes, events, spans), and what is left (their interplay: fibers
  // handing polls to workers, GC of both).
  const rest = effectCpu.microsPerPoll - effectHttpCpu.microsPerPoll - noIoCpu.microsPerPoll
  console.log(`\nbreakdown of the client's ${effectCpu.microsPerPoll.toFixed(1)} µs/poll`)
  console.log(`  Effect HttpClient request + JSON body : ${effectHttpCpu.microsPerPoll.toFixed(1)} µs`)
  console.log(`  reelkit machinery, no I/O             : ${noIoCpu.microsPerPoll.toFixed(1)} µs`)
  console.log(`  the rest (interplay, GC)              : ${rest.toFixed(1)} µs`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
