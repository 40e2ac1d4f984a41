/**
 * The contract every `SpendCap` store must pass: a reservation that would exceed a cap is refused
 * with the cap and what is left, a task key is reserved once, `release` refunds, the day's budget
 * resets at the UTC day's end while the month's carries on, money caps count priced tasks, and
 * reservations from several processes at once never exceed a cap together.
 *
 * Register it with `SpendCapContract.suite("SqliteSpendCap", storeLayer, EffectVitest)`.
 *
 * @since 0.1.0
 */
import type * as EffectVitest from "@effect/vitest"
import { SpendCap } from "@reelkit/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { strict as assert } from "node:assert"
import { randomBytes } from "node:crypto"

/** Builds stores on one backend; each call is another process's view of `account`. */
export class Store extends Context.Tag("@reelkit/testing/SpendCapContract/Store")<
  Store,
  { readonly makeStore: (account: string) => Effect.Effect<SpendCap.Store, never, Scope.Scope> }
>() {}

/** One contract case; `account` is unique per case and run. */
export interface Case {
  readonly name: string
  readonly run: (account: string) => Effect.Effect<void, unknown, Store | Scope.Scope>
}

/** The part of `@effect/vitest` the suite registers tests with. */
export interface Vitest {
  readonly layer: typeof EffectVitest.layer
}

const capped = (account: string, options: SpendCap.Options) =>
  Effect.flatMap(Store, (store) => Effect.map(store.makeStore(account), (backend) => SpendCap.make(backend, options)))

const task = (taskKey: string, billableSeconds: number | undefined, cost?: SpendCap.Money): SpendCap.Reservation => ({
  taskKey,
  providerId: "apixo",
  modelId: "viduq3",
  billableSeconds,
  cost
})

