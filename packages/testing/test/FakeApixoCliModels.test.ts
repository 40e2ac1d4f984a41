// reelkit-fake-apixo checks inputs with the schema of every known provider installed beside it.
import { describe, expect, it } from "@effect/vitest"
import { installedModels, knownProviders } from "../src/internal/fakeApixoCli.js"
import * as FakeApixo from "../src/FakeApixo.js"

describe("reelkit-fake-apixo models", () => {
  it("registers Vidu Q3's schema when the provider can be imported, and then refuses a bad input", async () => {
    // Here the provider resolves to its sources (the workspace's alias), as an install beside it would.
    const models = await installedModels()
    expect(Object.keys(models)).toEqual(["vidu-q3"])
    const fake = await FakeApixo.start({ models, strictModels: true })
    try {
      const submit = (model: string, input: unknown) =>
        fetch(`${fake.url}/api/v1/generateTask/${model}`, {
          method: "POST",
          headers: { authorization: `Bearer ${FakeApixo.defaultApiKey}`, "content-type": "application/json" },
          body: JSON.stringify({ request_type: "async", input })
        }).then((response) => response.status)
      expect(await submit("vidu-q3", { mode: "text-to-video", prompt: "a fox", duration: 4 })).toBe(200)
      expect(await submit("vidu-q3", { mode: "text-to-video", prompt: "a fox", duration: 99 })).toBe(400)
      expect(await submit("another-model", { prompt: "a fox" })).toBe(404)
    } finally {
      await fake.close()
    }
  })

  it("leaves out a provider that is not installed, and reads a CommonJS build's default export", async () => {
    const missing = await installedModels(() => Promise.reject(new Error("Cannot find package")))
    expect(missing).toEqual({})
    const schema = knownProviders[0]!
    const fromDefault = await installedModels(
      () => Promise.resolve({ default: { ViduQ3: { modelId: "vidu-q3" }, ViduQ3Input: { ViduQ3Input: undefined } } }),
      [schema]
    )
    expect(Object.keys(fromDefault)).toEqual(["vidu-q3"])
  })
})
