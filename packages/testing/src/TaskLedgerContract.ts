/**
 * The contract every `TaskLedger` adapter must pass: idempotent creates, conditional transitions,
 * lookups, list filters and ordering, and lease claims. Register it in a vitest file with
 * `TaskLedgerContract.suite("MyLedger", myLayer, EffectVitest)`, or run `cases` with any runner.
 * Assertions use `node:assert`, so only the registration needs `@effect/vitest`.
 *
 * @since 0.1.0
 */
import { TaskError, TaskLedger } from "@reelkit/core"
import type * as EffectVitest from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { strict as assert } from "node:assert"
import { randomBytes } from "node:crypto"

/**
 * One contract case. `scope` is unique per case and run: cases use it as the provider id and as a
 * prefix of their task keys, so they can share one ledger (and one database) without seeing each
 * other's rows. Cases move the `TestClock` forward, never back.
 */
export interface Case {
  readonly name: string
  readonly run: (scope: string) => Effect.Effect<void, unknown, TaskLedger.TaskLedger>
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
  taskKey: `${scope}-${name}`,
  providerId: scope,
  modelId: options.modelId ?? "model-a",
  idempotencyKey: options.idempotencyKey,
  input: options.input ?? { mode: "text-to-video", prompt: "a city at dawn", duration: 5 },
  callbackUrl: options.callbackUrl,
  billableSeconds: options.billableSeconds
})

const failureTag = <A, E>(either: Either.Either<A, E>): string | undefined =>
  Either.isLeft(either) ? (either.left as { readonly _tag?: string })._tag : undefined

const keys = (records: ReadonlyArray<TaskLedger.TaskRecord>): Array<string> => records.map((record) => record.taskKey)

const ledger = TaskLedger.TaskLedger

