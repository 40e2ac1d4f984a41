/**
 * The contract every `TaskLedger` adapter must pass: idempotent creates, fenced writes (compare-and-set
 * on the row's version and lease holder), the allowed transitions, unique remote ids, lookups, list
 * filters and ordering, and lease claims. Register it in a vitest file with
 * `TaskLedgerContract.suite("MyLedger", myLayer, EffectVitest, { other })`, where `other` opens a
 * second handle on the same storage (as another process would), or run `cases` with any runner.
 * Assertions use `node:assert`, so only the registration needs `@effect/vitest`.
 *
 * @since 0.1.0
 */
import { TaskError, TaskLedger, TaskProvider, TaskState } from "@reelkit/core"
import type * as EffectVitest from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { strict as assert } from "node:assert"
import { randomBytes } from "node:crypto"

/**
 * A second handle on the ledger under test, as another process opens it (its own connection to
 * the same file or database). Cases use it for the writer that races, or takes over from, the first.
 */
export class OtherLedger extends Context.Tag("@reelkit/testing/TaskLedgerContract/OtherLedger")<
  OtherLedger,
  TaskLedger.Service
>() {}

/**
 * One contract case. `scope` is unique per case and run: cases use it as the provider id and as a
 * prefix of their task keys (and remote ids), so they can share one ledger (and one database)
 * without seeing each other's rows. Cases move the `TestClock` forward, never back.
 */
export interface Case {
  readonly name: string
  readonly run: (scope: string) => Effect.Effect<void, unknown, TaskLedger.TaskLedger | OtherLedger>
}

/** The part of `@effect/vitest` the suite registers tests with. */
export interface Vitest {
  readonly layer: typeof EffectVitest.layer
}

const newTask = (
  scope: string,
  name: string,
  options: Partial<Omit<TaskLedger.NewTask, "taskKey" | "providerId">> = {}
): TaskLedger.NewTask => ({
  input: { mode: "text-to-video", prompt: "a city at dawn", duration: 5 },
  modelId: "model-a",
  ...options,
  taskKey: `${scope}-${name}`,
  providerId: scope
})

const failureTag = <A, E>(either: Either.Either<A, E>): string | undefined =>
  Either.isLeft(either) ? (either.left as { readonly _tag?: string })._tag : undefined

const keys = (records: ReadonlyArray<TaskLedger.TaskRecord>): Array<string> => records.map((record) => record.taskKey)

const ledger = TaskLedger.TaskLedger

/** The ledger under test and the other process's handle on it. */
const bothHandles = Effect.all([ledger, OtherLedger])

/** The shortest chain of allowed transitions from `from` to `to` (empty when they are equal). */
const pathTo = (from: TaskState.State, to: TaskState.State): ReadonlyArray<TaskState.State> => {
  const previous = new Map<TaskState.State, TaskState.State>()
  const queue: Array<TaskState.State> = [from]
  while (queue.length > 0 && !previous.has(to) && to !== from) {
    const state = queue.shift()!
    for (const next of TaskState.transitions[state]) {
      if (next !== from && !previous.has(next)) {
        previous.set(next, state)
        queue.push(next)
      }
    }
  }
  const path: Array<TaskState.State> = []
  for (let state = to; state !== from; state = previous.get(state)!) path.unshift(state)
  return path
}

/** Moves a row to `to` through allowed transitions, each a fenced write by `owner`. */
const moveTo = (
  service: TaskLedger.Service,
  record: TaskLedger.TaskRecord,
  to: TaskState.State,
  owner = "setup"
): Effect.Effect<TaskLedger.TaskRecord, unknown> =>
  Effect.reduce(pathTo(record.state, to), record, (current, state) =>
    service.transition(TaskLedger.fence(current, owner), { state })
  )

/** A row created and moved to `to`. */
const rowIn = (service: TaskLedger.Service, task: TaskLedger.NewTask, to: TaskState.State) =>
  Effect.flatMap(service.create(task), ({ record }) => moveTo(service, record, to))

/**
 * A fenced read-modify-write by `owner`: reads the row, writes `patch(row)` at its version, and
 * starts again whenever another writer moved the row on first (`StaleTransition`).
 */
export const readModifyWrite = (
  service: TaskLedger.Service,
  taskKey: string,
  owner: string,
  patch: (record: TaskLedger.TaskRecord) => TaskLedger.TaskPatch
) =>
  Effect.flatMap(service.get(taskKey), (found) =>
    Option.match(found, {
      onNone: () => Effect.fail(new TaskError.UnknownTask({ reference: taskKey })),
      onSome: (record) => service.transition(TaskLedger.fence(record, owner), patch(record))
    })
  ).pipe(Effect.retry({ while: (error) => error._tag === "StaleTransition" }))

const wire = (prompt: string) =>
  new TaskProvider.WireRequest({
    method: "POST",
    path: "/api/v1/generateTask/model-a",
    body: { prompt, duration: 5, nested: { quote: "it's", unicode: "ünï", list: [1, 2.5, null, true] } }
  })

