// The spend-cap contract against the reference store, core's in-memory one: the contract's own
// expectations must hold for the behaviour every shared store copies. The "processes" of a case
// share one memory store per account, as one process's fibers do.
import * as EffectVitest from "@effect/vitest"
import { SpendCap } from "@reelkit/core"
import { Effect, Layer } from "effect"
import * as SpendCapContract from "../src/SpendCapContract.js"

const stores = new Map<string, SpendCap.Store>()

SpendCapContract.suite(
  "memory",
  Layer.succeed(SpendCapContract.Store, {
    makeStore: (account) =>
      Effect.gen(function* () {
        const existing = stores.get(account)
        if (existing !== undefined) return existing
        const store = yield* SpendCap.makeMemoryStore
        stores.set(account, store)
        return store
      })
  }),
  EffectVitest
)
