// AccountLimits and SpendCap on an @effect/sql client, shared by the SQLite and PostgreSQL stores.
// Every decision runs in one transaction that first writes the account's row: on PostgreSQL that
// takes the row's lock, on SQLite the database's write lock, so the decisions of every process on
// the store are serialized and each reads what the previous one wrote. Times are the Clock's epoch
// milliseconds, so every process on one store must keep its clock in sync (NTP does).
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { SpendCap } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { arrivalTurn, type Backend, type Kind, servedTurn, type Settings, StoreError } from "./sharedLimits.js"

const accounts = "reelkit_limit_accounts"
const requests = "reelkit_limit_requests"
const slots = "reelkit_limit_slots"
const waiters = "reelkit_limit_waiters"
const spend = "reelkit_spend"

/** The Migrator's table for these tables, apart from the ledger's. */
export const migrationsTable = "reelkit_limits_migrations"

const createLimits = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE TABLE ${accounts} (
  account TEXT PRIMARY KEY NOT NULL,
  paused_until BIGINT NOT NULL,
  seq BIGINT NOT NULL
)`)
  yield* sql.unsafe(`CREATE TABLE ${requests} (account TEXT NOT NULL, taken_at BIGINT NOT NULL, holder TEXT NOT NULL)`)
  yield* sql.unsafe(`CREATE INDEX ${requests}_account_taken ON ${requests} (account, taken_at)`)
  yield* sql.unsafe(`CREATE TABLE ${slots} (
  account TEXT NOT NULL,
  task_key TEXT NOT NULL,
  holder TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (account, task_key)
)`)
  yield* sql.unsafe(`CREATE TABLE ${waiters} (
  account TEXT NOT NULL,
  kind TEXT NOT NULL,
  holder TEXT NOT NULL,
  turn BIGINT NOT NULL,
  waiting_until BIGINT NOT NULL,
  PRIMARY KEY (account, kind, holder)
)`)
})

const createSpend = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE TABLE ${spend} (
  account TEXT NOT NULL,
  task_key TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  seconds DOUBLE PRECISION NOT NULL,
  amount DOUBLE PRECISION,
  reserved_at BIGINT NOT NULL,
  PRIMARY KEY (account, task_key)
)`)
  yield* sql.unsafe(`CREATE INDEX ${spend}_account_reserved ON ${spend} (account, reserved_at)`)
})

/** Every migration of these tables. Append only. */
export const migrations = { "1_create_limits": createLimits, "2_create_spend": createSpend }
const latestId = Object.keys(migrations).length

const storeError =
  (operation: string) =>
  (error: SqlError): StoreError =>
    new StoreError({
      operation,
      message: error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message,
      cause: error
    })

class MigrationPending {
  readonly _tag = "MigrationPending"
}

/**
 * Brings the tables up to date. As for the ledger, a concurrent migration may return before the
 * other process committed (on SQLite), so this waits until the newest migration is recorded.
 */
export const migrate: Effect.Effect<void, StoreError, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: migrationsTable })
  const rows = yield* sql<{ readonly latest: unknown }>`SELECT MAX(migration_id) AS latest FROM ${sql(migrationsTable)}`
  if (Number(rows[0]?.latest ?? 0) < latestId) return yield* Effect.fail(new MigrationPending())
}).pipe(
  Effect.retry({
    while: (error) => error._tag === "MigrationPending" || error._tag === "SqlError",
    schedule: Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(100)))
  }),
  Effect.mapError((error) =>
    error._tag === "SqlError"
      ? storeError("migrate")(error)
      : new StoreError({
          operation: "migrate",
          message: error._tag === "MigrationPending" ? "another process did not finish migrating" : String(error)
        })
  )
)

const num = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value))

/**
 * Request times never go back: a caller whose clock reading is older than the newest request (it
 * was delayed after reading it, or its clock lags a little) is counted at the newest request's
 * time, so it never sees a window that a caller further ahead has already trimmed. Only within one
 * window: a clock that far behind is a clock out of sync, and following it would pin every
 * process to the future.
 */
