/**
 * The contract every `TaskProvider` must pass: `prepare` (the validation gate) rejects bad inputs
 * and bad start requests with `InvalidInput` and turns good ones into a JSON wire request that
 * survives the ledger's storage, the same one every time; `submit` of that stored wire request
 * returns a remote id; `status` of an unknown id is `TaskNotFound`; a submitted task ends
 * `Succeeded` with outputs; hints are sane; a callback verifier refuses an unsigned delivery; a
 * cancel leaves the task `Cancelled` or fails with a typed error; a callback parser rejects what
 * is not a callback; and `redact`, when present, removes the provider's secret. Register it in a vitest file with
 * `TaskProviderContract.suite("MyProvider", () => myLayer, options, EffectVitest)`, or run `cases`
 * with any runner. Assertions use `node:assert`, so only the registration needs `@effect/vitest`.
 *
 * Each case builds the layer afresh inside the test, so a provider backed by `FakeApixo.layer()`
 * gets a new server on the test's `TestClock`; cases move that clock forward to let tasks finish.
 *
 * @since 0.1.0
 */
import { TaskError, TaskProvider, TaskStatus } from "@reelkit/core"
import type * as EffectVitest from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { strict as assert } from "node:assert"

/** What the contract needs to know about the provider under test. */
export interface Options {
  /** An input `prepare` accepts and whose task the implementation under test completes successfully. */
  readonly validInput: unknown
  /** Inputs `prepare` must reject with `InvalidInput` (at least one). */
  readonly invalidInputs: ReadonlyArray<unknown>
  /**
   * Whole start requests (bad callback URL, bad transport options) `prepare` must reject with
   * `InvalidInput` at exactly `path`. Default none.
   */
  readonly invalidRequests?:
    | ReadonlyArray<{ readonly request: TaskProvider.StartRequest; readonly path: string }>
    | undefined
  /** A secret (the API key) the provider's `redact` must remove; when given, `redact` is required. */
  readonly secret?: string | undefined
  /** A remote id the implementation never issued (default `task_reelkit_contract_unknown`). */
  readonly unknownRemoteTaskId?: string | undefined
  /** How far the TestClock moves between status reads (default the provider's poll interval). */
  readonly step?: Duration.DurationInput | undefined
  /** Status reads before the success case gives up (default 100). */
  readonly maxPolls?: number | undefined
}

/** One contract case: an Effect needing the provider (and a Scope), run on a TestClock. */
export interface Case {
  readonly name: string
  readonly run: Effect.Effect<void, unknown, TaskProvider.TaskProvider | Scope.Scope>
}

/** The part of `@effect/vitest` the suite registers tests with. */
export interface Vitest {
  readonly describe: typeof EffectVitest.describe
  readonly it: typeof EffectVitest.it
}

const provider = TaskProvider.TaskProvider

const expectPositive = (what: string, duration: Duration.Duration) =>
  assert.ok(Duration.toMillis(duration) > 0, `${what} must be positive, got ${Duration.format(duration)}`)

// The ledger stores a wire request as JSON; a recovery decodes it and sends it. Every submit in
// the contract goes through that round trip, so a wire that does not survive it fails here.
const storeAndLoad = (wire: TaskProvider.WireRequest): TaskProvider.WireRequest =>
  Schema.decodeUnknownSync(TaskProvider.WireRequest)(
    JSON.parse(JSON.stringify(Schema.encodeSync(TaskProvider.WireRequest)(wire)))
  )

/** Prepares the valid input and submits the stored wire request once, with a fresh task key. */
const submitValid = (options: Options, taskKey: string) =>
  Effect.gen(function* () {
    const service = yield* provider
    const prepared = yield* service.prepare({ input: options.validInput })
    return yield* service.submit({ taskKey, wire: storeAndLoad(prepared.wire) })
  })

const expectInvalid = (result: Either.Either<unknown, TaskError.InvalidInput>, what: string) => {
  assert.ok(Either.isLeft(result), `prepare accepted ${what}`)
  assert.ok(result.left instanceof TaskError.InvalidInput, `expected InvalidInput, got ${result.left._tag}`)
  assert.equal(typeof result.left.path, "string")
  assert.ok(result.left.rule.length > 0, "InvalidInput must state the rule broken")
  return result.left
}

