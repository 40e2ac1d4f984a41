// Runs in an empty npm project against the packed tarball: ESM import of real exports, one submit,
// one query and one cancel against a local server.
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { TaskProvider } from "@reelkit/core"
import { Vidu, ViduModel } from "@reelkit/vidu"
import { Effect, Layer, Redacted } from "effect"
import assert from "node:assert/strict"
import { createServer } from "node:http"

const seen = []
const server = createServer((request, response) => {
  let body = ""
  request.on("data", (chunk) => {
    body += chunk
  })
  request.on("end", () => {
    seen.push({ method: request.method, url: request.url, authorization: request.headers.authorization, body })
    const answer =
      request.url === "/ent/v2/text2video"
        ? { task_id: "t1", state: "created" }
        : request.url.endsWith("/cancel")
          ? {}
          : { id: "t1", state: "queueing", err_code: "" }
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify(answer))
  })
})
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
const baseUrl = `http://127.0.0.1:${server.address().port}/ent/v2`

const model = {
  modelId: "demo",
  encode: (input) =>
    Effect.succeed({ input, endpoint: "text2video", body: { model: "viduq3-pro", prompt: input.prompt } })
}
const layer = ViduModel.layer(model).pipe(
  Layer.provide(Vidu.layer({ apiKey: Redacted.make("vidu-smoke"), baseUrl })),
  Layer.provide(FetchHttpClient.layer)
)
const status = await Effect.runPromise(
  Effect.gen(function* () {
    const provider = yield* TaskProvider.TaskProvider
    const prepared = yield* provider.prepare({ input: { prompt: "hi" } })
    const accepted = yield* provider.submit({ taskKey: "k", wire: prepared.wire })
    const status = yield* provider.status(accepted.remoteTaskId)
    yield* provider.cancel(accepted.remoteTaskId)
    return status
  }).pipe(Effect.provide(layer))
)
server.close()
assert.equal(status._tag, "Pending")
assert.equal(seen[0].authorization, "Token vidu-smoke")
assert.deepEqual(JSON.parse(seen[0].body), { model: "viduq3-pro", prompt: "hi" })
assert.deepEqual([seen[1].method, seen[1].url], ["GET", "/ent/v2/tasks/t1/creations"])
assert.deepEqual([seen[2].method, seen[2].url], ["POST", "/ent/v2/tasks/t1/cancel"])
console.log("@reelkit/vidu ESM ok")
