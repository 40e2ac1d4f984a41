// The AccountLimits and SpendCap contracts on a real Redis: the machine's (127.0.0.1:6379) or a
// private redis-server this run starts. Every holder has a connection of its own, as separate
// processes do; every key of this run carries a prefix of its own, deleted at the end.
import * as EffectVitest from "@effect/vitest"
import { describe, it } from "@effect/vitest"
import * as RedisAccountLimits from "@reelkit/storage/RedisAccountLimits"
import { AccountLimitsContract, SpendCapContract } from "@reelkit/testing"
import { Effect, Layer } from "effect"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { afterAll } from "vitest"
import { findRedis } from "./utils.js"

const server = await findRedis()

if ("unavailable" in server) {
  console.warn(`RedisAccountLimits tests skipped: ${server.unavailable}`)
  describe.skip(`RedisAccountLimits (skipped: ${server.unavailable})`, () => {
    it("needs a Redis server", () => undefined)
  })
} else {
  const prefix = `reelkit-test-${randomBytes(4).toString("hex")}:`
  afterAll(async () => {
    const redis = new Redis(server.url)
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
    server.stop()
  })

  const store = Layer.succeed(AccountLimitsContract.Store, {
    makeHolder: (options) =>
      Effect.flatMap(RedisAccountLimits.connect(server.url), (redis) =>
        RedisAccountLimits.makeHolder(redis, { ...options, prefix })
      ).pipe(Effect.orDie)
  })
  AccountLimitsContract.suite("RedisAccountLimits", store, EffectVitest)

  const spendStore = Layer.succeed(SpendCapContract.Store, {
    makeStore: (account) =>
      Effect.map(RedisAccountLimits.connect(server.url), (redis) =>
        RedisAccountLimits.makeSpendStore(redis, { account, prefix })
      ).pipe(Effect.orDie)
  })
  SpendCapContract.suite("RedisAccountLimits", spendStore, EffectVitest)
}
