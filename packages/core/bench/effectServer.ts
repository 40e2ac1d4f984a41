// Reference: Effect's own HttpServer (platform-node) with a handler that reads the body as text,
// parses it and answers 200, without anything of reelkit: what the platform costs by itself.
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"

const handler = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  JSON.parse(yield* request.text)
  return HttpServerResponse.unsafeJson({ outcome: "accepted" })
})

const program = Effect.gen(function* () {
  const server = yield* HttpServer.HttpServer
  const { port } = server.address as HttpServer.TcpAddress
  const body = JSON.stringify({ code: 200, message: "success", data: { taskId: "task_1", state: "success" } })
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/callbacks/tk_bench/token`, body })}\n`)
  return yield* Effect.never
})

const layer = HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.post("/callbacks/:taskKey/:token", handler))).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
)

process.on("SIGTERM", () => process.exit(0))
Effect.runPromise(program.pipe(Effect.provide(layer), Effect.scoped)).catch((error) => {
  console.error(error)
  process.exit(1)
})
