/**
 * The durable record of every task. A row is written (state `submitting`) before the paid POST,
 * carries the remote task id as soon as it is known, and follows the task to a terminal state and
 * its stored artifacts. Every state change is conditional on the state it expects, so two fibers or
 * processes can never silently overwrite each other.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { IdempotencyConflict, LedgerError, StaleTransition, UnknownTask } from "./TaskError.js"

/**
 * Where a task is.
 * - `submitting`: row written, the paid POST is being sent (or the process died while sending).
 * - `submitted`, `pending`, `processing`: the provider has the task.
 * - `succeeded`: the provider finished it; outputs are being stored.
 * - `completed`: outputs stored (or no store configured). Terminal.
 * - `failed`: the provider reported failure. Terminal.
 * - `rejected`: the submit was refused outright (nothing was created). Terminal.
 * - `ambiguous`: a submit's outcome is unknown; never re-sent automatically. Terminal until resolved.
 */
export const TaskState = Schema.Literal(
  "submitting",
  "submitted",
  "pending",
  "processing",
  "succeeded",
  "completed",
  "failed",
  "rejected",
  "ambiguous"
)

/** Where a task is. */
export type TaskState = typeof TaskState.Type

/** States `reconcile` resumes after a restart. */
export const unfinishedStates: ReadonlyArray<TaskState> = [
  "submitting",
  "submitted",
  "pending",
  "processing",
  "succeeded"
]

/** States in which the provider holds the task and polling applies. */
export const inFlightStates: ReadonlyArray<TaskState> = ["submitted", "pending", "processing"]

/** Whether no automatic step will change this state again. */
export const isTerminalState = (state: TaskState): boolean =>
  state === "completed" || state === "failed" || state === "rejected" || state === "ambiguous"

/** One stored output. */
export class StoredArtifact extends Schema.Class<StoredArtifact>("@reelkit/core/StoredArtifact")({
  key: Schema.String,
  bytes: Schema.Number,
  sha256: Schema.String,
  contentType: Schema.String,
  sourceUrl: Schema.String,
  storedAt: Schema.Number
}) {}

/** A ledger row. Times are epoch milliseconds. */
export class TaskRecord extends Schema.Class<TaskRecord>("@reelkit/core/TaskRecord")({
  taskKey: Schema.String,
  providerId: Schema.String,
  modelId: Schema.String,
  idempotencyKey: Schema.optional(Schema.String),
  state: TaskState,
  /** The prepared wire input, as sent. */
  input: Schema.Unknown,
  callbackUrl: Schema.optional(Schema.String),
  remoteTaskId: Schema.optional(Schema.String),
  billableSeconds: Schema.optional(Schema.Number),
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  submittedAt: Schema.optional(Schema.Number),
  completedAt: Schema.optional(Schema.Number),
  failCode: Schema.optional(Schema.String),
  failMessage: Schema.optional(Schema.String),
  resultUrls: Schema.Array(Schema.String),
  /** When the result URLs stop working. */
  resultExpiresAt: Schema.optional(Schema.Number),
  artifacts: Schema.Array(StoredArtifact),
  /** Who is resuming this task, and until when (see `claimUnfinished`). */
  leaseOwner: Schema.optional(Schema.String),
  leaseExpiresAt: Schema.optional(Schema.Number),
  /** Incremented on every change. */
  version: Schema.Number
}) {}

/** What `create` needs; the ledger fills in the rest. */
export interface NewTask {
  readonly taskKey: string
  readonly providerId: string
  readonly modelId: string
  readonly idempotencyKey?: string | undefined
  readonly input: unknown
  readonly callbackUrl?: string | undefined
  readonly billableSeconds?: number | undefined
}

/** Fields a transition may change. Absent fields are left as they are. */
export interface TaskPatch {
  readonly state?: TaskState
  readonly remoteTaskId?: string
  readonly callbackUrl?: string
  readonly submittedAt?: number
  readonly completedAt?: number
  readonly failCode?: string
  readonly failMessage?: string
  readonly resultUrls?: ReadonlyArray<string>
  readonly resultExpiresAt?: number
  readonly artifacts?: ReadonlyArray<StoredArtifact>
  /** `null` clears the lease. */
  readonly leaseOwner?: string | null
  readonly leaseExpiresAt?: number | null
}

/** Filters for `list`. All given filters must match. Newest first. */
export interface TaskQuery {
  readonly states?: ReadonlyArray<TaskState> | undefined
  readonly providerId?: string | undefined
  readonly modelId?: string | undefined
  /** createdAt >= since */
  readonly since?: number | undefined
  /** createdAt < until */
  readonly until?: number | undefined
  readonly limit?: number | undefined
}

