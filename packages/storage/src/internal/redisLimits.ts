// AccountLimits and SpendCap on Redis. Each decision is one Lua script, which Redis runs
// atomically, over a sorted set of request times (a sliding log, not @effect/experimental's fixed
// window or token bucket: both admit up to twice the limit in a window that straddles a refill),
// a sorted set of slot leases by expiry, and a sorted set of waiting holders by turn. Every key of
// an account shares one hash tag, so a Redis Cluster keeps them on one shard. Times are the
// caller's Clock, as for the SQL stores.
import type { SpendCap } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { Redis } from "ioredis"
import { createHash } from "node:crypto"
import { type Backend, type Kind, type Settings, StoreError } from "./sharedLimits.js"

// Shared Lua over one kind's round-robin: `queue` holds every recent holder by turn, `untils` the
// time until which each one waits (0 once it stopped). Holders not served for a thousand places
// and not waiting are dropped.
const waitersLua = `
local function prune(queue, untils, seq, now)
  local old = redis.call("ZRANGEBYSCORE", queue, "-inf", "(" .. (2 * (seq - 1000)))
  for i = 1, #old do
    if tonumber(redis.call("HGET", untils, old[i]) or "0") <= now then
      redis.call("ZREM", queue, old[i])
      redis.call("HDEL", untils, old[i])
    end
  end
end
local function myTurn(queue, untils, holder, now)
  local all = redis.call("ZRANGE", queue, 0, -1)
  for i = 1, #all do
    if tonumber(redis.call("HGET", untils, all[i]) or "0") > now then return all[i] == holder end
  end
  return true
end
local function wait(queue, untils, holder, seq, now, millis, grace)
  if not redis.call("ZSCORE", queue, holder) then redis.call("ZADD", queue, 2 * seq - 1, holder) end
  redis.call("HSET", untils, holder, now + millis + grace)
  return math.max(1, math.ceil(millis))
end
local function served(meta, queue, untils, holder, now, more, grace)
  local seq = redis.call("HINCRBY", meta, "seq", 1)
  redis.call("ZADD", queue, 2 * seq, holder)
  if more then redis.call("HSET", untils, holder, now + grace) else redis.call("HSET", untils, holder, 0) end
end
`

// KEYS: meta, requests, queue, untils. ARGV: holder, now, window, limit, grace, turnPoll, more.
const takeRequestLua = `${waitersLua}
local meta, requests, queue, untils = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local holder, now, window, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local grace, turnPoll, more = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == "1"
-- Request times never go back, within one window (see sqlLimits.monotonic).
local newest = redis.call("ZRANGE", requests, -1, -1, "WITHSCORES")
if newest[2] ~= nil and tonumber(newest[2]) > now and tonumber(newest[2]) - now <= window then now = tonumber(newest[2]) end
local seq = tonumber(redis.call("HGET", meta, "seq") or "0")
local paused = tonumber(redis.call("HGET", meta, "paused_until") or "0")
if paused > now then return wait(queue, untils, holder, seq, now, paused - now, grace) end
redis.call("ZREMRANGEBYSCORE", requests, "-inf", now - window)
if redis.call("ZCARD", requests) >= limit then
  local oldest = redis.call("ZRANGE", requests, 0, 0, "WITHSCORES")
  return wait(queue, untils, holder, seq, now, tonumber(oldest[2]) + window - now, grace)
end
prune(queue, untils, seq, now)
if not myTurn(queue, untils, holder, now) then return wait(queue, untils, holder, seq, now, turnPoll, grace) end
redis.call("ZADD", requests, now, now .. ":" .. seq .. ":" .. holder)
served(meta, queue, untils, holder, now, more, grace)
return 0
`

