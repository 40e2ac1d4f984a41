// The store contract against the reference implementation, the in-memory store, plus checks of
// the suite's own helpers.
import * as EffectVitest from "@effect/vitest"
import { describe, expect, it } from "@effect/vitest"
import { ArtifactStore } from "@reelkit/core"
import { Chunk, Effect, Stream } from "effect"
import * as ArtifactStoreContract from "../src/ArtifactStoreContract.js"

ArtifactStoreContract.suite("memory", ArtifactStore.layerMemory, EffectVitest, { largeBytes: 1024 * 1024 })

describe("ArtifactStoreContract helpers", () => {
  it.effect("chunked splits bytes into uneven chunks that concatenate back to the input", () =>
    Effect.gen(function* () {
      const bytes = ArtifactStoreContract.bytesOf(200_000, 4)
      const chunks = Chunk.toReadonlyArray(yield* Stream.runCollect(ArtifactStoreContract.chunked(bytes)))
      expect(chunks.length).toBeGreaterThan(3)
      expect(new Set(chunks.map((chunk) => chunk.length)).size).toBeGreaterThan(2)
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true)
    })
  )

  it("every invalid key is rejected by core's validateKey", () => {
    for (const key of ArtifactStoreContract.invalidKeys) {
      expect(Effect.runSync(Effect.either(ArtifactStore.validateKey(key)))._tag, key).toBe("Left")
    }
  })
})
