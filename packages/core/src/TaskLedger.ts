/**
 * The durable record of every task. A row is written (state `queued`) before the paid POST,
 * carries the remote task id as soon as it is known, and follows the task to a terminal state and
 * its stored artifacts. Every write is fenced: compare-and-set on the row's version and lease
 * holder, so a fiber or process that lost its claim can neither overwrite another's write nor
 * move a row to `sending`. Remote task ids are unique: two rows never share one.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { DuplicateRemoteId, IdempotencyConflict, LedgerError, StaleTransition, UnknownTask } from "./TaskError.js"
import { WireRequest } from "./TaskProvider.js"
import { canTransition, State, unfinishedStates } from "./TaskState.js"

/** Where a task is: see `TaskState` for the states and what they mean. */
export const TaskState = State

/** Where a task is. */
export type TaskState = State

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
  /** The model input in wire form (what idempotency compares). */
  input: Schema.Unknown,
  /** The exact paid request, as the provider's gate returned it (absent on rows made by `resume`). */
  request: Schema.optional(WireRequest),
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
  /** Who holds this task (submitting or tracking it), and until when; writes by anyone else are refused. */
  leaseOwner: Schema.optional(Schema.String),
  leaseExpiresAt: Schema.optional(Schema.Number),
  /** Incremented on every write; writes are compare-and-set on it. */
  version: Schema.Number
}) {}

/** What `create` needs; the ledger fills in the rest. */
export interface NewTask {
  readonly taskKey: string
  readonly providerId: string
  readonly modelId: string
  readonly idempotencyKey?: string | undefined
  readonly input: unknown
  readonly request?: WireRequest | undefined
  readonly callbackUrl?: string | undefined
  readonly billableSeconds?: number | undefined
  /** The first state (default `queued`; `resume` records a task already `submitted`). */
  readonly state?: "queued" | "submitted" | undefined
  readonly remoteTaskId?: string | undefined
  readonly submittedAt?: number | undefined
  /** The creator holds the new row until then. */
  readonly leaseOwner?: string | undefined
  readonly leaseExpiresAt?: number | undefined
}

/**
 * What a fenced write expects: the row as the writer last read (or wrote) it, and who writes. The
 * write is applied only if the row's version is still `version` and no other live holder (an
 * unexpired lease of another owner) holds it; `patch.state` must be allowed from `state`.
 */
export interface Expected {
  readonly taskKey: string
  readonly version: number
  readonly state: TaskState
  /** The writer's owner id (a process or worker). */
  readonly owner: string
}

/** The fence of a write by `owner` to the row as last seen. */
export const fence = (record: TaskRecord, owner: string): Expected => ({
  taskKey: record.taskKey,
  version: record.version,
  state: record.state,
  owner
})