// KEYS: meta, slots, owners, queue, untils. ARGV: holder, taskKey, now, lease, limit, grace, turnPoll, slotPoll, more.
const acquireSlotLua = `${waitersLua}
local meta, slots, owners, queue, untils = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local holder, taskKey, now, lease, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local grace, turnPoll, slotPoll, more = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9] == "1"
local seq = tonumber(redis.call("HGET", meta, "seq") or "0")
local expired = redis.call("ZRANGEBYSCORE", slots, "-inf", now)
for i = 1, #expired do redis.call("HDEL", owners, expired[i]) end
redis.call("ZREMRANGEBYSCORE", slots, "-inf", now)
if redis.call("ZSCORE", slots, taskKey) then
  redis.call("ZADD", slots, now + lease, taskKey)
  redis.call("HSET", owners, taskKey, holder)
  if not more and redis.call("HEXISTS", untils, holder) == 1 then redis.call("HSET", untils, holder, 0) end
  return 0
end
if redis.call("ZCARD", slots) >= limit then
  local soonest = redis.call("ZRANGE", slots, 0, 0, "WITHSCORES")
  return wait(queue, untils, holder, seq, now, math.min(tonumber(soonest[2]) - now, slotPoll), grace)
end
prune(queue, untils, seq, now)
if not myTurn(queue, untils, holder, now) then return wait(queue, untils, holder, seq, now, turnPoll, grace) end
redis.call("ZADD", slots, now + lease, taskKey)
redis.call("HSET", owners, taskKey, holder)
served(meta, queue, untils, holder, now, more, grace)
return 0
`

// KEYS: slots, owners. ARGV: holder, taskKey.
const releaseSlotLua = `
if redis.call("HGET", KEYS[2], ARGV[2]) == ARGV[1] then
  redis.call("ZREM", KEYS[1], ARGV[2])
  redis.call("HDEL", KEYS[2], ARGV[2])
end
return 0
`

// KEYS: slots, owners. ARGV: holder, now, lease. Answers the task keys still held.
const renewSlotsLua = `
local held = {}
local all = redis.call("HGETALL", KEYS[2])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    local expires = tonumber(redis.call("ZSCORE", KEYS[1], all[i]) or "0")
    if expires > tonumber(ARGV[2]) then
      redis.call("ZADD", KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), all[i])
      held[#held + 1] = all[i]
    end
  end
end
return held
`

// KEYS: meta. ARGV: until.
const backOffLua = `
local paused = tonumber(redis.call("HGET", KEYS[1], "paused_until") or "0")
if tonumber(ARGV[1]) > paused then redis.call("HSET", KEYS[1], "paused_until", ARGV[1]) end
return 0
`

// KEYS: entries, usage. ARGV: taskKey, entry, dayField, monthField, seconds, amount, caps (4, "" = none).
// Answers {1} when recorded (or already there), else {0, daySeconds, monthSeconds, dayMoney, monthMoney}.
const reserveLua = `
local entries, usage = KEYS[1], KEYS[2]
if redis.call("HEXISTS", entries, ARGV[1]) == 1 then return {1} end
local day, month = ARGV[3], ARGV[4]
local seconds, amount = tonumber(ARGV[5]), tonumber(ARGV[6])
local function read(field) return tonumber(redis.call("HGET", usage, field) or "0") end
local ds, ms, dm, mm = read(day .. ":s"), read(month .. ":s"), read(day .. ":m"), read(month .. ":m")
local function over(cap, used, requested)
  return cap ~= "" and used + requested > tonumber(cap)
end
if over(ARGV[7], ds, seconds) or over(ARGV[8], ms, seconds) or over(ARGV[9], dm, amount) or over(ARGV[10], mm, amount) then
  return {0, tostring(ds), tostring(ms), tostring(dm), tostring(mm)}
end
redis.call("HINCRBYFLOAT", usage, day .. ":s", seconds)
redis.call("HINCRBYFLOAT", usage, month .. ":s", seconds)
redis.call("HINCRBYFLOAT", usage, day .. ":m", amount)
redis.call("HINCRBYFLOAT", usage, month .. ":m", amount)
redis.call("HSET", entries, ARGV[1], ARGV[2])
return {1}
`

