import { ScriptedProvider } from "@reelkit/testing"
import { Duration, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import * as AccountLimits from "../src/AccountLimits.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskProvider from "../src/TaskProvider.js"

/** A poll plan short enough for tests: first poll after 10 s, then every 5 s, deadline 10 min. */
export const testPlan: TaskProvider.PollPlan = {
  firstPollAfter: Duration.seconds(10),
  interval: Duration.seconds(5),
  deadline: Duration.minutes(10)
}

/** Client + scripted provider + memory ledger + limits, as one layer. */
export const clientLayer = (
  options: {
    readonly script?: ScriptedProvider.Options["script"]
    readonly limits?: AccountLimits.Options
    readonly client?: TaskClient.Options
    readonly ledger?: Layer.Layer<TaskLedger.TaskLedger>
    readonly modelId?: string
  } = {}
) =>
  TaskClient.layer(options.client).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        ScriptedProvider.layer({ script: options.script, modelId: options.modelId, hints: { pollPlan: testPlan } }),
        options.ledger ?? TaskLedger.layerMemory,
        AccountLimits.layerMemory(options.limits ?? { requestsPerWindow: 1000, concurrentTasks: 1000 })
      )
    )
  )

/** Moves the TestClock in steps until the fiber is done, then returns its result. */
export const advanceUntilDone = <A, E>(
  fiber: Fiber.RuntimeFiber<A, E>,
  step: Duration.DurationInput = Duration.seconds(1),
  maxSteps = 100_000
): Effect.Effect<A, E> =>
  Effect.gen(function* () {
    for (let index = 0; index < maxSteps; index++) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return yield* done.value
      yield* TestClock.adjust(step)
    }
    return yield* Effect.dieMessage(`fiber still running after ${maxSteps} steps`)
  })

/** The largest number of times in any window of `windowMillis` (times sorted ascending). */
export const maxInAnyWindow = (times: ReadonlyArray<number>, windowMillis: number): number => {
  let best = 0
  let first = 0
  for (let last = 0; last < times.length; last++) {
    while (times[last]! - times[first]! >= windowMillis) first++
    best = Math.max(best, last - first + 1)
  }
  return best
}

/** Fails the test with the exit's cause when it is not a failure with the given tag. */
export const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string | undefined =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : undefined