/** The contract's cases, for running under another test runner. */
export const cases = (options: Options): ReadonlyArray<Case> => [
  {
    name: "has ids and sane hints: positive poll interval, deadline and retention",
    run: Effect.gen(function* () {
      const service = yield* provider
      assert.ok(service.providerId.length > 0, "providerId must not be empty")
      assert.ok(service.modelId.length > 0, "modelId must not be empty")
      const { pollPlan, resultRetention } = service.hints
      assert.ok(Duration.toMillis(pollPlan.firstPollAfter) >= 0, "firstPollAfter must not be negative")
      expectPositive("pollPlan.interval", pollPlan.interval)
      expectPositive("pollPlan.deadline", pollPlan.deadline)
      assert.ok(
        Duration.greaterThanOrEqualTo(pollPlan.deadline, pollPlan.interval),
        "the deadline must leave room for at least one poll interval"
      )
      expectPositive("resultRetention", resultRetention)
    })
  },
  {
    name: "prepare rejects each invalid input with InvalidInput naming a path and a rule",
    run: Effect.gen(function* () {
      const service = yield* provider
      assert.ok(options.invalidInputs.length > 0, "the contract needs at least one invalid input")
      for (const input of options.invalidInputs) {
        expectInvalid(yield* Effect.either(service.prepare({ input })), `an invalid input: ${JSON.stringify(input)}`)
      }
    })
  },
  {
    name: "prepare rejects each invalid start request with InvalidInput at the field it names",
    run: Effect.gen(function* () {
      const service = yield* provider
      for (const { path, request } of options.invalidRequests ?? []) {
        const what = `an invalid start request: ${JSON.stringify(request)}`
        const error = expectInvalid(yield* Effect.either(service.prepare(request)), what)
        assert.equal(error.path, path, `${what} was refused at ${error.path}, expected ${path}`)
      }
    })
  },
  {
    name: "prepare turns the valid input into a JSON wire request that survives storage, the same one each time",
    run: Effect.gen(function* () {
      const service = yield* provider
      const prepared = yield* service.prepare({ input: options.validInput })
      assert.deepStrictEqual(JSON.parse(JSON.stringify(prepared.input)), prepared.input, "the wire input must be JSON")
      assert.ok(prepared.wire instanceof TaskProvider.WireRequest, "wire must be a WireRequest")
      assert.equal(prepared.wire.method, "POST")
      assert.ok(prepared.wire.path.startsWith("/"), `the wire path must start with "/", got ${prepared.wire.path}`)
      assert.deepStrictEqual(
        JSON.parse(JSON.stringify(prepared.wire.body)),
        prepared.wire.body,
        "the body must be JSON"
      )
      assert.deepStrictEqual(storeAndLoad(prepared.wire), prepared.wire, "the wire request must survive storage")
      // Idempotency compares prepared requests: the same start request must give the same bytes.
      const again = yield* service.prepare({ input: options.validInput })
      assert.equal(JSON.stringify(again.wire), JSON.stringify(prepared.wire), "prepare must be deterministic")
      if (prepared.billableSeconds !== undefined) {
        assert.ok(prepared.billableSeconds > 0, `billableSeconds must be positive, got ${prepared.billableSeconds}`)
      }
    })
  },
  {
    name: "submit returns a remote id, a different one for each task",
    run: Effect.gen(function* () {
      const first = yield* submitValid(options, "contract-submit-1")
      const second = yield* submitValid(options, "contract-submit-2")
      assert.equal(typeof first.remoteTaskId, "string")
      assert.ok(first.remoteTaskId.length > 0, "the remote id must not be empty")
      assert.notEqual(first.remoteTaskId, second.remoteTaskId)
    })
  },
  {
    name: "status of an unknown remote id fails with TaskNotFound",
    run: Effect.gen(function* () {
      const unknown = options.unknownRemoteTaskId ?? "task_reelkit_contract_unknown"
      const result = yield* Effect.either((yield* provider).status(unknown))
      assert.ok(Either.isLeft(result), "status of an unknown id must fail")
      assert.ok(result.left instanceof TaskError.TaskNotFound, `expected TaskNotFound, got ${result.left._tag}`)
      assert.equal(result.left.remoteTaskId, unknown)
    })
  },
  {
    name: "a submitted task is Pending or Processing until it ends Succeeded with outputs, and stays so",
    run: Effect.gen(function* () {
      const service = yield* provider
      const { remoteTaskId } = yield* submitValid(options, "contract-success")
      const step = options.step ?? service.hints.pollPlan.interval
      const maxPolls = options.maxPolls ?? 100
      const seen: Array<string> = []
      let status: TaskStatus.TaskStatus = yield* service.status(remoteTaskId)
      seen.push(status._tag)
      while (!TaskStatus.isTerminal(status) && seen.length < maxPolls) {
        yield* TestClock.adjust(step)
        status = yield* service.status(remoteTaskId)
        seen.push(status._tag)
      }
      assert.ok(status._tag === "Succeeded", `expected Succeeded, saw ${seen.join(" -> ")}`)
      assert.ok(
        seen.slice(0, -1).every((tag) => tag === "Pending" || tag === "Processing"),
        `only Pending or Processing may come before the end, saw ${seen.join(" -> ")}`
      )
      assert.ok(status.outputs.length > 0, "a success must carry at least one output")
      for (const output of status.outputs) assert.ok(output.url.length > 0, "every output needs a URL")
      const again = yield* service.status(remoteTaskId)
      assert.ok(again._tag === "Succeeded", `a finished task must stay Succeeded, got ${again._tag}`)
      assert.deepStrictEqual(
        again.outputs.map((output) => output.url),
        status.outputs.map((output) => output.url)
      )
    })
  },
  {
    name: "redact, when present, removes the provider's secret and leaves other text alone",
    run: Effect.gen(function* () {
      const { redact } = yield* provider
      if (options.secret !== undefined) {
        assert.ok(redact !== undefined, "a provider with a secret must offer redact")
        const redacted = redact(`echoed ${options.secret} twice: ${options.secret}.`)
        assert.ok(!redacted.includes(options.secret), `redact left the secret in: ${redacted.length} characters`)
        assert.ok(redacted.startsWith("echoed "), "redact must keep the text around the secret")
      }
      if (redact !== undefined) {
        const plain = "a task failed: CONTENT_VIOLATION"
        assert.equal(redact(plain), plain, "redact must leave text without secrets unchanged")
      }
    })
  },
  {
    name: "verifyCallback, when supported, refuses an unsigned delivery with CallbackRejected",
    run: Effect.gen(function* () {
      const service = yield* provider
      if (service.verifyCallback === undefined) return
      const result = yield* Effect.either(
        service.verifyCallback({
          method: "POST",
          url: "https://hooks.example/callbacks/contract/token",
          headers: { "content-type": "application/json" },
          body: "{}"
        })
      )
      assert.ok(Either.isLeft(result), "verifyCallback accepted a delivery without any signature")
      assert.ok(
        result.left instanceof TaskError.CallbackRejected,
        `expected CallbackRejected, got ${String((result.left as { _tag?: string })._tag)}`
      )
    })
  },
  {
    name: "cancel, when supported, of a task just submitted leaves it Cancelled, or fails with a typed error",
    run: Effect.gen(function* () {
      const service = yield* provider
      if (service.cancel === undefined) return
      const { remoteTaskId } = yield* submitValid(options, "contract-cancel")
      const cancelled = yield* Effect.either(service.cancel(remoteTaskId))
      if (Either.isLeft(cancelled)) {
        assert.ok(
          TaskError.isProviderError(cancelled.left),
          `cancel failed with an untyped error: ${String(cancelled.left)}`
        )
        return
      }
      const status = yield* service.status(remoteTaskId)
      assert.equal(status._tag, "Cancelled", `a cancelled task must read Cancelled, got ${status._tag}`)
    })
  },
  {
    name: "parseCallback, when supported, rejects a body that is not a callback with DecodeError",
    run: Effect.gen(function* () {
      const service = yield* provider
      if (service.parseCallback === undefined) return
      for (const body of [null, "not a callback", { unrelated: true }]) {
        const result = yield* Effect.either(service.parseCallback(body))
        assert.ok(Either.isLeft(result), `parseCallback accepted ${JSON.stringify(body)}`)
        assert.ok(result.left instanceof TaskError.DecodeError, `expected DecodeError, got ${result.left._tag}`)
      }
    })
  }
]

/**
 * Registers the contract as a vitest `describe` block. `makeLayer` is called once per case, inside
 * the case, so every case starts from a fresh provider (and fresh fakes) on its own TestClock.
 */
export const suite = <E>(
  name: string,
  makeLayer: () => Layer.Layer<TaskProvider.TaskProvider, E>,
  options: Options,
  vitest: Vitest
): void => {
  vitest.describe(`TaskProvider contract: ${name}`, () => {
    for (const testCase of cases(options)) {
      vitest.it.scoped(testCase.name, () => runCase(testCase, makeLayer()))
    }
  })
}

/** Runs one case against a provider layer, built in the case's scope. */
export const runCase = <E>(
  testCase: Case,
  layer: Layer.Layer<TaskProvider.TaskProvider, E>
): Effect.Effect<void, unknown, Scope.Scope> =>
  Effect.flatMap(Layer.build(layer), (context) => Effect.provide(testCase.run, context))