export const monotonic = (callerNow: number, newest: number, windowMillis: number): number =>
  newest > callerNow && newest - callerNow <= windowMillis ? newest : callerNow

/** The AccountLimits backend on the SQL client in context, for `settings.account`. */
export const makeBackend = (settings: Settings): Effect.Effect<Backend, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const account = settings.account
    yield* sql`INSERT INTO ${sql(accounts)} (account, paused_until, seq) VALUES (${account}, 0, 0)
      ON CONFLICT (account) DO NOTHING`.pipe(Effect.mapError(storeError("open")))

    // Writing the account row first is what serializes every decision on the account.
    const lockAccount = Effect.map(
      sql<{ paused_until: unknown; seq: unknown }>`UPDATE ${sql(accounts)} SET seq = seq
        WHERE account = ${account} RETURNING paused_until, seq`,
      (rows) => ({ pausedUntil: num(rows[0]?.paused_until), seq: num(rows[0]?.seq) })
    )
    // Rows of the holders' round-robin stay after a holder stops waiting (its turn says when it
    // was last served); those not served for a thousand places are dropped.
    const queueOf = (kind: Kind, seq: number, now: number) =>
      Effect.zipRight(
        sql`DELETE FROM ${sql(waiters)} WHERE account = ${account} AND waiting_until <= ${now}
          AND turn < ${servedTurn(seq - 1000)}`,
        sql<{ holder: string; turn: unknown }>`SELECT holder, turn FROM ${sql(waiters)}
          WHERE account = ${account} AND kind = ${kind} AND waiting_until > ${now} ORDER BY turn, holder`
      )
    // Keeps the holder's turn (or gives it an arrival turn) and says how long it may go quiet.
    const wait = (kind: Kind, holder: string, seq: number, now: number, millis: number) =>
      Effect.as(
        sql`INSERT INTO ${sql(waiters)} (account, kind, holder, turn, waiting_until)
          VALUES (${account}, ${kind}, ${holder}, ${arrivalTurn(seq)}, ${now + millis + settings.graceMillis})
          ON CONFLICT (account, kind, holder) DO UPDATE SET waiting_until = excluded.waiting_until`,
        Math.max(1, Math.ceil(millis))
      )
    // After a place is taken: the account counts one more serve, and the holder goes to the back
    // of the round-robin (still waiting when it has more to ask for).
    const served = (kind: Kind, holder: string, seq: number, now: number, more: boolean) =>
      Effect.zipRight(
        sql`UPDATE ${sql(accounts)} SET seq = ${seq + 1} WHERE account = ${account}`,
        sql`INSERT INTO ${sql(waiters)} (account, kind, holder, turn, waiting_until)
          VALUES (${account}, ${kind}, ${holder}, ${servedTurn(seq + 1)}, ${more ? now + settings.graceMillis : 0})
          ON CONFLICT (account, kind, holder) DO UPDATE SET turn = excluded.turn, waiting_until = excluded.waiting_until`
      )
    const stopWaiting = (kind: Kind, holder: string) =>
      sql`UPDATE ${sql(waiters)} SET waiting_until = 0
        WHERE account = ${account} AND kind = ${kind} AND holder = ${holder}`
    const notMyTurn = (queue: ReadonlyArray<{ holder: string }>, holder: string) =>
      queue.length > 0 && queue[0]!.holder !== holder

    const takeRequest: Backend["takeRequest"] = (holder, callerNow, more) =>
      Effect.gen(function* () {
        const { pausedUntil, seq } = yield* lockAccount
        const [latest] = yield* sql<{ newest: unknown }>`SELECT MAX(taken_at) AS newest FROM ${sql(requests)}
          WHERE account = ${account}`
        const now = monotonic(callerNow, num(latest?.newest), settings.windowMillis)
        if (pausedUntil > now) return yield* wait("request", holder, seq, now, pausedUntil - now)
        yield* sql`DELETE FROM ${sql(requests)} WHERE account = ${account} AND taken_at <= ${now - settings.windowMillis}`
        const [window] = yield* sql<{ count: unknown; oldest: unknown }>`SELECT COUNT(*) AS count,
          MIN(taken_at) AS oldest FROM ${sql(requests)} WHERE account = ${account}`
        if (num(window?.count) >= settings.requestsPerWindow)
          return yield* wait("request", holder, seq, now, num(window?.oldest) + settings.windowMillis - now)
        const queue = yield* queueOf("request", seq, now)
        if (notMyTurn(queue, holder)) return yield* wait("request", holder, seq, now, settings.turnPollMillis)
        yield* sql`INSERT INTO ${sql(requests)} (account, taken_at, holder) VALUES (${account}, ${now}, ${holder})`
        yield* served("request", holder, seq, now, more)
        return 0
      }).pipe(sql.withTransaction, Effect.mapError(storeError("takeRequest")))

    const acquireSlot: Backend["acquireSlot"] = (holder, taskKey, now, more) =>
      Effect.gen(function* () {
        const { seq } = yield* lockAccount
        yield* sql`DELETE FROM ${sql(slots)} WHERE account = ${account} AND expires_at <= ${now}`
        const expiresAt = now + settings.leaseMillis
        // The task already has a slot (this holder's, or a dead or former holder's): it moves here.
        const moved = yield* sql`UPDATE ${sql(slots)} SET holder = ${holder}, expires_at = ${expiresAt}
          WHERE account = ${account} AND task_key = ${taskKey} RETURNING task_key`
        if (moved.length > 0) {
          if (!more) yield* stopWaiting("slot", holder)
          return 0
        }
        const [taken] = yield* sql<{ count: unknown; soonest: unknown }>`SELECT COUNT(*) AS count,
          MIN(expires_at) AS soonest FROM ${sql(slots)} WHERE account = ${account}`
        if (num(taken?.count) >= settings.concurrentTasks)
          return yield* wait("slot", holder, seq, now, Math.min(num(taken?.soonest) - now, settings.slotPollMillis))
        const queue = yield* queueOf("slot", seq, now)
        if (notMyTurn(queue, holder)) return yield* wait("slot", holder, seq, now, settings.turnPollMillis)
        yield* sql`INSERT INTO ${sql(slots)} (account, task_key, holder, expires_at)
          VALUES (${account}, ${taskKey}, ${holder}, ${expiresAt})`
        yield* served("slot", holder, seq, now, more)
        return 0
      }).pipe(sql.withTransaction, Effect.mapError(storeError("acquireTaskSlot")))

    return {
      takeRequest,
      acquireSlot,
      leave: (holder, kind) => stopWaiting(kind, holder).pipe(Effect.asVoid, Effect.mapError(storeError("leave"))),
      releaseSlot: (holder, taskKey) =>
        sql`DELETE FROM ${sql(slots)} WHERE account = ${account} AND task_key = ${taskKey} AND holder = ${holder}`.pipe(
          Effect.asVoid,
          Effect.mapError(storeError("releaseTaskSlot"))
        ),
      holdsSlot: (holder, taskKey, now) =>
        sql`SELECT task_key FROM ${sql(slots)} WHERE account = ${account} AND task_key = ${taskKey}
          AND holder = ${holder} AND expires_at > ${now}`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(storeError("holdsTaskSlot"))
        ),
      renewSlots: (holder, now) =>
        sql<{ task_key: string }>`UPDATE ${sql(slots)} SET expires_at = ${now + settings.leaseMillis}
          WHERE account = ${account} AND holder = ${holder} AND expires_at > ${now} RETURNING task_key`.pipe(
          Effect.map((rows) => rows.map((row) => String(row.task_key))),
          Effect.mapError(storeError("renew"))
        ),
      backOff: (until) =>
        sql`UPDATE ${sql(accounts)} SET paused_until = ${until}
          WHERE account = ${account} AND paused_until < ${until}`.pipe(
          Effect.asVoid,
          Effect.mapError(storeError("backOff"))
        ),
      snapshot: (now) =>
        Effect.gen(function* () {
          const [row] = yield* sql<{ requests: unknown; slots: unknown; paused_until: unknown }>`SELECT
            (SELECT COUNT(*) FROM ${sql(requests)} WHERE account = ${account}
              AND taken_at > ${now - settings.windowMillis}) AS requests,
            (SELECT COUNT(*) FROM ${sql(slots)} WHERE account = ${account} AND expires_at > ${now}) AS slots,
            paused_until FROM ${sql(accounts)} WHERE account = ${account}`
          return {
            requestsInWindow: num(row?.requests),
            tasksInFlight: num(row?.slots),
            pausedUntil: num(row?.paused_until)
          }
        }).pipe(Effect.mapError(storeError("snapshot")))
    } satisfies Backend
  })