// KEYS: entries, usage. ARGV: taskKey. Takes the reservation's seconds and money off its periods.
const releaseSpendLua = `
local entry = redis.call("HGET", KEYS[1], ARGV[1])
if not entry then return 0 end
local day, month, seconds, amount = string.match(entry, "^([^|]*)|([^|]*)|([^|]*)|([^|]*)")
redis.call("HINCRBYFLOAT", KEYS[2], day .. ":s", -tonumber(seconds))
redis.call("HINCRBYFLOAT", KEYS[2], month .. ":s", -tonumber(seconds))
redis.call("HINCRBYFLOAT", KEYS[2], day .. ":m", -tonumber(amount))
redis.call("HINCRBYFLOAT", KEYS[2], month .. ":m", -tonumber(amount))
redis.call("HDEL", KEYS[1], ARGV[1])
return 1
`

/** The keys of one account, under one hash tag. */
const keysOf = (prefix: string, account: string) => {
  const base = `${prefix}{${account}}`
  return {
    meta: `${base}:meta`,
    requests: `${base}:requests`,
    slots: `${base}:slots`,
    owners: `${base}:owners`,
    queue: (kind: Kind) => `${base}:queue:${kind}`,
    untils: (kind: Kind) => `${base}:untils:${kind}`,
    spendEntries: `${base}:spend:entries`,
    spendUsage: `${base}:spend:usage`
  }
}

// Scripts go by their SHA1 (EVALSHA), sent in full only when the server does not know them yet.
const shaOf = new Map<string, string>()
const evalCached = async (
  redis: Redis,
  script: string,
  keyList: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>
): Promise<unknown> => {
  let sha = shaOf.get(script)
  if (sha === undefined) {
    sha = createHash("sha1").update(script).digest("hex")
    shaOf.set(script, sha)
  }
  const values = [...keyList, ...args.map(String)]
  try {
    return await redis.evalsha(sha, keyList.length, ...values)
  } catch (error) {
    if (!(error instanceof Error) || !error.message.includes("NOSCRIPT")) throw error
    return await redis.eval(script, keyList.length, ...values)
  }
}

const run = <A>(operation: string, evaluate: () => Promise<A>): Effect.Effect<A, StoreError> =>
  Effect.tryPromise({
    try: evaluate,
    catch: (cause) =>
      new StoreError({ operation, message: cause instanceof Error ? cause.message : String(cause), cause })
  })

/** The AccountLimits backend on a Redis connection, for `settings.account`. */
export const makeBackend = (redis: Redis, prefix: string, settings: Settings): Backend => {
  const keys = keysOf(prefix, settings.account)
  const evaluate = (script: string, keyList: ReadonlyArray<string>, args: ReadonlyArray<string | number>) =>
    evalCached(redis, script, keyList, args)
  return {
    takeRequest: (holder, now, more) =>
      run("takeRequest", () =>
        evaluate(
          takeRequestLua,
          [keys.meta, keys.requests, keys.queue("request"), keys.untils("request")],
          [
            holder,
            now,
            settings.windowMillis,
            settings.requestsPerWindow,
            settings.graceMillis,
            settings.turnPollMillis,
            more ? 1 : 0
          ]
        )
      ).pipe(Effect.map(Number)),
    acquireSlot: (holder, taskKey, now, more) =>
      run("acquireTaskSlot", () =>
        evaluate(
          acquireSlotLua,
          [keys.meta, keys.slots, keys.owners, keys.queue("slot"), keys.untils("slot")],
          [
            holder,
            taskKey,
            now,
            settings.leaseMillis,
            settings.concurrentTasks,
            settings.graceMillis,
            settings.turnPollMillis,
            settings.slotPollMillis,
            more ? 1 : 0
          ]
        )
      ).pipe(Effect.map(Number)),
    leave: (holder, kind) => Effect.asVoid(run("leave", () => redis.hset(keys.untils(kind), holder, 0))),
    releaseSlot: (holder, taskKey) =>
      Effect.asVoid(
        run("releaseTaskSlot", () => evaluate(releaseSlotLua, [keys.slots, keys.owners], [holder, taskKey]))
      ),
    holdsSlot: (holder, taskKey, now) =>
      run("holdsTaskSlot", () =>
        Promise.all([redis.hget(keys.owners, taskKey), redis.zscore(keys.slots, taskKey)])
      ).pipe(Effect.map(([owner, expires]) => owner === holder && Number(expires ?? 0) > now)),
    renewSlots: (holder, now) =>
      run("renew", () => evaluate(renewSlotsLua, [keys.slots, keys.owners], [holder, now, settings.leaseMillis])).pipe(
        Effect.map((held) => (Array.isArray(held) ? held.map(String) : []))
      ),
    backOff: (until) => Effect.asVoid(run("backOff", () => evaluate(backOffLua, [keys.meta], [until]))),
    snapshot: (now) =>
      run("snapshot", () =>
        Promise.all([
          redis.zcount(keys.requests, `(${now - settings.windowMillis}`, "+inf"),
          redis.zcount(keys.slots, `(${now}`, "+inf"),
          redis.hget(keys.meta, "paused_until")
        ])
      ).pipe(
        Effect.map(([requests, slots, paused]) => ({
          requestsInWindow: requests,
          tasksInFlight: slots,
          pausedUntil: Number(paused ?? 0)
        }))
      )
  }
}

