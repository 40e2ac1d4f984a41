import { describe, expect, it } from "@effect/vitest"
import { LoadAPIKeyError, NoSuchModelError } from "@ai-sdk/provider"
import { experimental_startVideo as startVideo } from "ai"
import { apixo, createApixo } from "../src/index.js"
import { withFake } from "./utils.js"

describe("the apixo provider", () => {
  it("follows the AI SDK's provider conventions: video, videoModel, a callable provider, v4 models", () => {
    const provider = createApixo({ apiKey: "sk-unused" })
    const model = provider.video("vidu-q3")
    expect(provider.videoModel("vidu-q3")).toBe(model)
    expect(provider("vidu-q3")).toBe(model)
    expect([model.specificationVersion, model.provider, model.modelId, model.maxVideosPerCall]).toEqual([
      "v4",
      "apixo",
      "vidu-q3",
      1
    ])
    expect(typeof model.handleWebhookOption).toBe("function")
    expect(provider.specificationVersion).toBe("v4")
    expect(apixo.video("vidu-q3").provider).toBe("apixo")
  })

  it("answers NoSuchModelError for other model ids and kinds", () => {
    const provider = createApixo({ apiKey: "sk-unused" })
    expect(() => provider.video("kling-9" as "vidu-q3")).toThrow(NoSuchModelError)
    expect(() => provider.languageModel("vidu-q3")).toThrow(NoSuchModelError)
    expect(() => provider.imageModel("vidu-q3")).toThrow(NoSuchModelError)
    expect(() => provider.embeddingModel("vidu-q3")).toThrow(NoSuchModelError)
  })

  it.scoped("reads APIXO_API_KEY on the first call, and without one fails with LoadAPIKeyError, sending nothing", () =>
    withFake({}, async ({ fake }) => {
      const saved = process.env.APIXO_API_KEY
      delete process.env.APIXO_API_KEY
      const provider = createApixo({ baseURL: `${fake.url}/` })
      try {
        const error = await startVideo({ model: provider.video("vidu-q3"), prompt: "p" }).catch((cause) => cause)
        expect(LoadAPIKeyError.isInstance(error)).toBe(true)
        expect(fake.requests).toEqual([])
        process.env.APIXO_API_KEY = "test-key"
        const started = await startVideo({ model: provider.video("vidu-q3"), prompt: "p" })
        expect(started.operation).toMatchObject({ remoteTaskId: fake.tasks[0]!.taskId })
      } finally {
        if (saved === undefined) delete process.env.APIXO_API_KEY
        else process.env.APIXO_API_KEY = saved
        await provider.close()
      }
    })
  )

  it.scoped("sends its headers setting with every apixo request, and uses its fetch setting", () =>
    withFake({}, async ({ provider }) => {
      const seen: Array<Headers> = []
      const recordingFetch: typeof fetch = (input, init) => {
        seen.push(new Headers(init?.headers))
        return fetch(input, init)
      }
      await startVideo({
        model: provider({ headers: { "x-team": "studio-7" }, fetch: recordingFetch }).video("vidu-q3"),
        prompt: "p"
      })
      expect(seen.map((headers) => [headers.get("x-team"), headers.get("authorization")])).toEqual([
        ["studio-7", "Bearer test-key"]
      ])
    })
  )
})