/** Options for `claimUnfinished`. */
export interface ClaimOptions {
  /** Who claims: a process or worker id. */
  readonly owner: string
  /** How long the claim holds before another owner may take the task. */
  readonly leaseMillis: number
  readonly providerId?: string | undefined
  readonly modelId?: string | undefined
  readonly limit?: number | undefined
}

/** The outcome of `create`. */
export type CreateResult =
  | { readonly _tag: "Created"; readonly record: TaskRecord }
  /** The idempotency key already had a task with the same input: that task is returned. */
  | { readonly _tag: "Existing"; readonly record: TaskRecord }

/** The ledger service. */
export interface Service {
  /**
   * Writes a new row in state `submitting`. With an idempotency key that already has a row, writes
   * nothing and returns that row (or `IdempotencyConflict` when its input differs). Atomic.
   */
  readonly create: (task: NewTask) => Effect.Effect<CreateResult, LedgerError | IdempotencyConflict>
  /** Finds a task by our key. */
  readonly get: (taskKey: string) => Effect.Effect<Option.Option<TaskRecord>, LedgerError>
  /** Finds a task by the provider's id for it. */
  readonly findByRemoteId: (remoteTaskId: string) => Effect.Effect<Option.Option<TaskRecord>, LedgerError>
  /** Finds a task by the caller's idempotency key. */
  readonly findByIdempotencyKey: (idempotencyKey: string) => Effect.Effect<Option.Option<TaskRecord>, LedgerError>
  /**
   * Applies `patch` only if the task is in one of the `from` states (an empty `from` accepts any);
   * fails with `StaleTransition` otherwise. Returns the updated row.
   */
  readonly transition: (
    taskKey: string,
    from: ReadonlyArray<TaskState>,
    patch: TaskPatch
  ) => Effect.Effect<TaskRecord, LedgerError | StaleTransition | UnknownTask>
  /** Lists tasks, newest first. */
  readonly list: (query?: TaskQuery) => Effect.Effect<ReadonlyArray<TaskRecord>, LedgerError>
  /**
   * Claims unfinished tasks (see `unfinishedStates`) whose lease is free or expired, setting
   * `leaseOwner` and `leaseExpiresAt`, so two processes never resume the same task at once.
   */
  readonly claimUnfinished: (options: ClaimOptions) => Effect.Effect<ReadonlyArray<TaskRecord>, LedgerError>
}

/** The ledger service tag. */
export class TaskLedger extends Context.Tag("@reelkit/core/TaskLedger")<TaskLedger, Service>() {}

/** Whether two prepared inputs are the same (compared as canonical JSON). */
export const sameInput = (left: unknown, right: unknown): boolean => canonicalJson(left) === canonicalJson(right)

/** JSON with object keys sorted, so equal values give equal text. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, inner) =>
    inner !== null && typeof inner === "object" && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)))
      : inner
  )

/** Applies a patch to a row in memory; shared by adapters that store rows as documents. */
export const applyPatch = (record: TaskRecord, patch: TaskPatch, now: number): TaskRecord => {
  const { leaseOwner, leaseExpiresAt, ...rest } = patch
  const next: Record<string, unknown> = { ...record, ...rest, updatedAt: now, version: record.version + 1 }
  if (leaseOwner === null) delete next.leaseOwner
  else if (leaseOwner !== undefined) next.leaseOwner = leaseOwner
  if (leaseExpiresAt === null) delete next.leaseExpiresAt
  else if (leaseExpiresAt !== undefined) next.leaseExpiresAt = leaseExpiresAt
  // The patch is typed and the row was valid: skip re-validating every field on this hot path.
  return new TaskRecord(next as ConstructorParameters<typeof TaskRecord>[0], true)
}

// The in-memory ledger: one Map of rows. Every operation runs in one synchronous step, so
// create-with-idempotency-key and conditional transitions are atomic across fibers.

