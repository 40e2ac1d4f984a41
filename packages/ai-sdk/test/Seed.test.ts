import { describe, expect, it } from "@effect/vitest"
import { FakeApixo } from "@reelkit/testing"
import { experimental_generateVideo as generateVideo } from "ai"
import * as Seed from "../../provider-vidu-q3/test/seed.js"
import { bodyOf, download, requestsTo, sampleVideo, waitForWebhook, withFake } from "./utils.js"

describe("the seed's request examples as AI SDK calls", () => {
  it.scoped("text-to-video: the exact documented body, and the video's bytes", () =>
    withFake({}, async ({ fake, provider, poll }) => {
      const { input } = Seed.textToVideoRequest
      const result = await generateVideo({
        model: provider().video("vidu-q3"),
        prompt: input.prompt,
        resolution: "1280x720",
        duration: input.duration,
        aspectRatio: "16:9",
        generateAudio: true,
        providerOptions: { apixo: { style: "general", movement: "auto", bgm: true } },
        poll,
        download
      })
      expect(fake.tasks.map(bodyOf)).toStrictEqual([Seed.textToVideoRequest])
      expect(result.video.uint8Array).toEqual(sampleVideo)
      expect(result.video.mediaType).toBe("video/mp4")
      expect(result.warnings).toEqual([])
      expect(fake.bills).toHaveLength(1)
    })
  )

  it.scoped("one image with a callback: the SDK's webhook URL becomes apixo's callback_url", () =>
    // The documented receiver (your-server.com) is not reachable from a test: the fake drops the
    // callback and records the body it would have sent, which the test hands to the SDK as the
    // receiver would.
    withFake(
      {
        timings: { processingAfter: 0, completeAfter: 0 },
        faults: [{ match: { route: "callback" }, fault: FakeApixo.dropCallback }]
      },
      async ({ fake, provider, run }) => {
        const { input } = Seed.oneImageCallbackRequest
        const received = run(fake.awaitCallbacks(1)).then((callbacks) => ({
          headers: { "content-type": "application/json" },
          body: JSON.parse(callbacks[0]!.body)
        }))
        const result = await generateVideo({
          model: provider().video("vidu-q3"),
          prompt: { image: input.image_urls[0]!, text: input.prompt },
          resolution: "1920x1080",
          duration: input.duration,
          webhook: async () => ({ url: Seed.oneImageCallbackRequest.callback_url, received }),
          poll: waitForWebhook,
          download
        })
        expect(fake.tasks.map(bodyOf)).toStrictEqual([Seed.oneImageCallbackRequest])
        expect(result.video.uint8Array).toEqual(sampleVideo)
        // After the webhook, the SDK asks for the status once.
        expect(requestsTo(fake, "status")).toHaveLength(1)
      }
    )
  )

  it.scoped("first and last frame: frameImages become the two image_urls", () =>
    withFake({}, async ({ fake, provider, poll }) => {
      const { input } = Seed.twoImagesRequest
      const result = await generateVideo({
        model: provider().video("vidu-q3"),
        prompt: input.prompt,
        frameImages: [
          { image: input.image_urls[0]!, frameType: "first_frame" },
          { image: input.image_urls[1]!, frameType: "last_frame" }
        ],
        resolution: "1280x720",
        duration: input.duration,
        poll,
        download
      })
      expect(fake.tasks.map(bodyOf)).toStrictEqual([Seed.twoImagesRequest])
      expect(result.video.uint8Array).toEqual(sampleVideo)
    })
  )
})
