/**
 * The `TaskLedger` on SQLite: one file, the embedded default. Safe for several fibers and for
 * several processes on the same file (several CLI runs at once): the file is in WAL mode with a
 * busy timeout, and every write is a single conditional statement, fenced on the row's version and
 * lease holder, so no update is ever lost and a process that lost its lease cannot write.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { TaskError, TaskLedger } from "@reelkit/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as SqlLedger from "./internal/sqlLedger.js"

/** Options of the SQLite ledger. */
export interface Options {
  /** The database file; it and its directory are created if missing. */
  readonly filename: string
  /**
   * How long a write waits for another process's write lock before failing, in milliseconds.
   * Default 5000.
   */
  readonly busyTimeoutMillis?: number | undefined
}

/**
 * Builds the ledger on the `SqlClient` in context (a SQLite client), bringing its schema up to date
 * with @effect/sql's Migrator first.
 */
export const make = (
  options: { readonly busyTimeoutMillis?: number | undefined } = {}
): Effect.Effect<TaskLedger.Service, TaskError.LedgerError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // better-sqlite3 waits (synchronously) up to this long for a lock held by another process.
    yield* sql
      .unsafe(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMillis ?? 5000))}`)
      .pipe(
        Effect.mapError(
          (error) => new TaskError.LedgerError({ operation: "open", message: error.message, cause: error })
        )
      )
    yield* SqlLedger.migrate
    return yield* SqlLedger.make("sqlite")
  })

/** The ledger on the SQLite client already in context (e.g. one the application shares). */
export const layerClient = (
  options: { readonly busyTimeoutMillis?: number | undefined } = {}
): Layer.Layer<TaskLedger.TaskLedger, TaskError.LedgerError, SqlClient.SqlClient> =>
  Layer.effect(TaskLedger.TaskLedger, make(options))

// better-sqlite3 creates the file but not its directory.
const ensureDirectory = (filename: string) =>
  Effect.try({
    try: () => {
      if (filename !== ":memory:" && filename !== "")
        Fs.mkdirSync(Path.dirname(Path.resolve(filename)), { recursive: true })
    },
    catch: (cause) =>
      new TaskError.LedgerError({ operation: "open", message: `cannot create the directory of ${filename}`, cause })
  })

/** The ledger in a SQLite file of its own, opened in WAL mode. */
export const layer = (options: Options): Layer.Layer<TaskLedger.TaskLedger, TaskError.LedgerError> =>
  layerClient(options).pipe(
    Layer.provide(
      Layer.unwrapEffect(
        Effect.as(ensureDirectory(options.filename), SqliteClient.layer({ filename: options.filename }))
      )
    ),
    Layer.catchAll((error) =>
      Layer.fail(
        error._tag === "LedgerError"
          ? error
          : new TaskError.LedgerError({ operation: "open", message: String(error), cause: error })
      )
    )
  )

/** The ledger in a SQLite file named by configuration (default key `REELKIT_SQLITE_FILE`). */
export const layerConfig = (
  config: {
    readonly filename?: Config.Config<string> | undefined
    readonly busyTimeoutMillis?: Config.Config<number> | undefined
  } = {}
): Layer.Layer<TaskLedger.TaskLedger, TaskError.LedgerError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(
      Config.all({
        filename: config.filename ?? Config.string("REELKIT_SQLITE_FILE"),
        busyTimeoutMillis: Config.option(config.busyTimeoutMillis ?? Config.integer("REELKIT_SQLITE_BUSY_TIMEOUT"))
      }),
      ({ filename, busyTimeoutMillis }) =>
        layer({ filename, busyTimeoutMillis: busyTimeoutMillis._tag === "Some" ? busyTimeoutMillis.value : undefined })
    )
  )
