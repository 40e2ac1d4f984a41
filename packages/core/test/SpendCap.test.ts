import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import * as SpendCap from "../src/SpendCap.js"

const reservation = (taskKey: string, billableSeconds: number | undefined): SpendCap.Reservation => ({
  taskKey,
  providerId: "apixo",
  modelId: "viduq3",
  billableSeconds
})

describe("SpendCap", () => {
  it.effect("layerNone admits everything and remembers nothing", () =>
    Effect.gen(function* () {
      const cap = yield* SpendCap.SpendCap
      for (let index = 0; index < 5; index++) yield* cap.reserve(reservation(`t${index}`, 1_000_000))
      yield* cap.reserve(reservation("unknown-seconds", undefined))
      const remaining = yield* cap.remaining
      expect(remaining.day.seconds).toEqual({ used: 0, limit: undefined, left: undefined })
      expect(SpendCap.isCapped(cap.caps)).toBe(false)
    }).pipe(Effect.provide(SpendCap.layerNone))
  )

  it.effect("layerMemory refuses over the monthly cap with a message naming the cap and what is left", () =>
    Effect.gen(function* () {
      const cap = yield* SpendCap.SpendCap
      yield* cap.reserve(reservation("a", 8))
      const error = yield* Effect.flip(cap.reserve(reservation("b", 5)))
      expect(error._tag).toBe("SpendCapExceeded")
      if (error._tag !== "SpendCapExceeded") return
      expect({ cap: error.cap, remaining: error.remaining, used: error.used, limit: error.limit }).toEqual({
        cap: "secondsPerMonth",
        remaining: 2,
        used: 8,
        limit: 10
      })
      expect(error.message).toContain("secondsPerMonth (10 seconds)")
      expect(error.message).toContain("2 left")
      expect(error.provesNotCreated).toBe(true)
      // The month of the TestClock's epoch: January 1970, reset on February 1st.
      expect(error.resetsAt).toBe(Date.UTC(1970, 1, 1))
    }).pipe(Effect.provide(SpendCap.layerMemory({ secondsPerMonth: 10 })))
  )

  it.effect("priceOf prices a reservation by its input when it carries no cost", () =>
    Effect.gen(function* () {
      const cap = yield* SpendCap.SpendCap
      const priced = (taskKey: string, resolution: string) => ({
        ...reservation(taskKey, 4),
        input: { resolution, duration: 4 }
      })
      yield* cap.reserve(priced("a", "720p"))
      expect((yield* cap.remaining).day.money.used).toBeCloseTo(0.4)
      const error = yield* Effect.flip(cap.reserve(priced("b", "1080p")))
      expect(error._tag === "SpendCapExceeded" && error.cap).toBe("moneyPerDay")
      // No price for this input: a money cap cannot measure it.
      const unmetered = yield* Effect.flip(cap.reserve(priced("c", "540p")))
      expect(unmetered._tag).toBe("SpendCapUnmetered")
    }).pipe(
      Effect.provide(
        SpendCap.layerMemory({
          moneyPerDay: 1,
          currency: "USD",
          priceOf: (request) => {
            const input = request.input as { resolution: string; duration: number }
            const perSecond = ({ "720p": 0.1, "1080p": 0.2 } as Record<string, number>)[input.resolution]
            return perSecond === undefined ? undefined : { amount: perSecond * input.duration, currency: "USD" }
          }
        })
      )
    )
  )

  it("periodsAt gives the UTC day and month around an instant", () => {
    const periods = SpendCap.periodsAt(Date.UTC(2026, 11, 31, 23, 59, 59, 999))
    expect(periods).toEqual({
      dayStart: Date.UTC(2026, 11, 31),
      dayEnd: Date.UTC(2027, 0, 1),
      monthStart: Date.UTC(2026, 11, 1),
      monthEnd: Date.UTC(2027, 0, 1)
    })
  })

  it.effect("config reads REELKIT_SPEND_CAP_* and wants a currency with a money cap", () =>
    Effect.gen(function* () {
      const read = (entries: ReadonlyArray<[string, string]>) =>
        Effect.either(Effect.withConfigProvider(SpendCap.config(), ConfigProvider.fromMap(new Map(entries))))
      const caps = yield* read([
        ["REELKIT_SPEND_CAP_SECONDS_PER_DAY", "120"],
        ["REELKIT_SPEND_CAP_MONEY_PER_MONTH", "50"],
        ["REELKIT_SPEND_CAP_CURRENCY", "USD"]
      ])
      expect(Either.getOrThrow(caps)).toEqual({
        secondsPerDay: 120,
        secondsPerMonth: undefined,
        moneyPerDay: undefined,
        moneyPerMonth: 50,
        currency: "USD"
      })
      const noCurrency = yield* read([["REELKIT_SPEND_CAP_MONEY_PER_DAY", "5"]])
      expect(Either.isLeft(noCurrency)).toBe(true)
      const negative = yield* read([["REELKIT_SPEND_CAP_SECONDS_PER_DAY", "-1"]])
      expect(Either.isLeft(negative)).toBe(true)
      expect(Either.getOrThrow(yield* read([]))).toEqual({
        secondsPerDay: undefined,
        secondsPerMonth: undefined,
        moneyPerDay: undefined,
        moneyPerMonth: undefined,
        currency: undefined
      })
    })
  )
})
