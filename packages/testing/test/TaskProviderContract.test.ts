// The provider contract, proven twice: against core's scripted provider (the reference for what
// the contract expects), and against the real apixo adapter talking over HTTP to the fake apixo
// server, which proves the fake speaks the protocol the adapter was written for.
import { FetchHttpClient } from "@effect/platform"
import * as EffectVitest from "@effect/vitest"
import { Apixo, ApixoModel } from "@reelkit/apixo"
import { TaskProvider, TaskStatus } from "@reelkit/core"
import { Duration, Effect, Exit, Layer, Schema } from "effect"
import * as FakeApixo from "../src/FakeApixo.js"
import * as ScriptedProvider from "../src/ScriptedProvider.js"
import * as TaskProviderContract from "../src/TaskProviderContract.js"

TaskProviderContract.suite(
  "ScriptedProvider",
  () => ScriptedProvider.layer(),
  { validInput: { prompt: "a lighthouse", duration: 4 }, invalidInputs: ["not an object", 42, null] },
  EffectVitest
)

const ContractInput = Schema.Struct({
  mode: Schema.Literal("text-to-video"),
  prompt: Schema.String.pipe(Schema.minLength(1)),
  duration: Schema.Int.pipe(Schema.between(1, 16))
})

const contractModel = ApixoModel.define({
  modelId: "contract-model",
  input: ContractInput,
  billableSeconds: (input) => input.duration,
  pollPlan: { firstPollAfter: Duration.seconds(5), interval: Duration.seconds(5), deadline: Duration.minutes(10) },
  outputContentType: "video/mp4"
})

const apixoOnFake = () =>
  Layer.unwrapScoped(
    Effect.map(
      FakeApixo.make({
        models: { "contract-model": { inputSchema: ContractInput } },
        timings: { processingAfter: "10 seconds", completeAfter: "30 seconds" }
      }),
      (fake) =>
        ApixoModel.layer(contractModel).pipe(
          Layer.provide(Apixo.layer({ apiKey: fake.apiKey, baseUrl: fake.url })),
          Layer.provide(FetchHttpClient.layer)
        )
    )
  )

TaskProviderContract.suite(
  "ApixoModel on FakeApixo",
  apixoOnFake,
  {
    validInput: { mode: "text-to-video", prompt: "a lighthouse", duration: 4 },
    invalidInputs: [
      { mode: "text-to-video", prompt: "", duration: 4 },
      { mode: "text-to-video", prompt: "x", duration: 17 },
      { mode: "sketch-to-video", prompt: "x", duration: 4 }
    ]
  },
  EffectVitest
)

EffectVitest.describe("TaskProviderContract catches broken providers", () => {
  const options: TaskProviderContract.Options = {
    validInput: { prompt: "x" },
    invalidInputs: ["not an object"],
    maxPolls: 5
  }
  const caseNamed = (prefix: string) =>
    TaskProviderContract.cases(options).find((testCase) => testCase.name.startsWith(prefix))!
  const broken = (override: (scripted: ScriptedProvider.Service) => Partial<TaskProvider.Service>) =>
    Layer.effect(
      TaskProvider.TaskProvider,
      Effect.map(ScriptedProvider.make(), (scripted) => ({ ...scripted.provider, ...override(scripted) }))
    )

  EffectVitest.it.scoped("a prepare that accepts anything fails the InvalidInput case", () =>
    Effect.gen(function* () {
      const layer = broken(() => ({ prepare: (input) => Effect.succeed({ wire: input }) }))
      const exit = yield* Effect.exit(TaskProviderContract.runCase(caseNamed("prepare rejects"), layer))
      EffectVitest.expect(Exit.isFailure(exit)).toBe(true)
    })
  )

  EffectVitest.it.scoped("a status that answers Pending for unknown ids fails the TaskNotFound case", () =>
    Effect.gen(function* () {
      const layer = broken(() => ({ status: () => Effect.succeed(new TaskStatus.Pending({})) }))
      const exit = yield* Effect.exit(TaskProviderContract.runCase(caseNamed("status of an unknown"), layer))
      EffectVitest.expect(Exit.isFailure(exit)).toBe(true)
    })
  )

  EffectVitest.it.scoped("a task that never finishes fails the success case after maxPolls", () =>
    Effect.gen(function* () {
      const layer = broken(() => ({ status: () => Effect.succeed(new TaskStatus.Processing({})) }))
      const exit = yield* Effect.exit(TaskProviderContract.runCase(caseNamed("a submitted task"), layer))
      EffectVitest.expect(Exit.isFailure(exit) && String(exit.cause)).toContain("Processing -> Processing")
    })
  )
})
