/**
 * `AccountLimits` and `SpendCap` shared by every process and machine on one PostgreSQL database
 * (the one the PostgreSQL ledger uses works). Each decision is one transaction that locks the
 * account's row first, so no sliding window ever holds more requests than the limit across all
 * processes; slots are leases by task key, renewed by their process while it lives.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { AccountLimits, SpendCap, TaskError } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as SharedLimits from "./internal/sharedLimits.js"
import * as SqlLimits from "./internal/sqlLimits.js"

/** Options of a shared budget: the limits (apixo's by default), the account name, leases and polls. */
export type Options = SharedLimits.Options

/** One process's handle on the shared budget: the service, its holder id, and whether it is idle. */
export type Holder = SharedLimits.Holder

/** Connection options: those of `@effect/sql-pg`'s `PgClient`. */
export type ConnectionOptions = PgClient.PgClientConfig

const openError = (error: { readonly message: string }) =>
  new TaskError.LedgerError({ operation: "account-limits:open", message: error.message, cause: error })

/** Builds a holder on the PostgreSQL client in context (migrating the tables first). */
export const makeHolder = (
  options: Options = {}
): Effect.Effect<Holder, TaskError.LedgerError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    yield* Effect.mapError(SqlLimits.migrate, openError)
    const settings = SharedLimits.settingsOf(options, AccountLimits.apixoDefaults)
    const backend = yield* SqlLimits.makeBackend(settings).pipe(Effect.mapError(openError))
    return yield* SharedLimits.make(backend, settings, options.holderId)
  })

/** `AccountLimits` on the PostgreSQL client already in context (e.g. the ledger's). */
export const layerClient = (
  options: Options = {}
): Layer.Layer<AccountLimits.AccountLimits, TaskError.LedgerError, SqlClient.SqlClient> =>
  Layer.scoped(
    AccountLimits.AccountLimits,
    Effect.map(makeHolder(options), (holder) => holder.limits)
  )

const clientLayer = (connection: ConnectionOptions) =>
  PgClient.layer(connection).pipe(Layer.catchAll((error) => Layer.fail(openError(error))))

/** `AccountLimits` on a PostgreSQL pool of its own. */
export const layer = (
  options: Options & { readonly connection: ConnectionOptions }
): Layer.Layer<AccountLimits.AccountLimits, TaskError.LedgerError> =>
  layerClient(options).pipe(Layer.provide(clientLayer(options.connection)))

/** Options of a shared spend cap: the caps, a price table, and the account name. */
export interface SpendCapOptions extends SpendCap.Options {
  readonly account?: string | undefined
}

/** The `SpendCap` store on the PostgreSQL client in context (migrating the tables first), for `SpendCap.make`. */
export const makeSpendStore = (
  options: { readonly account?: string | undefined } = {}
): Effect.Effect<SpendCap.Store, TaskError.LedgerError, SqlClient.SqlClient> =>
  Effect.zipRight(
    Effect.mapError(SqlLimits.migrate, openError),
    SqlLimits.makeSpendStore(options.account ?? "default").pipe(Effect.mapError(openError))
  )

/** `SpendCap` on the PostgreSQL client already in context. */
export const layerSpendCapClient = (
  options: SpendCapOptions = {}
): Layer.Layer<SpendCap.SpendCap, TaskError.LedgerError, SqlClient.SqlClient> =>
  Layer.effect(
    SpendCap.SpendCap,
    Effect.map(makeSpendStore(options), (store) => SpendCap.make(store, options))
  )

/** `SpendCap` on a PostgreSQL pool of its own. */
export const layerSpendCap = (
  options: SpendCapOptions & { readonly connection: ConnectionOptions }
): Layer.Layer<SpendCap.SpendCap, TaskError.LedgerError> =>
  layerSpendCapClient(options).pipe(Layer.provide(clientLayer(options.connection)))
