// Runs in an empty npm project against the packed tarball: ESM import of real exports, the seed's
// two-image request sent to a local server through the vidu-q3 layer.
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { TaskProvider } from "@reelkit/core"
import { ViduQ3 } from "@reelkit/provider-vidu-q3"
import { Effect, Layer, Redacted } from "effect"
import assert from "node:assert/strict"
import { createServer } from "node:http"

let received
const server = createServer((request, response) => {
  let body = ""
  request.on("data", (chunk) => {
    body += chunk
  })
  request.on("end", () => {
    received = { url: request.url, body: JSON.parse(body) }
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify({ code: 200, message: "success", data: { taskId: "task_12345678" } }))
  })
})
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))

const input = {
  mode: "image-to-video",
  prompt: "transition from start to end smoothly",
  resolution: "720p",
  duration: 8,
  image_urls: ["https://example.com/start.jpg", "https://example.com/end.jpg"]
}
const layer = ViduQ3.layer({
  apiKey: Redacted.make("sk-smoke"),
  baseUrl: `http://127.0.0.1:${server.address().port}`
}).pipe(Layer.provide(FetchHttpClient.layer))
const accepted = await Effect.runPromise(
  Effect.gen(function* () {
    const provider = yield* TaskProvider.TaskProvider
    const prepared = yield* provider.prepare({ input })
    assert.equal(prepared.billableSeconds, 8)
    return yield* provider.submit({ taskKey: "k", wire: prepared.wire })
  }).pipe(Effect.provide(layer))
)
server.close()
assert.equal(accepted.remoteTaskId, "task_12345678")
assert.equal(received.url, "/api/v1/generateTask/vidu-q3")
assert.deepEqual(received.body, { request_type: "async", input })
// The same input on the official Vidu API: prepare only (it sends nothing).
const viduPrepared = await Effect.runPromise(
  Effect.flatMap(TaskProvider.TaskProvider, (provider) => provider.prepare({ input })).pipe(
    Effect.provide(ViduQ3.layerVidu({ apiKey: Redacted.make("vidu-smoke") }).pipe(Layer.provide(FetchHttpClient.layer)))
  )
)
assert.equal(viduPrepared.wire.path, "/start-end2video")
assert.deepEqual(viduPrepared.wire.body, {
  model: "viduq3-pro",
  images: input.image_urls,
  prompt: input.prompt,
  duration: 8,
  resolution: "720p"
})
console.log("@reelkit/provider-vidu-q3 ESM ok")