/** Every case of the contract. */
export const cases: ReadonlyArray<Case> = [
  {
    name: "create writes a queued row at version 1 with the Clock's time, the exact request and the creator's lease",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        yield* TestClock.adjust("1 second")
        const now = yield* Clock.currentTimeMillis
        const input = { mode: "reference-to-video", prompt: "two cats", images: ["https://x/1.png"], options: { a: 1 } }
        const request = wire("two cats")
        const created = yield* service.create(
          newTask(scope, "one", {
            idempotencyKey: `${scope}-idem`,
            input,
            request,
            callbackUrl: "https://cb.example/t/secret",
            billableSeconds: 8,
            leaseOwner: `${scope}-creator`,
            leaseExpiresAt: now + 30_000
          })
        )
        assert.equal(created._tag, "Created")
        const read = Option.getOrThrow(yield* service.get(`${scope}-one`))
        for (const record of [created.record, read]) {
          assert.equal(record.taskKey, `${scope}-one`)
          assert.equal(record.providerId, scope)
          assert.equal(record.modelId, "model-a")
          assert.equal(record.idempotencyKey, `${scope}-idem`)
          assert.equal(record.state, "queued")
          assert.deepEqual(record.input, input)
          assert.ok(record.request instanceof TaskProvider.WireRequest)
          assert.deepEqual({ ...record.request }, { ...request })
          assert.equal(record.callbackUrl, "https://cb.example/t/secret")
          assert.equal(record.billableSeconds, 8)
          assert.equal(record.createdAt, now)
          assert.equal(record.updatedAt, now)
          assert.equal(record.version, 1)
          assert.deepEqual(record.resultUrls, [])
          assert.deepEqual(record.artifacts, [])
          assert.equal(record.remoteTaskId, undefined)
          assert.equal(record.submittedAt, undefined)
          assert.equal(record.leaseOwner, `${scope}-creator`)
          assert.equal(record.leaseExpiresAt, now + 30_000)
        }
        // Without a request or a lease, both stay absent.
        const bare = yield* service.create(newTask(scope, "bare"))
        assert.equal(bare.record.request, undefined)
        assert.equal(bare.record.leaseOwner, undefined)
        assert.equal(Option.getOrThrow(yield* service.get(`${scope}-bare`)).request, undefined)
        assert.ok(Option.isNone(yield* service.get(`${scope}-missing`)))
      })
  },
  {
    name: "create records a resumed task as submitted, with its remote id and submit time",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const created = yield* service.create(
          newTask(scope, "resumed", {
            state: "submitted",
            remoteTaskId: `${scope}-remote`,
            submittedAt: 1_700_000_000_000
          })
        )
        const read = Option.getOrThrow(yield* service.findByRemoteId(`${scope}-remote`))
        for (const record of [created.record, read]) {
          assert.equal(record.taskKey, `${scope}-resumed`)
          assert.equal(record.state, "submitted")
          assert.equal(record.remoteTaskId, `${scope}-remote`)
          assert.equal(record.submittedAt, 1_700_000_000_000)
          assert.equal(record.version, 1)
        }
      })
  },
  {
    name: "a reused idempotency key with the same input returns the first task and writes nothing",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const idempotencyKey = `${scope}-order-42`
        const first = yield* service.create(
          newTask(scope, "first", { idempotencyKey, input: { prompt: "x", duration: 5, options: { b: 2, a: 1 } } })
        )
        // Same input with keys in another order: equal as canonical JSON.
        const second = yield* service.create(
          newTask(scope, "second", { idempotencyKey, input: { options: { a: 1, b: 2 }, duration: 5, prompt: "x" } })
        )
        assert.equal(first._tag, "Created")
        assert.equal(second._tag, "Existing")
        assert.equal(second.record.taskKey, `${scope}-first`)
        assert.ok(Option.isNone(yield* service.get(`${scope}-second`)))
        assert.equal(Option.getOrThrow(yield* service.findByIdempotencyKey(idempotencyKey)).taskKey, `${scope}-first`)
        assert.ok(Option.isNone(yield* service.findByIdempotencyKey(`${scope}-unknown`)))
        assert.deepEqual(keys(yield* service.list({ providerId: scope })), [`${scope}-first`])
      })
  },
  {
    name: "a reused idempotency key with a different input fails with IdempotencyConflict",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const idempotencyKey = `${scope}-order-43`
        yield* service.create(newTask(scope, "first", { idempotencyKey, input: { prompt: "a" } }))
        const conflict = yield* Effect.either(
          service.create(newTask(scope, "second", { idempotencyKey, input: { prompt: "b" } }))
        )
        assert.equal(failureTag(conflict), "IdempotencyConflict")
        const error = (conflict as Either.Left<TaskError.IdempotencyConflict, unknown>).left
        assert.ok(error instanceof TaskError.IdempotencyConflict)
        assert.equal(error.taskKey, `${scope}-first`)
        assert.equal(error.idempotencyKey, idempotencyKey)
        assert.ok(Option.isNone(yield* service.get(`${scope}-second`)))
      })
  },
  {
    name: "concurrent creates with one idempotency key create exactly one task",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const idempotencyKey = `${scope}-race`
        const results = yield* Effect.all(
          Array.from({ length: 8 }, (_, index) => service.create(newTask(scope, `racer-${index}`, { idempotencyKey }))),
          { concurrency: "unbounded" }
        )
        const created = results.filter((result) => result._tag === "Created")
        assert.equal(created.length, 1)
        const winner = created[0]!.record.taskKey
        for (const result of results) assert.equal(result.record.taskKey, winner)
        assert.deepEqual(keys(yield* service.list({ providerId: scope })), [winner])
      })
  },
  {
    name: "tasks without an idempotency key are independent",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const first = yield* service.create(newTask(scope, "a"))
        const second = yield* service.create(newTask(scope, "b"))
        assert.equal(first._tag, "Created")
        assert.equal(second._tag, "Created")
        assert.equal(first.record.idempotencyKey, undefined)
        assert.equal((yield* service.list({ providerId: scope })).length, 2)
      })
  },
  {
    name: "creating a task key that already exists fails with LedgerError and keeps the first row",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        yield* service.create(newTask(scope, "taken", { input: { prompt: "first" } }))
        const second = yield* Effect.either(service.create(newTask(scope, "taken", { input: { prompt: "second" } })))
        assert.equal(failureTag(second), "LedgerError")
        const row = Option.getOrThrow(yield* service.get(`${scope}-taken`))
        assert.deepEqual(row.input, { prompt: "first" })
        assert.equal(row.version, 1)
      })
  },
  {
    name: "a fenced write applies its patch at the expected version, bumps version and updatedAt, keeps absent fields",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const owner = `${scope}-owner`
        const { record } = yield* service.create(
          newTask(scope, "t", { callbackUrl: "https://cb/1", billableSeconds: 4, request: wire("t") })
        )
        yield* TestClock.adjust("5 seconds")
        const now = yield* Clock.currentTimeMillis
        const sending = yield* service.transition(TaskLedger.fence(record, owner), {
          state: "sending",
          leaseOwner: owner,
          leaseExpiresAt: now + 30_000
        })
        assert.equal(sending.state, "sending")
        assert.equal(sending.version, 2)
        assert.equal(sending.updatedAt, now)
        assert.equal(sending.leaseOwner, owner)
        // The row a write returns is the fence of the next write.
        const submitted = yield* service.transition(TaskLedger.fence(sending, owner), {
          state: "submitted",
          remoteTaskId: `${scope}-remote`,
          submittedAt: now
        })
        assert.equal(submitted.state, "submitted")
        assert.equal(submitted.remoteTaskId, `${scope}-remote`)
        assert.equal(submitted.submittedAt, now)
        assert.equal(submitted.version, 3)
        assert.equal(submitted.createdAt, record.createdAt)
        assert.equal(submitted.callbackUrl, "https://cb/1")
        assert.equal(submitted.billableSeconds, 4)
        assert.deepEqual({ ...submitted.request }, { ...wire("t") })
        assert.equal(submitted.leaseOwner, owner)
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(read.state, "submitted")
        assert.equal(read.version, 3)
        assert.equal(read.remoteTaskId, `${scope}-remote`)
        // A patch without a state keeps the state.
        const noted = yield* service.transition(TaskLedger.fence(read, owner), { failMessage: "note" })
        assert.equal(noted.state, "submitted")
        assert.equal(noted.failMessage, "note")
        assert.equal(noted.version, 4)
      })
  },
  {
    name: "a writer with an old version is refused with StaleTransition and changes nothing",
    run: (scope) =>
      Effect.gen(function* () {
        const [service, other] = yield* bothHandles
        const { record } = yield* service.create(newTask(scope, "t"))
        // Another process moves the row on first.
        const theirs = yield* other.transition(TaskLedger.fence(record, "process-b"), { state: "sending" })
        const stale = yield* Effect.flip(
          service.transition(TaskLedger.fence(record, "process-a"), { state: "sending", failCode: "mine" })
        )
        assert.ok(stale instanceof TaskError.StaleTransition)
        assert.equal(stale.taskKey, record.taskKey)
        assert.equal(stale.expectedVersion, 1)
        assert.equal(stale.actualVersion, 2)
        assert.equal(stale.actual, "sending")
        assert.equal(stale.heldBy, undefined)
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(read.failCode, undefined)
        assert.equal(read.version, 2)
        assert.equal(read.updatedAt, theirs.updatedAt)
      })
  },
  {
    name: "a transition the lifecycle does not allow is refused with LedgerError and changes nothing",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const { record } = yield* service.create(newTask(scope, "t"))
        const refusals: ReadonlyArray<TaskState.State> = ["submitted", "completed", "failed", "ambiguous", "succeeded"]
        for (const state of refusals) {
          const error = yield* Effect.flip(service.transition(TaskLedger.fence(record, "w"), { state }))
          assert.ok(error instanceof TaskError.LedgerError, `queued -> ${state} must be refused`)
          assert.equal(error.operation, "transition")
          assert.ok(error.message.includes(state))
        }
        const completed = yield* moveTo(service, record, "completed")
        for (const state of ["queued", "sending", "failed"] as const) {
          const error = yield* Effect.flip(service.transition(TaskLedger.fence(completed, "w"), { state }))
          assert.ok(error instanceof TaskError.LedgerError, `completed -> ${state} must be refused`)
        }
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(read.state, "completed")
        assert.equal(read.version, completed.version)
        // Staying in a state is allowed (a renewal, a note).
        const same = yield* service.transition(TaskLedger.fence(read, "w"), { state: "completed" })
        assert.equal(same.version, completed.version + 1)
      })
  },
  {
    name: "a fenced write to an unknown task fails with UnknownTask",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const unknown = yield* Effect.flip(
          service.transition(
            { taskKey: `${scope}-nope`, version: 1, state: "queued", owner: "w" },
            { state: "sending" }
          )
        )
        assert.ok(unknown instanceof TaskError.UnknownTask)
        assert.equal(unknown.reference, `${scope}-nope`)
      })
  },
  {
    name: "a process that lost its lease can neither write nor send; the new holder can",
    run: (scope) =>
      Effect.gen(function* () {
        const processA = yield* ledger
        const processB = yield* OtherLedger
        const now = yield* Clock.currentTimeMillis
        // A writes the row, holding it for 10 s, then stalls past its lease.
        const { record: seenByA } = yield* processA.create(
          newTask(scope, "t", { leaseOwner: "process-a", leaseExpiresAt: now + 10_000 })
        )
        yield* TestClock.adjust("10 seconds")
        const claimed = yield* processB.claimUnfinished({ owner: "process-b", leaseMillis: 60_000, providerId: scope })
        assert.deepEqual(keys(claimed), [seenByA.taskKey])
        // A wakes up and tries to send: refused.
        const refused = yield* Effect.flip(
          processA.transition(TaskLedger.fence(seenByA, "process-a"), { state: "sending" })
        )
        assert.ok(refused instanceof TaskError.StaleTransition)
        assert.equal(refused.heldBy, "process-b")
        assert.equal(refused.expectedVersion, 1)
        assert.equal(refused.actualVersion, 2)
        assert.equal(refused.actual, "queued")
        // Even with a fresh read, A may not write while B's lease is live.
        const reread = Option.getOrThrow(yield* processA.get(seenByA.taskKey))
        const stillRefused = yield* Effect.flip(
          processA.transition(TaskLedger.fence(reread, "process-a"), { state: "sending", leaseOwner: "process-a" })
        )
        assert.ok(stillRefused instanceof TaskError.StaleTransition)
        assert.equal(stillRefused.heldBy, "process-b")
        assert.equal(stillRefused.expectedVersion, stillRefused.actualVersion)
        // B, the live holder, sends.
        const sending = yield* processB.transition(TaskLedger.fence(claimed[0]!, "process-b"), { state: "sending" })
        assert.equal(sending.state, "sending")
        assert.equal(sending.leaseOwner, "process-b")
        const read = Option.getOrThrow(yield* processA.get(seenByA.taskKey))
        assert.equal(read.state, "sending")
        assert.equal(read.version, 3)
      })
  },
  {
    name: "a live lease refuses other owners even at the current version; its expiry lets another owner write",
    run: (scope) =>
      Effect.gen(function* () {
        const [service, other] = yield* bothHandles
        const now = yield* Clock.currentTimeMillis
        const { record } = yield* service.create(
          newTask(scope, "t", { leaseOwner: "holder", leaseExpiresAt: now + 5_000 })
        )
        const current = Option.getOrThrow(yield* other.get(record.taskKey))
        const held = yield* Effect.flip(other.transition(TaskLedger.fence(current, "intruder"), { failMessage: "x" }))
        assert.ok(held instanceof TaskError.StaleTransition)
        assert.equal(held.heldBy, "holder")
        assert.equal(held.expectedVersion, 1)
        assert.equal(held.actualVersion, 1)
        assert.equal(Option.getOrThrow(yield* service.get(record.taskKey)).failMessage, undefined)
        // One millisecond before expiry the lease still holds.
        yield* TestClock.adjust("4999 millis")
        const almost = yield* Effect.either(
          other.transition(TaskLedger.fence(current, "intruder"), { failMessage: "x" })
        )
        assert.equal(failureTag(almost), "StaleTransition")
        // A lease ends at its expiry time: the other owner writes, and may take the lease over.
        yield* TestClock.adjust("1 millis")
        const taken = yield* other.transition(TaskLedger.fence(current, "successor"), {
          failMessage: "taken over",
          leaseOwner: "successor",
          leaseExpiresAt: now + 60_000
        })
        assert.equal(taken.version, 2)
        assert.equal(taken.leaseOwner, "successor")
        // Now the first holder is the one refused.
        const refused = yield* Effect.flip(service.transition(TaskLedger.fence(taken, "holder"), { state: "sending" }))
        assert.ok(refused instanceof TaskError.StaleTransition)
        assert.equal(refused.heldBy, "successor")
        // A released lease (null) lets anyone with the current version write.
        const released = yield* other.transition(TaskLedger.fence(taken, "successor"), {
          leaseOwner: null,
          leaseExpiresAt: null
        })
        const written = yield* service.transition(TaskLedger.fence(released, "holder"), { state: "sending" })
        assert.equal(written.state, "sending")
        assert.equal(written.version, 4)
      })
  },
  {
    name: "concurrent fenced writes from one version, from two processes: exactly one wins, the others are stale",
    run: (scope) =>
      Effect.gen(function* () {
        const [service, other] = yield* bothHandles
        const { record } = yield* service.create(newTask(scope, "t"))
        const results = yield* Effect.all(
          Array.from({ length: 8 }, (_, index) =>
            Effect.either(
              (index % 2 === 0 ? service : other).transition(TaskLedger.fence(record, `w-${index}`), {
                state: "sending",
                failMessage: `w-${index}`
              })
            )
          ),
          { concurrency: "unbounded" }
        )
        const winners = results.filter(Either.isRight)
        assert.equal(winners.length, 1)
        assert.equal(results.filter((result) => failureTag(result) === "StaleTransition").length, 7)
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(read.failMessage, winners[0]!.right.failMessage)
        assert.equal(read.version, 2)
      })
  },
  {
    name: "concurrent read-modify-write loops from two processes lose no update",
    run: (scope) =>
      Effect.gen(function* () {
        const [service, other] = yield* bothHandles
        const { record } = yield* service.create(newTask(scope, "t"))
        // Each writer appends its mark, re-reading and retrying whenever its version was stale.
        const append = (handle: TaskLedger.Service, mark: string) =>
          readModifyWrite(handle, record.taskKey, mark, (current) => ({ resultUrls: [...current.resultUrls, mark] }))
        const marks = Array.from({ length: 12 }, (_, index) => `https://mark/${index}`)
        yield* Effect.all(
          marks.map((mark, index) => append(index % 2 === 0 ? service : other, mark)),
          { concurrency: "unbounded", discard: true }
        )
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(read.version, 1 + marks.length)
        assert.deepEqual([...read.resultUrls].sort(), [...marks].sort())
      })
  },
  {
    name: "a remote id another row holds is refused on create with DuplicateRemoteId, naming the holder",
    run: (scope) =>
      Effect.gen(function* () {
        const [service, other] = yield* bothHandles
        const remoteTaskId = `${scope}-remote`
        yield* service.create(newTask(scope, "holder", { state: "submitted", remoteTaskId }))
        const duplicate = yield* Effect.flip(
          other.create(newTask(scope, "second", { state: "submitted", remoteTaskId, idempotencyKey: `${scope}-k` }))
        )
        assert.ok(duplicate instanceof TaskError.DuplicateRemoteId)
        assert.equal(duplicate.remoteTaskId, remoteTaskId)
        assert.equal(duplicate.taskKey, `${scope}-second`)
        assert.equal(duplicate.heldBy, `${scope}-holder`)
        assert.ok(Option.isNone(yield* service.get(`${scope}-second`)))
        assert.ok(Option.isNone(yield* service.findByIdempotencyKey(`${scope}-k`)))
        assert.equal(Option.getOrThrow(yield* service.findByRemoteId(remoteTaskId)).taskKey, `${scope}-holder`)
        // Creates racing for one new id, from two processes: one row gets it, the others are refused.
        const results = yield* Effect.all(
          [0, 1, 2, 3].map((index) =>
            Effect.either(
              (index % 2 === 0 ? service : other).create(
                newTask(scope, `racer-${index}`, { state: "submitted", remoteTaskId: `${scope}-contested` })
              )
            )
          ),
          { concurrency: "unbounded" }
        )
        const created = results.filter(Either.isRight)
        assert.equal(created.length, 1)
        assert.equal(results.filter((result) => failureTag(result) === "DuplicateRemoteId").length, 3)
        const racers = yield* service.list({ providerId: scope })
        assert.deepEqual(
          keys(racers).filter((key) => key.includes("racer")),
          [created[0]!.right.record.taskKey]
        )
      })
  },
  {
    name: "a remote id another row holds is refused on transition with DuplicateRemoteId; one id, one winner",
    run: (scope) =>
      Effect.gen(function* () {
        const [service, other] = yield* bothHandles
        const remoteTaskId = `${scope}-remote`
        yield* service.create(newTask(scope, "holder", { state: "submitted", remoteTaskId }))
        const sending = yield* rowIn(service, newTask(scope, "second"), "sending")
        const duplicate = yield* Effect.flip(
          other.transition(TaskLedger.fence(sending, "w"), { state: "submitted", remoteTaskId })
        )
        assert.ok(duplicate instanceof TaskError.DuplicateRemoteId)
        assert.equal(duplicate.remoteTaskId, remoteTaskId)
        assert.equal(duplicate.taskKey, `${scope}-second`)
        assert.equal(duplicate.heldBy, `${scope}-holder`)
        const read = Option.getOrThrow(yield* service.get(`${scope}-second`))
        assert.equal(read.state, "sending")
        assert.equal(read.remoteTaskId, undefined)
        assert.equal(read.version, sending.version)
        // A row may write its own id again.
        const holder = Option.getOrThrow(yield* service.get(`${scope}-holder`))
        const again = yield* service.transition(TaskLedger.fence(holder, "w"), { state: "pending", remoteTaskId })
        assert.equal(again.remoteTaskId, remoteTaskId)
        // Two rows racing for one new id, from two processes: one gets it, the other is refused.
        const racers = yield* Effect.all(
          [0, 1, 2, 3].map((index) => rowIn(service, newTask(scope, `racer-${index}`), "sending")),
          { concurrency: 1 }
        )
        const results = yield* Effect.all(
          racers.map((racer, index) =>
            Effect.either(
              (index % 2 === 0 ? service : other).transition(TaskLedger.fence(racer, "w"), {
                state: "submitted",
                remoteTaskId: `${scope}-contested`
              })
            )
          ),
          { concurrency: "unbounded" }
        )
        assert.equal(results.filter(Either.isRight).length, 1)
        assert.equal(results.filter((result) => failureTag(result) === "DuplicateRemoteId").length, 3)
        const winner = results.find(Either.isRight)!.right
        assert.equal(Option.getOrThrow(yield* other.findByRemoteId(`${scope}-contested`)).taskKey, winner.taskKey)
      })
  },
  {
    name: "findByRemoteId finds a task by the provider's id",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        yield* service.create(newTask(scope, "a"))
        const sending = yield* rowIn(service, newTask(scope, "b"), "sending")
        yield* service.transition(TaskLedger.fence(sending, "w"), { state: "submitted", remoteTaskId: `${scope}-rb` })
        assert.equal(Option.getOrThrow(yield* service.findByRemoteId(`${scope}-rb`)).taskKey, `${scope}-b`)
        assert.ok(Option.isNone(yield* service.findByRemoteId(`${scope}-ra`)))
      })
  },
  {
    name: "every patch field round-trips, and a null lease clears it",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const processing = yield* rowIn(service, newTask(scope, "t"), "processing")
        const artifact = new TaskLedger.StoredArtifact({
          key: `${scope}/video.mp4`,
          bytes: 1234,
          sha256: "ab".repeat(32),
          contentType: "video/mp4",
          sourceUrl: "https://cdn.example/v.mp4?sig=1",
          storedAt: 1_700_000_000_123
        })
        const patched = yield* service.transition(TaskLedger.fence(processing, "worker-1"), {
          state: "succeeded",
          remoteTaskId: `${scope}-remote-1`,
          callbackUrl: "https://cb/2",
          submittedAt: 1_700_000_000_001,
          completedAt: 1_700_000_000_002,
          failCode: "code",
          failMessage: "message with 'quotes' and ünïcode",
          resultUrls: ["https://cdn.example/v.mp4?sig=1", "https://cdn.example/cover.jpg"],
          resultExpiresAt: 1_700_086_400_000,
          artifacts: [artifact],
          leaseOwner: "worker-1",
          leaseExpiresAt: 1_700_000_060_000
        })
        const read = Option.getOrThrow(yield* service.get(processing.taskKey))
        for (const value of [patched, read]) {
          assert.equal(value.state, "succeeded")
          assert.equal(value.remoteTaskId, `${scope}-remote-1`)
          assert.equal(value.callbackUrl, "https://cb/2")
          assert.equal(value.submittedAt, 1_700_000_000_001)
          assert.equal(value.completedAt, 1_700_000_000_002)
          assert.equal(value.failCode, "code")
          assert.equal(value.failMessage, "message with 'quotes' and ünïcode")
          assert.deepEqual([...value.resultUrls], ["https://cdn.example/v.mp4?sig=1", "https://cdn.example/cover.jpg"])
          assert.equal(value.resultExpiresAt, 1_700_086_400_000)
          assert.equal(value.artifacts.length, 1)
          assert.deepEqual({ ...value.artifacts[0]! }, { ...artifact })
          assert.equal(value.leaseOwner, "worker-1")
          assert.equal(value.leaseExpiresAt, 1_700_000_060_000)
        }
        const cleared = yield* service.transition(TaskLedger.fence(read, "worker-1"), {
          state: "completed",
          leaseOwner: null,
          leaseExpiresAt: null
        })
        assert.equal(cleared.leaseOwner, undefined)
        assert.equal(cleared.leaseExpiresAt, undefined)
        assert.equal(cleared.artifacts.length, 1)
        const reread = Option.getOrThrow(yield* service.get(processing.taskKey))
        assert.equal(reread.leaseOwner, undefined)
        assert.equal(reread.leaseExpiresAt, undefined)
        assert.equal(reread.state, "completed")
        assert.equal(reread.failCode, "code")
      })
  },
  {
    name: "null clears failCode and failMessage (a resubmitted task forgets its old failure)",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const sending = yield* rowIn(service, newTask(scope, "t"), "sending")
        const rejected = yield* service.transition(TaskLedger.fence(sending, "w"), {
          state: "rejected",
          failCode: "InsufficientCredits",
          failMessage: "top up first"
        })
        assert.equal(rejected.failCode, "InsufficientCredits")
        const queued = yield* service.transition(TaskLedger.fence(rejected, "w"), {
          state: "queued",
          failCode: null,
          failMessage: null
        })
        const read = Option.getOrThrow(yield* service.get(sending.taskKey))
        for (const value of [queued, read]) {
          assert.equal(value.state, "queued")
          assert.equal(value.failCode, undefined)
          assert.equal(value.failMessage, undefined)
        }
        // Absent fields stay as they are; only null clears.
        const noted = yield* service.transition(TaskLedger.fence(read, "w"), { failMessage: "again" })
        const kept = yield* service.transition(TaskLedger.fence(noted, "w"), { state: "queued" })
        assert.equal(kept.failMessage, "again")
        assert.equal(Option.getOrThrow(yield* service.get(sending.taskKey)).failMessage, "again")
      })
  },
  {
    name: "list returns newest first and applies the state, provider, model, time and limit filters",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const start = yield* Clock.currentTimeMillis
        const created: Array<TaskLedger.TaskRecord> = []
        for (const [index, modelId] of ["model-a", "model-b", "model-a", "model-b"].entries()) {
          if (index > 0) yield* TestClock.adjust("10 millis")
          created.push((yield* service.create(newTask(scope, `t${index}`, { modelId }))).record)
        }
        yield* moveTo(service, created[1]!, "completed")
        yield* moveTo(service, created[2]!, "failed")
        yield* moveTo(service, created[3]!, "processing")
        const k = (name: string) => `${scope}-${name}`
        assert.deepEqual(keys(yield* service.list({ providerId: scope })), [k("t3"), k("t2"), k("t1"), k("t0")])
        assert.deepEqual(keys(yield* service.list({ providerId: scope, states: ["completed", "failed"] })), [
          k("t2"),
          k("t1")
        ])
        assert.deepEqual(keys(yield* service.list({ providerId: scope, states: [] })), [])
        assert.deepEqual(keys(yield* service.list({ providerId: scope, modelId: "model-b" })), [k("t3"), k("t1")])
        assert.deepEqual(keys(yield* service.list({ providerId: scope, since: start + 10 })), [
          k("t3"),
          k("t2"),
          k("t1")
        ])
        assert.deepEqual(keys(yield* service.list({ providerId: scope, until: start + 20 })), [k("t1"), k("t0")])
        assert.deepEqual(keys(yield* service.list({ providerId: scope, since: start + 10, until: start + 30 })), [
          k("t2"),
          k("t1")
        ])
        assert.deepEqual(keys(yield* service.list({ providerId: scope, limit: 2 })), [k("t3"), k("t2")])
        assert.deepEqual(
          keys(yield* service.list({ providerId: scope, modelId: "model-a", states: ["queued", "failed"], limit: 1 })),
          [k("t2")]
        )
        assert.deepEqual(keys(yield* service.list({ providerId: `${scope}-other` })), [])
        // Without a provider filter this scope's rows are there too, among any others.
        const all = keys(yield* service.list())
        for (const name of ["t0", "t1", "t2", "t3"]) assert.ok(all.includes(k(name)))
      })
  },
  {
    name: "list orders tasks created at the same time by task key, descending",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        for (const name of ["b", "a", "c"]) yield* service.create(newTask(scope, name))
        assert.deepEqual(keys(yield* service.list({ providerId: scope })), [`${scope}-c`, `${scope}-b`, `${scope}-a`])
      })
  },
  {
    name: "claimUnfinished leases unfinished tasks with a free or expired lease, oldest first, never live-held ones",
    run: (scope) =>
      Effect.gen(function* () {
        const [service, other] = yield* bothHandles
        const states: ReadonlyArray<TaskState.State> = [
          "queued",
          "submitted",
          "completed",
          "pending",
          "failed",
          "processing",
          "rejected",
          "succeeded",
          "ambiguous",
          "sending",
          "cancelled"
        ]
        for (const [index, state] of states.entries()) {
          yield* rowIn(service, newTask(scope, `s${index}`), state)
          yield* TestClock.adjust("1 millis")
        }
        // A row its creator holds is not claimable until that lease expires.
        const createdAt = yield* Clock.currentTimeMillis
        yield* service.create(
          newTask(scope, "held", { leaseOwner: `${scope}-creator`, leaseExpiresAt: createdAt + 5_000 })
        )
        const unfinished = states.flatMap((state, index) =>
          TaskState.unfinishedStates.includes(state) ? [`${scope}-s${index}`] : []
        )
        assert.equal(unfinished.length, 6)
        const now = yield* Clock.currentTimeMillis
        const claimed = yield* service.claimUnfinished({ owner: `${scope}-a`, leaseMillis: 60_000, providerId: scope })
        assert.deepEqual(keys(claimed), unfinished)
        for (const record of claimed) {
          assert.equal(record.leaseOwner, `${scope}-a`)
          assert.equal(record.leaseExpiresAt, now + 60_000)
        }
        const stored = Option.getOrThrow(yield* service.get(unfinished[0]!))
        assert.equal(stored.leaseOwner, `${scope}-a`)
        assert.equal(stored.version, 2)
        // Live leases are left alone: another owner's, and the claimer's own.
        assert.deepEqual(
          yield* other.claimUnfinished({ owner: `${scope}-b`, leaseMillis: 60_000, providerId: scope }),
          []
        )
        yield* TestClock.adjust("30 seconds")
        const again = yield* service.claimUnfinished({ owner: `${scope}-a`, leaseMillis: 60_000, providerId: scope })
        // Only the creator's row, whose lease has expired meanwhile.
        assert.deepEqual(keys(again), [`${scope}-held`])
        assert.equal(Option.getOrThrow(yield* service.get(unfinished[0]!)).version, 2)
        yield* TestClock.adjust("29999 millis")
        assert.deepEqual(
          yield* other.claimUnfinished({ owner: `${scope}-b`, leaseMillis: 60_000, providerId: scope }),
          []
        )
        // A lease ends at its expiry time.
        yield* TestClock.adjust("1 millis")
        const taken = yield* other.claimUnfinished({ owner: `${scope}-b`, leaseMillis: 1_000, providerId: scope })
        assert.deepEqual(keys(taken), unfinished)
        for (const [index, record] of taken.entries()) {
          assert.equal(record.leaseOwner, `${scope}-b`)
          assert.equal(record.version, claimed[index]!.version + 1)
        }
      })
  },
  {
    name: "claimUnfinished applies limit, provider and model filters",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        for (const [index, modelId] of ["m1", "m2", "m1", "m1"].entries()) {
          yield* service.create(newTask(scope, `t${index}`, { modelId }))
          yield* TestClock.adjust("1 millis")
        }
        const first = yield* service.claimUnfinished({
          owner: "w",
          leaseMillis: 1_000,
          providerId: scope,
          modelId: "m1",
          limit: 2
        })
        assert.deepEqual(keys(first), [`${scope}-t0`, `${scope}-t2`])
        const rest = yield* service.claimUnfinished({ owner: "v", leaseMillis: 1_000, providerId: scope })
        assert.deepEqual(keys(rest), [`${scope}-t1`, `${scope}-t3`])
        assert.deepEqual(
          yield* service.claimUnfinished({ owner: "u", leaseMillis: 1_000, providerId: `${scope}-other` }),
          []
        )
      })
  },
  {
    name: "concurrent claimers in two processes never claim the same task",
    run: (scope) =>
      Effect.gen(function* () {
        const [service, other] = yield* bothHandles
        for (let index = 0; index < 10; index++) yield* service.create(newTask(scope, `t${index}`))
        const claims = yield* Effect.all(
          Array.from({ length: 4 }, (_, index) =>
            (index % 2 === 0 ? service : other).claimUnfinished({
              owner: `${scope}-w${index}`,
              leaseMillis: 60_000,
              providerId: scope,
              limit: 3
            })
          ),
          { concurrency: "unbounded" }
        )
        const claimed = claims.flatMap(keys)
        assert.equal(new Set(claimed).size, claimed.length)
        const rest = yield* service.claimUnfinished({ owner: `${scope}-last`, leaseMillis: 60_000, providerId: scope })
        const everything = [...claimed, ...keys(rest)]
        assert.equal(new Set(everything).size, everything.length)
        assert.equal(everything.length, 10)
      })
  }
]