const dieOnStoreError = <A>(effect: Effect.Effect<A, StoreError>): Effect.Effect<A> =>
  effect.pipe(
    Effect.retry(Schedule.exponential("20 millis").pipe(Schedule.intersect(Schedule.recurs(8)))),
    Effect.orDieWith((error) => new Error(`SpendCap store ${error.operation} failed: ${error.message}`))
  )

const cap = (value: number | undefined) => (value === undefined ? "" : value)

/** The SpendCap store on a Redis connection, for `account`. */
export const makeSpendStore = (redis: Redis, prefix: string, account: string): SpendCap.Store => {
  const keys = keysOf(prefix, account)
  const fields = (periods: SpendCap.Periods) => ({ day: `d${periods.dayStart}`, month: `m${periods.monthStart}` })
  return {
    reserve: (entry, periods, caps) => {
      const { day, month } = fields(periods)
      const amount = entry.amount ?? 0
      return run("reserve", () =>
        evalCached(
          redis,
          reserveLua,
          [keys.spendEntries, keys.spendUsage],
          [
            entry.taskKey,
            `${day}|${month}|${entry.seconds}|${amount}|${entry.providerId}|${entry.modelId}|${entry.reservedAt}`,
            day,
            month,
            String(entry.seconds),
            String(amount),
            String(cap(caps.secondsPerDay)),
            String(cap(caps.secondsPerMonth)),
            String(cap(caps.moneyPerDay)),
            String(cap(caps.moneyPerMonth))
          ]
        )
      ).pipe(
        Effect.map((answer) => {
          const values = (answer as ReadonlyArray<unknown>).map(Number)
          return values[0] === 1
            ? Option.none()
            : Option.some({
                daySeconds: values[1]!,
                monthSeconds: values[2]!,
                dayMoney: values[3]!,
                monthMoney: values[4]!
              })
        }),
        dieOnStoreError
      )
    },
    release: (taskKey) =>
      dieOnStoreError(
        Effect.asVoid(
          run("release", () => evalCached(redis, releaseSpendLua, [keys.spendEntries, keys.spendUsage], [taskKey]))
        )
      ),
    usage: (periods) => {
      const { day, month } = fields(periods)
      return run("usage", () => redis.hmget(keys.spendUsage, `${day}:s`, `${month}:s`, `${day}:m`, `${month}:m`)).pipe(
        Effect.map(([daySeconds, monthSeconds, dayMoney, monthMoney]) => ({
          daySeconds: Number(daySeconds ?? 0),
          monthSeconds: Number(monthSeconds ?? 0),
          dayMoney: Number(dayMoney ?? 0),
          monthMoney: Number(monthMoney ?? 0)
        })),
        dieOnStoreError
      )
    }
  }
}