const dieOnStoreError = <A>(effect: Effect.Effect<A, SqlError>, operation: string): Effect.Effect<A> =>
  effect.pipe(
    Effect.mapError(storeError(operation)),
    Effect.retry(Schedule.exponential("20 millis").pipe(Schedule.intersect(Schedule.recurs(8)))),
    Effect.orDieWith((error) => new Error(`SpendCap store ${error.operation} failed: ${error.message}`))
  )

/** The SpendCap store on the SQL client in context, for `account`. */
export const makeSpendStore = (account: string): Effect.Effect<SpendCap.Store, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* sql`INSERT INTO ${sql(accounts)} (account, paused_until, seq) VALUES (${account}, 0, 0)
      ON CONFLICT (account) DO NOTHING`.pipe(Effect.mapError(storeError("open")))
    const usage = (periods: SpendCap.Periods) =>
      Effect.map(
        sql<{ day_seconds: unknown; month_seconds: unknown; day_money: unknown; month_money: unknown }>`SELECT
          COALESCE(SUM(CASE WHEN reserved_at >= ${periods.dayStart} AND reserved_at < ${periods.dayEnd}
            THEN seconds ELSE 0 END), 0) AS day_seconds,
          COALESCE(SUM(seconds), 0) AS month_seconds,
          COALESCE(SUM(CASE WHEN reserved_at >= ${periods.dayStart} AND reserved_at < ${periods.dayEnd}
            THEN COALESCE(amount, 0) ELSE 0 END), 0) AS day_money,
          COALESCE(SUM(COALESCE(amount, 0)), 0) AS month_money
          FROM ${sql(spend)} WHERE account = ${account}
          AND reserved_at >= ${periods.monthStart} AND reserved_at < ${periods.monthEnd}`,
        ([row]): SpendCap.Usage => ({
          daySeconds: num(row?.day_seconds),
          monthSeconds: num(row?.month_seconds),
          dayMoney: num(row?.day_money),
          monthMoney: num(row?.month_money)
        })
      )
    return {
      reserve: (entry, periods, caps) =>
        Effect.gen(function* () {
          // The account row's lock makes check-and-record atomic across processes.
          yield* sql`UPDATE ${sql(accounts)} SET seq = seq WHERE account = ${account}`
          const existing = yield* sql`SELECT task_key FROM ${sql(spend)}
            WHERE account = ${account} AND task_key = ${entry.taskKey}`
          if (existing.length > 0) return Option.none()
          const current = yield* usage(periods)
          if (SpendCap.exceededCap(caps, current, entry) !== undefined) return Option.some(current)
          yield* sql`INSERT INTO ${sql(spend)} (account, task_key, provider_id, model_id, seconds, amount, reserved_at)
            VALUES (${account}, ${entry.taskKey}, ${entry.providerId}, ${entry.modelId}, ${entry.seconds},
            ${entry.amount ?? null}, ${entry.reservedAt})`
          return Option.none()
        }).pipe(sql.withTransaction, (effect) => dieOnStoreError(effect, "reserve")),
      release: (taskKey) =>
        dieOnStoreError(
          Effect.asVoid(sql`DELETE FROM ${sql(spend)} WHERE account = ${account} AND task_key = ${taskKey}`),
          "release"
        ),
      usage: (periods) => dieOnStoreError(usage(periods), "usage")
    } satisfies SpendCap.Store
  })