/** A fresh scope for one case: letters, digits and `-` only, so it is also a valid artifact key segment. */
export const newScope = (): string => `c${randomBytes(6).toString("hex")}`

/** Options of `suite`. */
export interface SuiteOptions<E> {
  /**
   * A second ledger on the same storage, as another process opens it (e.g. a second SQLite client
   * on the same file). Without it, `OtherLedger` is the ledger under test itself (right for the
   * in-memory ledger, whose rows live in one instance).
   */
  readonly other?: Layer.Layer<TaskLedger.TaskLedger, E> | undefined
}

/** The ledger under test and its `OtherLedger`. */
export const layerWithOther = <E1, E2 = never>(
  layer: Layer.Layer<TaskLedger.TaskLedger, E1>,
  options: SuiteOptions<E2> = {}
): Layer.Layer<TaskLedger.TaskLedger | OtherLedger, E1 | E2> => {
  const asOther = Layer.effect(OtherLedger, TaskLedger.TaskLedger)
  return options.other === undefined
    ? Layer.provideMerge(asOther, layer)
    : Layer.merge(layer, Layer.provide(asOther, options.other))
}

/**
 * Registers every case as an `@effect/vitest` test sharing one instance of `layer` (and the
 * `TestClock`). Pass the `@effect/vitest` module: `suite("SqliteLedger", layer, EffectVitest, { other })`.
 */
export const suite = <E1, E2 = never>(
  name: string,
  layer: Layer.Layer<TaskLedger.TaskLedger, E1>,
  vitest: Vitest,
  options: SuiteOptions<E2> = {}
): void =>
  vitest.layer(layerWithOther(layer, options), { timeout: "60 seconds" })(`TaskLedger contract: ${name}`, (it) => {
    for (const testCase of cases) {
      it.effect(testCase.name, () => Effect.suspend(() => testCase.run(newScope())))
    }
  })
