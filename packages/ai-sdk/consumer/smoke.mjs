// Runs in an empty npm project against the packed tarballs: ESM import, one whole generation
// through the AI SDK's own experimental_generateVideo against the fake apixo server.
import { createApixo } from "@reelkit/ai-sdk"
import { FakeApixo } from "@reelkit/testing"
import { experimental_generateVideo as generateVideo } from "ai"
import assert from "node:assert/strict"

const fake = await FakeApixo.start({ timings: { processingAfter: 0, completeAfter: 0 } })
const apixo = createApixo({ apiKey: FakeApixo.defaultApiKey, baseURL: fake.url })
try {
  const result = await generateVideo({
    model: apixo.video("vidu-q3"),
    prompt: "a paper boat on a rainy street",
    resolution: "1280x720",
    duration: 4,
    poll: { intervalMs: 1 },
    // The SDK's default download refuses loopback addresses; the fake serves on 127.0.0.1.
    download: async ({ url }) => {
      const response = await fetch(url)
      return { data: new Uint8Array(await response.arrayBuffer()), mediaType: "video/mp4" }
    }
  })
  assert.ok(result.video.uint8Array.length > 0)
  assert.deepEqual(fake.tasks[0].input, {
    mode: "text-to-video",
    prompt: "a paper boat on a rainy street",
    resolution: "720p",
    duration: 4,
    aspect_ratio: "16:9"
  })
  assert.equal(fake.bills.length, 1)
  console.log("@reelkit/ai-sdk ESM ok")
} finally {
  await apixo.close()
  await fake.close()
}