/** Fields a transition may change. Absent fields are left as they are. */
export interface TaskPatch {
  readonly state?: TaskState
  readonly remoteTaskId?: string
  readonly callbackUrl?: string
  readonly submittedAt?: number
  readonly completedAt?: number
  /** `null` clears it (a resubmitted task forgets its old failure). */
  readonly failCode?: string | null
  readonly failMessage?: string | null
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
   * Writes a new row (state `queued` unless told otherwise). With an idempotency key that already
   * has a row, writes nothing and returns that row (or `IdempotencyConflict` when its input
   * differs). A remote id another row has fails with `DuplicateRemoteId`. Atomic.
   */
  readonly create: (task: NewTask) => Effect.Effect<CreateResult, LedgerError | IdempotencyConflict | DuplicateRemoteId>
  /** Finds a task by our key. */
  readonly get: (taskKey: string) => Effect.Effect<Option.Option<TaskRecord>, LedgerError>
  /** Finds a task by the provider's id for it. */
  readonly findByRemoteId: (remoteTaskId: string) => Effect.Effect<Option.Option<TaskRecord>, LedgerError>
  /** Finds a task by the caller's idempotency key. */
  readonly findByIdempotencyKey: (idempotencyKey: string) => Effect.Effect<Option.Option<TaskRecord>, LedgerError>
  /**
   * A fenced write: applies `patch` only if the row is still at `expected.version` and no other
   * live holder holds it (see `Expected`); fails with `StaleTransition` otherwise, and with
   * `LedgerError` when `patch.state` is not allowed from `expected.state` (`TaskState.transitions`).
   * A remote id another row has fails with `DuplicateRemoteId`. Returns the updated row.
   */
  readonly transition: (
    expected: Expected,
    patch: TaskPatch
  ) => Effect.Effect<TaskRecord, LedgerError | StaleTransition | UnknownTask | DuplicateRemoteId>
  /** Lists tasks, newest first. */
  readonly list: (query?: TaskQuery) => Effect.Effect<ReadonlyArray<TaskRecord>, LedgerError>
  /**
   * Claims unfinished tasks (`TaskState.unfinishedStates`) whose lease is free or expired, setting
   * `leaseOwner` and `leaseExpiresAt` (and bumping the version), so two processes never resume the
   * same task at once. Rows another live holder holds, including `options.owner`'s own, are left.
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
  const next: Record<string, unknown> = { ...record, updatedAt: now, version: record.version + 1 }
  for (const [field, value] of Object.entries(patch)) {
    if (value === null) delete next[field]
    else if (value !== undefined) next[field] = value
  }
  // The patch is typed and the row was valid: skip re-validating every field on this hot path.
  return new TaskRecord(next as ConstructorParameters<typeof TaskRecord>[0], true)
}

/**
 * Why a fenced write must be refused, or `undefined` when it may be applied: the shared rule of
 * every ledger (adapters that cannot express it in one statement check it with this).
 */
export const fenceViolation = (current: TaskRecord, expected: Expected, now: number): StaleTransition | undefined => {
  const heldBy =
    current.leaseOwner !== undefined && current.leaseOwner !== expected.owner && (current.leaseExpiresAt ?? 0) > now
      ? current.leaseOwner
      : undefined
  return current.version !== expected.version || heldBy !== undefined
    ? new StaleTransition({
        taskKey: expected.taskKey,
        expectedVersion: expected.version,
        actualVersion: current.version,
        actual: current.state,
        heldBy
      })
    : undefined
}

/** A `LedgerError` when `patch.state` may not follow `expected.state`; `undefined` when it may. */
export const illegalTransition = (expected: Expected, patch: TaskPatch): LedgerError | undefined =>
  patch.state === undefined || canTransition(expected.state, patch.state)
    ? undefined
    : new LedgerError({
        operation: "transition",
        message: `Task ${expected.taskKey} may not move from ${expected.state} to ${patch.state}`
      })

// The in-memory ledger: one Map of rows. Every operation runs in one synchronous step, so
// create-with-idempotency-key and fenced transitions are atomic across fibers.

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
  const remoteIdTaken = (taskKey: string, remoteTaskId: string | undefined): DuplicateRemoteId | undefined => {
    if (remoteTaskId === undefined) return undefined
    const holder = byRemoteId.get(remoteTaskId)
    return holder !== undefined && holder !== taskKey
      ? new DuplicateRemoteId({ remoteTaskId, taskKey, heldBy: holder })
      : undefined
  }

  const create: Service["create"] = (task) =>
    Effect.flatMap(Clock.currentTimeMillis, (now): ReturnType<Service["create"]> => {
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
      const taken = remoteIdTaken(task.taskKey, task.remoteTaskId)
      if (taken !== undefined) return Effect.fail(taken)
      const record = newRecord(task, now)
      store(record)
      return Effect.succeed<CreateResult>({ _tag: "Created", record })
    })

  const transition: Service["transition"] = (expected, patch) =>
    Effect.flatMap(Clock.currentTimeMillis, (now): ReturnType<Service["transition"]> => {
      const illegal = illegalTransition(expected, patch)
      if (illegal !== undefined) return Effect.fail(illegal)
      const current = rows.get(expected.taskKey)
      if (current === undefined) return Effect.fail(new UnknownTask({ reference: expected.taskKey }))
      const violation = fenceViolation(current, expected, now)
      if (violation !== undefined) return Effect.fail(violation)
      const taken = remoteIdTaken(expected.taskKey, patch.remoteTaskId)
      if (taken !== undefined) return Effect.fail(taken)
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
            (record.leaseOwner === undefined || (record.leaseExpiresAt ?? 0) <= now)
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

/** The row `create` writes for a new task; shared by adapters that store rows as documents. */
export const newRecord = (task: NewTask, now: number): TaskRecord =>
  new TaskRecord({
    taskKey: task.taskKey,
    providerId: task.providerId,
    modelId: task.modelId,
    idempotencyKey: task.idempotencyKey,
    state: task.state ?? "queued",
    input: task.input,
    // Callers may pass a plain object where the type says WireRequest (e.g. decoded from JSON).
    request:
      task.request === undefined || task.request instanceof WireRequest ? task.request : new WireRequest(task.request),
    callbackUrl: task.callbackUrl,
    remoteTaskId: task.remoteTaskId,
    billableSeconds: task.billableSeconds,
    createdAt: now,
    updatedAt: now,
    submittedAt: task.submittedAt,
    resultUrls: [],
    artifacts: [],
    leaseOwner: task.leaseOwner,
    leaseExpiresAt: task.leaseExpiresAt,
    version: 1
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
