import { ScriptedProvider } from "@reelkit/testing"
import { Context, Duration, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import type * as Scope from "effect/Scope"
import * as AccountLimits from "../src/AccountLimits.js"
import * as CallbackUrls from "../src/CallbackUrls.js"
import * as ResultStorage from "../src/ResultStorage.js"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskProvider from "../src/TaskProvider.js"
import * as TaskStatus from "../src/TaskStatus.js"

/** A valid input for the scripted provider (4 billable seconds). */
export const input = { mode: "text-to-video", prompt: "a lighthouse in a storm", duration: 4 }

/** A success with one output named `name`. */
export const video = (name: string) => ScriptedProvider.succeededWith(`https://results.example/${name}.mp4`)

/** A running status without progress. */
export const processing = new TaskStatus.Processing({})

/** Everything the scripted provider in context has seen. */
export const recording = Effect.flatMap(ScriptedProvider.ScriptedProvider, (scripted) => scripted.recording)

/** A poll plan short enough for tests: first poll after 10 s, then every 5 s, deadline 10 min. */
export const testPlan: TaskProvider.PollPlan = {
  firstPollAfter: Duration.seconds(10),
  interval: Duration.seconds(5),
  deadline: Duration.minutes(10)
}

/** Changes to the scripted provider (fault injection: a submit that hangs, a cancel endpoint). */
export type ProviderChange = (scripted: TaskProvider.Service) => TaskProvider.Service

/** What a test client is built from; every part has a default. */
export interface ClientParts {
  readonly script?: ScriptedProvider.Options["script"]
  readonly limits?: AccountLimits.Options
  readonly client?: TaskClient.Options
  readonly ledger?: Layer.Layer<TaskLedger.TaskLedger>
  readonly modelId?: string
  readonly provider?: ProviderChange
  readonly resultStorage?: Layer.Layer<ResultStorage.ResultStorage>
  readonly callbackUrls?: Layer.Layer<CallbackUrls.CallbackUrls>
}

/** The scripted provider's controls and the (possibly changed) provider built on it, as one layer. */
export const providerLayer = (parts: Pick<ClientParts, "script" | "modelId" | "provider"> = {}) =>
  Layer.effectContext(
    Effect.map(
      ScriptedProvider.make({ script: parts.script, modelId: parts.modelId, hints: { pollPlan: testPlan } }),
      (scripted) =>
        Context.make(ScriptedProvider.ScriptedProvider, scripted).pipe(
          Context.add(TaskProvider.TaskProvider, parts.provider?.(scripted.provider) ?? scripted.provider)
        )
    )
  )

/** Client + scripted provider + memory ledger + limits (+ no result storage, no callback URLs), as one layer. */
export const clientLayer = (parts: ClientParts = {}) =>
  TaskClient.layer(parts.client).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        providerLayer(parts),
        parts.ledger ?? TaskLedger.layerMemory,
        AccountLimits.layerMemory(parts.limits ?? { requestsPerWindow: 1000, concurrentTasks: 1000 }),
        parts.resultStorage ?? ResultStorage.layerNone,
        parts.callbackUrls ?? CallbackUrls.layerNone
      )
    )
  )

/**
 * One more client ("process") on services given explicitly: several of them on one ledger and one
 * provider are several processes sharing a database and an account.
 */
export const makeClient = (parts: {
  readonly ledger: TaskLedger.Service
  readonly provider: TaskProvider.Service
  readonly limits?: AccountLimits.Options | undefined
  readonly client?: TaskClient.Options | undefined
}): Effect.Effect<TaskClient.Service, never, Scope.Scope> =>
  TaskClient.make(parts.client).pipe(
    Effect.provide(
      Layer.mergeAll(
        Layer.succeed(TaskLedger.TaskLedger, parts.ledger),
        Layer.succeed(TaskProvider.TaskProvider, parts.provider),
        parts.limits === undefined ? AccountLimits.layerUnlimited : AccountLimits.layerMemory(parts.limits),
        ResultStorage.layerNone,
        CallbackUrls.layerNone
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

/** Forks `effect` and moves the TestClock until it is done; its exit, to assert on. */
export const runToExit = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  step: Duration.DurationInput = Duration.seconds(1)
): Effect.Effect<Exit.Exit<A, E>, never, R> =>
  Effect.flatMap(Effect.fork(effect), (fiber) => Effect.exit(advanceUntilDone(fiber, step)))

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

/** The tag of an exit's typed failure; `undefined` for a success, a defect or an interruption. */
export const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string | undefined =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : undefined

/** The typed failure of an exit, or `undefined`. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
