// Runs in an empty npm project against the packed tarball: ESM import of real exports, one submit
// and one status request against a local server.
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { Apixo, ApixoModel } from "@reelkit/apixo"
import { TaskProvider } from "@reelkit/core"
import { Effect, Layer, Redacted, Schema } from "effect"
import assert from "node:assert/strict"
import { createServer } from "node:http"

const seen = []
const server = createServer((request, response) => {
  let body = ""
  request.on("data", (chunk) => {
    body += chunk
  })
  request.on("end", () => {
    seen.push({ url: request.url, authorization: request.headers.authorization, body })
    const data = request.method === "POST" ? { taskId: "task_1" } : { taskId: "task_1", state: "processing" }
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify({ code: 200, message: "success", data }))
  })
})
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
const baseUrl = `http://127.0.0.1:${server.address().port}`

const model = ApixoModel.define({
  modelId: "demo-model",
  input: Schema.Struct({ mode: Schema.Literal("text-to-video"), prompt: Schema.String })
})
const layer = ApixoModel.layer(model).pipe(
  Layer.provide(Apixo.layer({ apiKey: Redacted.make("sk-smoke"), baseUrl })),
  Layer.provide(FetchHttpClient.layer)
)
const status = await Effect.runPromise(
  Effect.gen(function* () {
    const provider = yield* TaskProvider.TaskProvider
    const prepared = yield* provider.prepare({ input: { mode: "text-to-video", prompt: "hi" } })
    const accepted = yield* provider.submit({ taskKey: "k", wire: prepared.wire })
    return yield* provider.status(accepted.remoteTaskId)
  }).pipe(Effect.provide(layer))
)
server.close()
assert.equal(status._tag, "Processing")
assert.equal(seen[0].authorization, "Bearer sk-smoke")
assert.deepEqual(JSON.parse(seen[0].body), { request_type: "async", input: { mode: "text-to-video", prompt: "hi" } })
assert.equal(seen[1].url, "/api/v1/statusTask/demo-model?taskId=task_1")
console.log("@reelkit/apixo ESM ok")