/** Builds an in-memory ledger. */
export const makeMemory: Effect.Effect<Service> = Effect.sync(() => {
  const rows = new Map<string, TaskRecord>()
  const byRemoteId = new Map<string, string>()
  const byIdempotencyKey = new Map<string, string>()

  const store = (record: TaskRecord) => {
    rows.set(record.taskKey, record)
    if (record.remoteTaskId !== undefined) byRemoteId.set(record.remoteTaskId, record.taskKey)
    if (record.idempotencyKey !== undefined) byIdempotencyKey.set(record.idempotencyKey, record.taskKey)
  }
  const rowOf = (taskKey: string | undefined) =>
    Option.fromNullable(taskKey === undefined ? undefined : rows.get(taskKey))

  const create: Service["create"] = (task) =>
    Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<CreateResult, IdempotencyConflict | LedgerError> => {
      if (task.idempotencyKey !== undefined) {
        const existing = rowOf(byIdempotencyKey.get(task.idempotencyKey))
        if (Option.isSome(existing)) {
          return sameInput(existing.value.input, task.input)
            ? Effect.succeed<CreateResult>({ _tag: "Existing", record: existing.value })
            : Effect.fail(
                new IdempotencyConflict({ idempotencyKey: task.idempotencyKey, taskKey: existing.value.taskKey })
              )
        }
      }
      if (rows.has(task.taskKey)) {
        // Task keys are unique; a second row under one key would hide the first task.
        return Effect.fail(
          new LedgerError({ operation: "create", message: `A task with key ${task.taskKey} already exists` })
        )
      }
      const record = new TaskRecord({
        taskKey: task.taskKey,
        providerId: task.providerId,
        modelId: task.modelId,
        idempotencyKey: task.idempotencyKey,
        state: "submitting",
        input: task.input,
        callbackUrl: task.callbackUrl,
        billableSeconds: task.billableSeconds,
        createdAt: now,
        updatedAt: now,
        resultUrls: [],
        artifacts: [],
        version: 1
      })
      store(record)
      return Effect.succeed<CreateResult>({ _tag: "Created", record })
    })

  const transition: Service["transition"] = (taskKey, from, patch) =>
    Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<TaskRecord, StaleTransition | UnknownTask> => {
      const current = rows.get(taskKey)
      if (current === undefined) return Effect.fail(new UnknownTask({ reference: taskKey }))
      if (from.length > 0 && !from.includes(current.state)) {
        return Effect.fail(new StaleTransition({ taskKey, expected: [...from], actual: current.state }))
      }
      const next = applyPatch(current, patch, now)
      store(next)
      return Effect.succeed(next)
    })

  const list: Service["list"] = (query = {}) =>
    Effect.sync(() => {
      const matching = [...rows.values()]
        .filter((record) => matchesQuery(record, query))
        .sort((left, right) => right.createdAt - left.createdAt || (left.taskKey < right.taskKey ? 1 : -1))
      return query.limit === undefined ? matching : matching.slice(0, query.limit)
    })

  const claimUnfinished: Service["claimUnfinished"] = (options) =>
    Effect.map(Clock.currentTimeMillis, (now) =>
      [...rows.values()]
        .filter(
          (record) =>
            unfinishedStates.includes(record.state) &&
            (options.providerId === undefined || record.providerId === options.providerId) &&
            (options.modelId === undefined || record.modelId === options.modelId) &&
            (record.leaseOwner === undefined ||
              record.leaseOwner === options.owner ||
              (record.leaseExpiresAt ?? 0) <= now)
        )
        .sort((left, right) => left.createdAt - right.createdAt)
        .slice(0, options.limit ?? Number.MAX_SAFE_INTEGER)
        .map((record) => {
          const claimed = applyPatch(
            record,
            { leaseOwner: options.owner, leaseExpiresAt: now + options.leaseMillis },
            now
          )
          store(claimed)
          return claimed
        })
    )

  return TaskLedger.of({
    create,
    get: (taskKey) => Effect.sync(() => rowOf(taskKey)),
    findByRemoteId: (remoteTaskId) => Effect.sync(() => rowOf(byRemoteId.get(remoteTaskId))),
    findByIdempotencyKey: (idempotencyKey) => Effect.sync(() => rowOf(byIdempotencyKey.get(idempotencyKey))),
    transition,
    list,
    claimUnfinished
  })
})

/** Whether a row matches every filter of a query. Shared by adapters that filter in memory. */
export const matchesQuery = (record: TaskRecord, query: TaskQuery): boolean =>
  (query.states === undefined || query.states.includes(record.state)) &&
  (query.providerId === undefined || record.providerId === query.providerId) &&
  (query.modelId === undefined || record.modelId === query.modelId) &&
  (query.since === undefined || record.createdAt >= query.since) &&
  (query.until === undefined || record.createdAt < query.until)

/** A ledger held in memory: for tests and single-process tools that need no durability. */
export const layerMemory: Layer.Layer<TaskLedger> = Layer.effect(TaskLedger, makeMemory)