/** Every case of the contract. */
export const cases: ReadonlyArray<Case> = [
  {
    name: "refuses a reservation over the daily seconds cap, naming the cap and what is left",
    run: (account) =>
      Effect.gen(function* () {
        const cap = yield* capped(account, { secondsPerDay: 10 })
        yield* cap.reserve(task(`${account}-a`, 4))
        yield* cap.reserve(task(`${account}-b`, 4))
        const refused = yield* Effect.either(cap.reserve(task(`${account}-c`, 4)))
        assert.ok(Either.isLeft(refused))
        const error = refused.left
        assert.equal(error._tag, "SpendCapExceeded")
        if (error._tag !== "SpendCapExceeded") return
        assert.equal(error.cap, "secondsPerDay")
        assert.equal(error.limit, 10)
        assert.equal(error.used, 8)
        assert.equal(error.requested, 4)
        assert.equal(error.remaining, 2)
        assert.equal(error.unit, "seconds")
        assert.match(error.message, /secondsPerDay/)
        // What fits still fits; then nothing is left.
        yield* cap.reserve(task(`${account}-d`, 2))
        const remaining = yield* cap.remaining
        assert.equal(remaining.day.seconds.used, 10)
        assert.equal(remaining.day.seconds.left, 0)
        assert.equal(remaining.month.seconds.limit, undefined)
      })
  },
  {
    name: "reserving a task key twice records it once; release refunds it",
    run: (account) =>
      Effect.gen(function* () {
        const cap = yield* capped(account, { secondsPerDay: 10 })
        yield* cap.reserve(task(`${account}-a`, 6))
        yield* cap.reserve(task(`${account}-a`, 6))
        assert.equal((yield* cap.remaining).day.seconds.used, 6)
        yield* cap.release(`${account}-a`)
        yield* cap.release(`${account}-never`)
        assert.equal((yield* cap.remaining).day.seconds.used, 0)
        yield* cap.reserve(task(`${account}-b`, 10))
        assert.equal((yield* cap.remaining).day.seconds.left, 0)
      })
  },
  {
    name: "the day's budget resets at the end of the UTC day; the month's carries on",
    run: (account) =>
      Effect.gen(function* () {
        const cap = yield* capped(account, { secondsPerDay: 20, secondsPerMonth: 25 })
        yield* cap.reserve(task(`${account}-a`, 10))
        const before = yield* cap.remaining
        yield* TestClock.adjust(before.day.resetsAt - (yield* TestClock.currentTimeMillis))
        const after = yield* cap.remaining
        assert.equal(after.day.seconds.used, 0)
        assert.equal(after.day.start, before.day.resetsAt)
        if (after.month.start === before.month.start) {
          assert.equal(after.month.seconds.used, 10)
          yield* cap.reserve(task(`${account}-b`, 10))
          const refused = yield* Effect.flip(cap.reserve(task(`${account}-c`, 6)))
          assert.equal(refused._tag === "SpendCapExceeded" ? refused.cap : refused._tag, "secondsPerMonth")
        }
      })
  },
  {
    name: "money caps count priced tasks: by the caller's cost or the price table",
    run: (account) =>
      Effect.gen(function* () {
        const cap = yield* capped(account, {
          moneyPerDay: 1,
          currency: "USD",
          pricePerSecond: { viduq3: 0.1 }
        })
        yield* cap.reserve(task(`${account}-a`, 5))
        yield* cap.reserve(task(`${account}-b`, 1, { amount: 0.25, currency: "USD" }))
        const refused = yield* Effect.flip(cap.reserve(task(`${account}-c`, 4)))
        assert.equal(refused._tag, "SpendCapExceeded")
        if (refused._tag !== "SpendCapExceeded") return
        assert.equal(refused.cap, "moneyPerDay")
        assert.equal(refused.unit, "USD")
        assert.ok(Math.abs(refused.remaining - 0.25) < 1e-9)
        const remaining = yield* cap.remaining
        assert.ok(Math.abs(remaining.day.money.used - 0.75) < 1e-9)
        assert.equal(remaining.currency, "USD")
        // A cost in another currency cannot be measured against the cap.
        const unmetered = yield* Effect.flip(cap.reserve(task(`${account}-d`, 1, { amount: 0.01, currency: "EUR" })))
        assert.equal(unmetered._tag, "SpendCapUnmetered")
      })
  },
  {
    name: "a seconds cap refuses a task whose billable seconds are unknown",
    run: (account) =>
      Effect.gen(function* () {
        const cap = yield* capped(account, { secondsPerMonth: 100 })
        const refused = yield* Effect.flip(cap.reserve(task(`${account}-a`, undefined)))
        assert.equal(refused._tag, "SpendCapUnmetered")
        if (refused._tag === "SpendCapUnmetered") assert.equal(refused.missing, "billableSeconds")
        assert.equal((yield* cap.remaining).month.seconds.used, 0)
      })
  },
  {
    name: "reservations from several processes at once never exceed the cap together",
    run: (account) =>
      Effect.gen(function* () {
        const caps = yield* Effect.all(Array.from({ length: 3 }, () => capped(account, { secondsPerDay: 10 })))
        const results = yield* Effect.all(
          Array.from({ length: 30 }, (_, index) =>
            Effect.either(caps[index % 3]!.reserve(task(`${account}-${index}`, 1)))
          ),
          { concurrency: "unbounded" }
        )
        assert.equal(results.filter(Either.isRight).length, 10)
        assert.equal((yield* caps[1]!.remaining).day.seconds.used, 10)
      })
  }
]

/** A fresh account name for one case. */
export const newAccount = (): string => `spend-${randomBytes(6).toString("hex")}`

/** Registers every case as an `@effect/vitest` test sharing one instance of `layer`. */
export const suite = <E>(name: string, layer: Layer.Layer<Store, E>, vitest: Vitest): void =>
  vitest.layer(layer, { timeout: "60 seconds" })(`SpendCap contract: ${name}`, (it) => {
    for (const testCase of cases) {
      it.scoped(testCase.name, () => Effect.suspend(() => testCase.run(newAccount())))
    }
  })
