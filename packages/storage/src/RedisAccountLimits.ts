/**
 * `AccountLimits` and `SpendCap` shared by every process and machine on one Redis server. Each
 * decision is one Lua script (atomic on the server) over a sorted set of request times: a sliding
 * log, so no window of the configured length ever holds more requests than the limit. Why not
 * `@effect/experimental`'s `RateLimiter`: its fixed window admits the limit at the end of one
 * window and again at the start of the next (twice the limit within one window's length), and its
 * token bucket admits a full bucket and then the refill (up to twice the limit as well).
 *
 * @since 0.1.0
 */
import { AccountLimits, SpendCap, TaskError } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Redis, type RedisOptions } from "ioredis"
import * as RedisLimits from "./internal/redisLimits.js"
import * as SharedLimits from "./internal/sharedLimits.js"

/** Options of a shared budget: the limits (apixo's by default), the account name, leases and polls. */
export type Options = SharedLimits.Options

/** One process's handle on the shared budget: the service, its holder id, and whether it is idle. */
export type Holder = SharedLimits.Holder

/** Where Redis is: a `redis://` URL or ioredis options; and the prefix of every key (default `reelkit:`). */
export interface ConnectionOptions {
  readonly connection: string | RedisOptions
  readonly prefix?: string | undefined
}

const openError = (cause: unknown) =>
  new TaskError.LedgerError({
    operation: "account-limits:open",
    message: `cannot reach Redis: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

/** A Redis connection for the current scope, checked with a PING; closed with the scope. */
export const connect = (connection: string | RedisOptions): Effect.Effect<Redis, TaskError.LedgerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const options: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 3 }
        const redis =
          typeof connection === "string" ? new Redis(connection, options) : new Redis({ ...options, ...connection })
        try {
          await redis.connect()
          await redis.ping()
        } catch (error) {
          redis.disconnect()
          throw error
        }
        return redis
      },
      catch: openError
    }),
    (redis) => Effect.promise(() => redis.quit().catch(() => "closed"))
  )

/** Builds a holder on a Redis connection. */
export const makeHolder = (
  redis: Redis,
  options: Options & { readonly prefix?: string | undefined } = {}
): Effect.Effect<Holder, never, Scope.Scope> => {
  const settings = SharedLimits.settingsOf(options, AccountLimits.apixoDefaults)
  return SharedLimits.make(
    RedisLimits.makeBackend(redis, options.prefix ?? "reelkit:", settings),
    settings,
    options.holderId
  )
}

/** `AccountLimits` on a Redis connection of its own. */
export const layer = (
  options: Options & ConnectionOptions
): Layer.Layer<AccountLimits.AccountLimits, TaskError.LedgerError> =>
  Layer.scoped(
    AccountLimits.AccountLimits,
    Effect.flatMap(connect(options.connection), (redis) =>
      Effect.map(makeHolder(redis, options), (holder) => holder.limits)
    )
  )

/** Options of a shared spend cap: the caps, a price table, and the account name. */
export interface SpendCapOptions extends SpendCap.Options {
  readonly account?: string | undefined
}

/** The `SpendCap` store on a Redis connection (for `SpendCap.make`). */
export const makeSpendStore = (
  redis: Redis,
  options: { readonly account?: string | undefined; readonly prefix?: string | undefined } = {}
): SpendCap.Store => RedisLimits.makeSpendStore(redis, options.prefix ?? "reelkit:", options.account ?? "default")

/** `SpendCap` on a Redis connection of its own. */
export const layerSpendCap = (
  options: SpendCapOptions & ConnectionOptions
): Layer.Layer<SpendCap.SpendCap, TaskError.LedgerError> =>
  Layer.scoped(
    SpendCap.SpendCap,
    Effect.map(connect(options.connection), (redis) => SpendCap.make(makeSpendStore(redis, options), options))
  )
