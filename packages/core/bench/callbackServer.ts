// reelkit's callback router on a real NodeHttpServer, with a TaskClient over a memory ledger and a
// provider that answers instantly. The load hits one task's valid callback URL: every delivery is
// verified (HMAC, constant-time), its body read under the cap and parsed, and de-duplicated.
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Duration, Effect, Layer, Redacted } from "effect"
import { createServer } from "node:http"
import * as AccountLimits from "../src/AccountLimits.js"
import * as CallbackUrls from "../src/CallbackUrls.js"
import * as Callbacks from "../src/Callbacks.js"
import * as ResultStorage from "../src/ResultStorage.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskProvider from "../src/TaskProvider.js"
import * as TaskStatus from "../src/TaskStatus.js"

const secret = Redacted.make("bench-callback-secret-0123456789abcdef")
const provider: TaskProvider.Service = {
  providerId: "bench",
  modelId: "bench-model",
  prepare: ({ input }) =>
    Effect.succeed({ input, wire: new TaskProvider.WireRequest({ method: "POST", path: "/bench", body: input }) }),
  submit: () => Effect.succeed({ remoteTaskId: "task_1" }),
  status: () => Effect.succeed(new TaskStatus.Processing({})),
  parseCallback: (body) =>
    Effect.succeed({
      remoteTaskId: (body as { data: { taskId: string } }).data.taskId,
      status: new TaskStatus.Processing({})
    }),
  hints: {
    pollPlan: { firstPollAfter: Duration.hours(1), interval: Duration.hours(1), deadline: Duration.hours(2) },
    resultRetention: Duration.days(1)
  }
}

const program = Effect.gen(function* () {
  const client = yield* TaskClient.TaskClient
  yield* client.start({ prompt: "bench" }, { taskKey: "tk_bench" })
  const server = yield* HttpServer.HttpServer
  const { port } = server.address as HttpServer.TcpAddress
  const url = CallbackUrls.urlFor({ secret, publicBaseUrl: `http://127.0.0.1:${port}` }, "tk_bench")
  const body = JSON.stringify({ code: 200, message: "success", data: { taskId: "task_1", state: "success" } })
  process.stdout.write(`${JSON.stringify({ url, body })}\n`)
  return yield* Effect.never
})

const layer = Callbacks.layerServe().pipe(
  Layer.provideMerge(
    TaskClient.layer().pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          Layer.succeed(TaskProvider.TaskProvider, provider),
          TaskLedger.layerMemory,
          AccountLimits.layerUnlimited,
          ResultStorage.layerNone,
          Layer.orDie(CallbackUrls.layer({ secret, publicBaseUrl: "http://127.0.0.1" }))
        )
      )
    )
  ),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)

process.on("SIGTERM", () => process.exit(0))
Effect.runPromise(program.pipe(Effect.provide(layer), Effect.scoped)).catch((error) => {
  console.error(error)
  process.exit(1)
})