/** Every case of the contract. */
export const cases: ReadonlyArray<Case> = [
  {
    name: "create writes a submitting row at version 1 with the Clock's time, and get reads it back",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        yield* TestClock.adjust("1 second")
        const now = yield* Clock.currentTimeMillis
        const input = { mode: "reference-to-video", prompt: "two cats", images: ["https://x/1.png"], options: { a: 1 } }
        const created = yield* service.create(
          newTask(scope, "one", {
            idempotencyKey: `${scope}-idem`,
            input,
            callbackUrl: "https://cb.example/t/secret",
            billableSeconds: 8
          })
        )
        assert.equal(created._tag, "Created")
        const record = created.record
        assert.equal(record.taskKey, `${scope}-one`)
        assert.equal(record.providerId, scope)
        assert.equal(record.modelId, "model-a")
        assert.equal(record.idempotencyKey, `${scope}-idem`)
        assert.equal(record.state, "submitting")
        assert.deepEqual(record.input, input)
        assert.equal(record.callbackUrl, "https://cb.example/t/secret")
        assert.equal(record.billableSeconds, 8)
        assert.equal(record.createdAt, now)
        assert.equal(record.updatedAt, now)
        assert.equal(record.version, 1)
        assert.deepEqual(record.resultUrls, [])
        assert.deepEqual(record.artifacts, [])
        assert.equal(record.remoteTaskId, undefined)
        assert.equal(record.leaseOwner, undefined)
        const read = Option.getOrThrow(yield* service.get(`${scope}-one`))
        assert.equal(read.state, "submitting")
        assert.deepEqual(read.input, input)
        assert.equal(read.createdAt, now)
        assert.equal(read.version, 1)
        assert.ok(Option.isNone(yield* service.get(`${scope}-missing`)))
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
    name: "transition applies a patch from an expected state, bumps version and updatedAt, keeps absent fields",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const { record } = yield* service.create(
          newTask(scope, "t", { callbackUrl: "https://cb/1", billableSeconds: 4 })
        )
        yield* TestClock.adjust("5 seconds")
        const now = yield* Clock.currentTimeMillis
        const submitted = yield* service.transition(record.taskKey, ["submitting"], {
          state: "submitted",
          remoteTaskId: `${scope}-remote`,
          submittedAt: now
        })
        assert.equal(submitted.state, "submitted")
        assert.equal(submitted.remoteTaskId, `${scope}-remote`)
        assert.equal(submitted.submittedAt, now)
        assert.equal(submitted.version, 2)
        assert.equal(submitted.updatedAt, now)
        assert.equal(submitted.createdAt, record.createdAt)
        assert.equal(submitted.callbackUrl, "https://cb/1")
        assert.equal(submitted.billableSeconds, 4)
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(read.state, "submitted")
        assert.equal(read.version, 2)
        assert.equal(read.remoteTaskId, `${scope}-remote`)
        // A patch without state keeps the state.
        const polled = yield* service.transition(record.taskKey, ["submitted", "pending"], { failMessage: "note" })
        assert.equal(polled.state, "submitted")
        assert.equal(polled.failMessage, "note")
        assert.equal(polled.version, 3)
      })
  },
  {
    name: "transition from an unexpected state fails with StaleTransition and changes nothing",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const { record } = yield* service.create(newTask(scope, "t"))
        yield* service.transition(record.taskKey, ["submitting"], { state: "submitted", remoteTaskId: "r" })
        const stale = yield* Effect.either(
          service.transition(record.taskKey, ["submitting", "pending"], { state: "ambiguous", failCode: "x" })
        )
        assert.equal(failureTag(stale), "StaleTransition")
        const error = (stale as Either.Left<TaskError.StaleTransition, unknown>).left
        assert.equal(error.taskKey, record.taskKey)
        assert.equal(error.actual, "submitted")
        assert.deepEqual([...error.expected], ["submitting", "pending"])
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(read.state, "submitted")
        assert.equal(read.failCode, undefined)
        assert.equal(read.version, 2)
      })
  },
  {
    name: "transition of an unknown task fails with UnknownTask",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const unknown = yield* Effect.either(service.transition(`${scope}-nope`, [], { state: "failed" }))
        assert.equal(failureTag(unknown), "UnknownTask")
        assert.equal((unknown as Either.Left<TaskError.UnknownTask, unknown>).left.reference, `${scope}-nope`)
        const unknownFrom = yield* Effect.either(service.transition(`${scope}-nope`, ["submitting"], {}))
        assert.equal(failureTag(unknownFrom), "UnknownTask")
      })
  },
  {
    name: "an empty `from` accepts any state",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const { record } = yield* service.create(newTask(scope, "t"))
        yield* service.transition(record.taskKey, [], { state: "completed" })
        const reopened = yield* service.transition(record.taskKey, [], { state: "ambiguous" })
        assert.equal(reopened.state, "ambiguous")
        assert.equal(reopened.version, 3)
      })
  },
  {
    name: "concurrent transitions from one state: exactly one wins, the others are stale",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const { record } = yield* service.create(newTask(scope, "t"))
        const results = yield* Effect.all(
          Array.from({ length: 6 }, (_, index) =>
            Effect.either(
              service.transition(record.taskKey, ["submitting"], { state: "submitted", remoteTaskId: `r-${index}` })
            )
          ),
          { concurrency: "unbounded" }
        )
        const winners = results.filter(Either.isRight)
        assert.equal(winners.length, 1)
        assert.equal(results.filter((result) => failureTag(result) === "StaleTransition").length, 5)
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(read.remoteTaskId, winners[0]!.right.remoteTaskId)
        assert.equal(read.version, 2)
      })
  },
  {
    name: "concurrent unconditional transitions lose no update",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const { record } = yield* service.create(newTask(scope, "t"))
        yield* Effect.all(
          Array.from({ length: 20 }, (_, index) =>
            service.transition(record.taskKey, [], { failMessage: `m${index}` })
          ),
          { concurrency: "unbounded", discard: true }
        )
        assert.equal(Option.getOrThrow(yield* service.get(record.taskKey)).version, 21)
      })
  },
  {
    name: "findByRemoteId finds a task by the provider's id",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        yield* service.create(newTask(scope, "a"))
        yield* service.create(newTask(scope, "b"))
        yield* service.transition(`${scope}-b`, ["submitting"], { state: "submitted", remoteTaskId: `${scope}-rb` })
        assert.equal(Option.getOrThrow(yield* service.findByRemoteId(`${scope}-rb`)).taskKey, `${scope}-b`)
        assert.ok(Option.isNone(yield* service.findByRemoteId(`${scope}-ra`)))
      })
  },
  {
    name: "every patch field round-trips, and a null lease clears it",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const { record } = yield* service.create(newTask(scope, "t"))
        const artifact = new TaskLedger.StoredArtifact({
          key: `${scope}/video.mp4`,
          bytes: 1234,
          sha256: "ab".repeat(32),
          contentType: "video/mp4",
          sourceUrl: "https://cdn.example/v.mp4?sig=1",
          storedAt: 1_700_000_000_123
        })
        const patched = yield* service.transition(record.taskKey, [], {
          state: "succeeded",
          remoteTaskId: "remote-1",
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
        const read = Option.getOrThrow(yield* service.get(record.taskKey))
        for (const value of [patched, read]) {
          assert.equal(value.state, "succeeded")
          assert.equal(value.remoteTaskId, "remote-1")
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
        const cleared = yield* service.transition(record.taskKey, ["succeeded"], {
          state: "completed",
          leaseOwner: null,
          leaseExpiresAt: null
        })
        assert.equal(cleared.leaseOwner, undefined)
        assert.equal(cleared.leaseExpiresAt, undefined)
        assert.equal(cleared.artifacts.length, 1)
        const reread = Option.getOrThrow(yield* service.get(record.taskKey))
        assert.equal(reread.leaseOwner, undefined)
        assert.equal(reread.leaseExpiresAt, undefined)
        assert.equal(reread.state, "completed")
      })
  },
  {
    name: "list returns newest first and applies the state, provider, model, time and limit filters",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const start = yield* Clock.currentTimeMillis
        yield* service.create(newTask(scope, "t0", { modelId: "model-a" }))
        yield* TestClock.adjust("10 millis")
        yield* service.create(newTask(scope, "t1", { modelId: "model-b" }))
        yield* TestClock.adjust("10 millis")
        yield* service.create(newTask(scope, "t2", { modelId: "model-a" }))
        yield* TestClock.adjust("10 millis")
        yield* service.create(newTask(scope, "t3", { modelId: "model-b" }))
        yield* service.transition(`${scope}-t1`, [], { state: "completed" })
        yield* service.transition(`${scope}-t2`, [], { state: "failed" })
        yield* service.transition(`${scope}-t3`, [], { state: "processing" })
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
          keys(
            yield* service.list({ providerId: scope, modelId: "model-a", states: ["submitting", "failed"], limit: 1 })
          ),
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
    name: "claimUnfinished leases unfinished, unleased tasks oldest first; other owners wait for expiry",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        const states: ReadonlyArray<TaskLedger.TaskState> = [
          "submitting",
          "submitted",
          "completed",
          "pending",
          "failed",
          "processing",
          "rejected",
          "succeeded",
          "ambiguous"
        ]
        for (const [index, state] of states.entries()) {
          yield* service.create(newTask(scope, `s${index}`))
          if (state !== "submitting") yield* service.transition(`${scope}-s${index}`, [], { state })
          yield* TestClock.adjust("1 millis")
        }
        const unfinished = states.flatMap((state, index) =>
          TaskLedger.unfinishedStates.includes(state) ? [`${scope}-s${index}`] : []
        )
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
        assert.deepEqual(
          yield* service.claimUnfinished({ owner: `${scope}-b`, leaseMillis: 60_000, providerId: scope }),
          []
        )
        // The same owner may renew its own lease.
        yield* TestClock.adjust("30 seconds")
        const renewed = yield* service.claimUnfinished({ owner: `${scope}-a`, leaseMillis: 60_000, providerId: scope })
        assert.deepEqual(keys(renewed), unfinished)
        assert.equal(renewed[0]!.leaseExpiresAt, now + 90_000)
        yield* TestClock.adjust("59999 millis")
        assert.deepEqual(
          yield* service.claimUnfinished({ owner: `${scope}-b`, leaseMillis: 60_000, providerId: scope }),
          []
        )
        // A lease ends at its expiry time.
        yield* TestClock.adjust("1 millis")
        const taken = yield* service.claimUnfinished({ owner: `${scope}-b`, leaseMillis: 1_000, providerId: scope })
        assert.deepEqual(keys(taken), unfinished)
        for (const record of taken) assert.equal(record.leaseOwner, `${scope}-b`)
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
    name: "concurrent claimers never claim the same task",
    run: (scope) =>
      Effect.gen(function* () {
        const service = yield* ledger
        for (let index = 0; index < 10; index++) yield* service.create(newTask(scope, `t${index}`))
        const claims = yield* Effect.all(
          Array.from({ length: 4 }, (_, index) =>
            service.claimUnfinished({ owner: `${scope}-w${index}`, leaseMillis: 60_000, providerId: scope, limit: 3 })
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

/**
 * Registers every case as an `@effect/vitest` test sharing one instance of `layer` (and the
 * `TestClock`). Pass the `@effect/vitest` module: `suite("SqliteLedger", layer, EffectVitest)`.
 */
export const suite = <E>(name: string, layer: Layer.Layer<TaskLedger.TaskLedger, E>, vitest: Vitest): void =>
  vitest.layer(layer, { timeout: "60 seconds" })(`TaskLedger contract: ${name}`, (it) => {
    for (const testCase of cases) {
      it.effect(testCase.name, () => Effect.suspend(() => testCase.run(newScope())))
    }
  })
