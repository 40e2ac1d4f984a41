/**
 * The `TaskLedger` on PostgreSQL, for several processes or machines sharing one ledger. Same schema
 * and migrations as the SQLite ledger. Every write is one UPDATE fenced on the row's version and
 * lease holder (no lost updates; a process that lost its lease cannot write), remote task ids are
 * unique, and `claimUnfinished` takes leases with `FOR UPDATE SKIP LOCKED`, so two processes never
 * resume the same task at once.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { TaskError, TaskLedger } from "@reelkit/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlLedger from "./internal/sqlLedger.js"

/** Connection options: those of `@effect/sql-pg`'s `PgClient` (url or host/port/database/username/password, pool sizes). */
export type Options = PgClient.PgClientConfig

/**
 * Builds the ledger on the `SqlClient` in context (a PostgreSQL client), bringing its schema up to
 * date with @effect/sql's Migrator first (which locks its table, so concurrent starts are safe).
 */
export const make: Effect.Effect<TaskLedger.Service, TaskError.LedgerError, SqlClient.SqlClient> = Effect.zipRight(
  SqlLedger.migrate,
  SqlLedger.make("pg")
)

/** The ledger on the PostgreSQL client already in context (e.g. one the application shares). */
export const layerClient: Layer.Layer<TaskLedger.TaskLedger, TaskError.LedgerError, SqlClient.SqlClient> = Layer.effect(
  TaskLedger.TaskLedger,
  make
)

const toLedgerError = (error: unknown): TaskError.LedgerError =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "LedgerError"
    ? (error as TaskError.LedgerError)
    : new TaskError.LedgerError({
        operation: "connect",
        message: error instanceof Error ? error.message : String(error),
        cause: error
      })

/** The ledger on a PostgreSQL connection pool of its own. */
export const layer = (options: Options): Layer.Layer<TaskLedger.TaskLedger, TaskError.LedgerError> =>
  layerClient.pipe(
    Layer.provide(PgClient.layer(options)),
    Layer.catchAll((error) => Layer.fail(toLedgerError(error)))
  )

/** The ledger on a PostgreSQL pool configured by `Config` (e.g. `{ url: Config.redacted("DATABASE_URL") }`). */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<TaskLedger.TaskLedger, TaskError.LedgerError | ConfigError.ConfigError> =>
  layerClient.pipe(
    Layer.provide(PgClient.layerConfig(config)),
    Layer.catchAll((error) => Layer.fail(error._tag === "ConfigError" ? error : toLedgerError(error)))
  )
