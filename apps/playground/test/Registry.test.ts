// The registry of (model, transport) pairs: its names are what the CLI and the form offer, each
// entry's provider really is the pair it claims (so a recorded task maps back to its entry), its
// fake starts and serves that provider, and budgets are named per transport and key.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { TaskProvider } from "@reelkit/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Registry from "../src/Registry.js"

describe("Registry", () => {
  it("names every pair once; the default is vidu-q3 on apixo; lookups round-trip", () => {
    expect(Registry.entries.map(Registry.idOf)).toEqual(["vidu-q3/apixo", "vidu-q3/vidu"])
    expect(new Set(Registry.entries.map(Registry.idOf)).size).toBe(Registry.entries.length)
    expect(Registry.defaultEntry.transport).toBe("apixo")
    expect(Registry.models).toEqual(["vidu-q3"])
    expect(Registry.transports).toEqual(["apixo", "vidu"])
    for (const entry of Registry.entries) {
      expect(Registry.find(entry.model, entry.transport)).toBe(entry)
      expect(Registry.byId(Registry.idOf(entry))).toBe(entry)
      expect(Registry.ofRecord({ providerId: entry.providerId, modelId: entry.model })).toBe(entry)
    }
    expect(Registry.find("vidu-q3", "elsewhere")).toBeUndefined()
    expect(Registry.ofRecord({ providerId: "apixo", modelId: "another-model" })).toBeUndefined()
  })

  it("a budget is per transport and key: one key on two transports, or two keys, never share; the key is not in the name", () => {
    const [apixo, vidu] = Registry.entries as [Registry.Entry, Registry.Entry]
    const key = "sk-a-secret-key-0123456789"
    expect(Registry.accountOf(apixo, key)).toBe(Registry.accountOf(apixo, key))
    expect(Registry.accountOf(apixo, key)).not.toBe(Registry.accountOf(vidu, key))
    expect(Registry.accountOf(apixo, key)).not.toBe(Registry.accountOf(apixo, `${key}x`))
    expect(Registry.accountOf(vidu, key)).toMatch(/^vidu:[0-9a-f]{16}$/)
    expect(Registry.accountOf(vidu, key)).not.toContain(key)
  })

  it.effect(
    "each entry's provider is the pair it names, runs against its own fake, and cancels exactly when the entry says",
    () =>
      Effect.gen(function* () {
        for (const entry of Registry.entries) {
          const wiring = yield* Effect.promise(entry.load)
          const fake = yield* wiring.startFake({ processingAfter: "1 hour", completeAfter: "2 hours" })
          // Built in this test's scope: the HTTP pool stays open for the requests below.
          const context = yield* Layer.build(
            wiring
              .provider({ apiKey: fake.apiKey, baseUrl: fake.url, pollPlan: wiring.pollPlan })
              .pipe(Layer.provide(NodeHttpClient.layerUndici))
          )
          const provider = Context.get(context, TaskProvider.TaskProvider)
          expect([provider.providerId, provider.modelId], entry.transport).toEqual([entry.providerId, entry.model])
          expect(provider.cancel !== undefined, entry.transport).toBe(entry.cancels)
          // The fake accepts the key it was started with: a real submit over its socket, then its status.
          const prepared = yield* provider.prepare({
            input: { mode: "text-to-video", prompt: `through ${entry.transport}` }
          })
          const submitted = yield* provider.submit({ taskKey: `tk_registry_${entry.transport}`, wire: prepared.wire })
          const status = yield* provider.status(submitted.remoteTaskId)
          expect(["Pending", "Processing"], entry.transport).toContain(status._tag)
        }
      }).pipe(Effect.scoped)
  )

  it.effect("prices a priceable input from the pair's table, and nothing else", () =>
    Effect.gen(function* () {
      const table = { currency: "USD", standard: { "720p": 0.1 }, turbo: { "720p": 0.05 } }
      for (const entry of Registry.entries) {
        const wiring = yield* Effect.promise(entry.load)
        const priced = wiring.priceOf(
          { mode: "turbo-text-to-video", prompt: "p", duration: 4, resolution: "720p" },
          table
        )
        expect(priced._tag === "Some" ? priced.value.amount : undefined).toBeCloseTo(0.2)
        expect(wiring.priceOf({ mode: "no-such-mode", prompt: "p" }, table)._tag).toBe("None")
      }
    })
  )
})
