import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import * as AccountLimits from "../src/AccountLimits.js"

describe("AccountLimits", () => {
  it.effect("never lets more than the budget through in any sliding window", () =>
    Effect.gen(function* () {
      const limits = yield* AccountLimits.makeMemory({ requestsPerWindow: 3, window: Duration.seconds(60) })
      const times: Array<number> = []
      const fiber = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: 7 }),
          () =>
            Effect.zipRight(
              limits.takeRequest,
              Effect.map(TestClock.currentTimeMillis, (now) => times.push(now))
            ),
          { discard: true }
        )
      )
      yield* TestClock.adjust(Duration.minutes(3))
      yield* Fiber.join(fiber)
      expect(times).toEqual([0, 0, 0, 60_000, 60_000, 60_000, 120_000])
    })
  )

  it.effect("pauses every request after a back-off", () =>
    Effect.gen(function* () {
      const limits = yield* AccountLimits.makeMemory({ requestsPerWindow: 100 })
      yield* limits.backOff(Duration.seconds(30))
      const fiber = yield* Effect.fork(limits.takeRequest)
      yield* TestClock.adjust(Duration.seconds(29))
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.join(fiber)
      expect((yield* limits.snapshot).requestsInWindow).toBe(1)
    })
  )

  it.effect("holds a task slot per task key, idempotently, until released", () =>
    Effect.gen(function* () {
      const limits = yield* AccountLimits.makeMemory({ concurrentTasks: 2 })
      yield* limits.acquireTaskSlot("a")
      yield* limits.acquireTaskSlot("a")
      yield* limits.acquireTaskSlot("b")
      expect((yield* limits.snapshot).tasksInFlight).toBe(2)
      const third = yield* Effect.fork(limits.acquireTaskSlot("c"))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(third.unsafePoll()).toBeNull()
      yield* limits.releaseTaskSlot("a")
      yield* Fiber.join(third)
      expect(yield* limits.holdsTaskSlot("c")).toBe(true)
      expect(yield* limits.holdsTaskSlot("a")).toBe(false)
      // Releasing twice must not create a phantom slot.
      yield* limits.releaseTaskSlot("a")
      expect((yield* limits.snapshot).tasksInFlight).toBe(2)
    })
  )
})
