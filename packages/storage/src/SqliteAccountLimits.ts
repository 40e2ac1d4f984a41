/**
 * `AccountLimits` and `SpendCap` shared by every process on one SQLite file: the playground keeps
 * them in the ledger's file, so every process on one `REELKIT_HOME` (several CLI runs and `serve`)
 * spends one budget. Each decision is one transaction that takes the file's write lock first, so
 * no sliding window ever holds more requests than the limit across all processes; slots are leases
 * by task key, renewed by this process while it lives and free again `leaseMillis` after it dies.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { AccountLimits, SpendCap, TaskError } from "@reelkit/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as SharedLimits from "./internal/sharedLimits.js"
import * as SqlLimits from "./internal/sqlLimits.js"

/** Options of a shared budget: the limits (apixo's by default), the account name, leases and polls. */
export type Options = SharedLimits.Options

/** Where the database is: a file (created with its directory if missing) and its lock wait. */
export interface FileOptions {
  readonly filename: string
  /** How long a write waits for another process's lock, in milliseconds (default 5000). */
  readonly busyTimeoutMillis?: number | undefined
}

/** One process's handle on the shared budget: the service, its holder id, and whether it is idle. */
export type Holder = SharedLimits.Holder

const openError = (error: { readonly message: string }) =>
  new TaskError.LedgerError({ operation: "account-limits:open", message: error.message, cause: error })

const prepare = (busyTimeoutMillis: number | undefined) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMillis ?? 5000))}`)
    yield* SqlLimits.migrate
  }).pipe(Effect.mapError(openError))

/** Builds a holder on the SQLite client in context (migrating the tables first). */
export const makeHolder = (
  options: Options & { readonly busyTimeoutMillis?: number | undefined } = {}
): Effect.Effect<Holder, TaskError.LedgerError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    yield* prepare(options.busyTimeoutMillis)
    const settings = SharedLimits.settingsOf(options, AccountLimits.apixoDefaults)
    const backend = yield* SqlLimits.makeBackend(settings).pipe(Effect.mapError(openError))
    return yield* SharedLimits.make(backend, settings, options.holderId)
  })

/** `AccountLimits` on the SQLite client already in context (e.g. the ledger's). */
export const layerClient = (
  options: Options & { readonly busyTimeoutMillis?: number | undefined } = {}
): Layer.Layer<AccountLimits.AccountLimits, TaskError.LedgerError, SqlClient.SqlClient> =>
  Layer.scoped(
    AccountLimits.AccountLimits,
    Effect.map(makeHolder(options), (holder) => holder.limits)
  )

// better-sqlite3 creates the file but not its directory.
const clientLayer = (file: FileOptions) =>
  Layer.unwrapEffect(
    Effect.try({
      try: () => {
        if (file.filename !== ":memory:" && file.filename !== "")
          Fs.mkdirSync(Path.dirname(Path.resolve(file.filename)), { recursive: true })
        // This connection only: a budget entry lost to a power cut costs nothing, so a commit
        // need not wait for the disk (the ledger's own connection keeps its full durability).
        return Layer.tap(SqliteClient.layer({ filename: file.filename }), (context) =>
          Context.get(context, SqlClient.SqlClient).unsafe("PRAGMA synchronous = NORMAL")
        )
      },
      catch: (cause) =>
        new TaskError.LedgerError({
          operation: "account-limits:open",
          message: `cannot create the directory of ${file.filename}`,
          cause
        })
    })
  ).pipe(Layer.catchAll((error) => Layer.fail(error._tag === "LedgerError" ? error : openError(error))))

/** `AccountLimits` in a SQLite file (the ledger's file works: the tables are separate). */
export const layer = (
  options: Options & FileOptions
): Layer.Layer<AccountLimits.AccountLimits, TaskError.LedgerError> =>
  layerClient(options).pipe(Layer.provide(clientLayer(options)))

/** Options of a shared spend cap: the caps, a price table, and the account name. */
export interface SpendCapOptions extends SpendCap.Options {
  readonly account?: string | undefined
}

/** The `SpendCap` store on the SQLite client in context (migrating the tables first), for `SpendCap.make`. */
export const makeSpendStore = (
  options: { readonly account?: string | undefined; readonly busyTimeoutMillis?: number | undefined } = {}
): Effect.Effect<SpendCap.Store, TaskError.LedgerError, SqlClient.SqlClient> =>
  Effect.zipRight(
    prepare(options.busyTimeoutMillis),
    SqlLimits.makeSpendStore(options.account ?? "default").pipe(Effect.mapError(openError))
  )

/** `SpendCap` on the SQLite client already in context. */
export const layerSpendCapClient = (
  options: SpendCapOptions & { readonly busyTimeoutMillis?: number | undefined } = {}
): Layer.Layer<SpendCap.SpendCap, TaskError.LedgerError, SqlClient.SqlClient> =>
  Layer.effect(
    SpendCap.SpendCap,
    Effect.map(makeSpendStore(options), (store) => SpendCap.make(store, options))
  )

/** `SpendCap` in a SQLite file (the ledger's file works). */
export const layerSpendCap = (
  options: SpendCapOptions & FileOptions
): Layer.Layer<SpendCap.SpendCap, TaskError.LedgerError> =>
  layerSpendCapClient(options).pipe(Layer.provide(clientLayer(options)))
