// The provider contract, proven twice: against core's scripted provider (the reference for what
// the contract expects), and against the real apixo adapter talking over HTTP to the fake apixo
// server, which proves the fake speaks the protocol the adapter was written for.
import { FetchHttpClient } from "@effect/platform"
import * as EffectVitest from "@effect/vitest"
import { Apixo, ApixoModel } from "@reelkit/apixo"
import { TaskError, TaskProvider, TaskStatus } from "@reelkit/core"
import { Duration, Effect, Exit, Layer, Schema } from "effect"
import * as FakeApixo from "../src/FakeApixo.js"
import * as ScriptedProvider from "../src/ScriptedProvider.js"
import * as TaskProviderContract from "../src/TaskProviderContract.js"

TaskProviderContract.suite(
  "ScriptedProvider",
  () => ScriptedProvider.layer({ secrets: ["sk-scripted-secret"] }),
  {
    validInput: { prompt: "a lighthouse", duration: 4 },
    invalidInputs: ["not an object", 42, null],
    invalidRequests: [{ request: { input: { prompt: "x" }, callbackUrl: "not a url" }, path: "callbackUrl" }],
    secret: "sk-scripted-secret"
  },
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

const validContractInput = { mode: "text-to-video", prompt: "a lighthouse", duration: 4 }

TaskProviderContract.suite(
  "ApixoModel on FakeApixo",
  apixoOnFake,
  {
    validInput: validContractInput,
    invalidInputs: [
      { mode: "text-to-video", prompt: "", duration: 4 },
      { mode: "text-to-video", prompt: "x", duration: 17 },
      { mode: "sketch-to-video", prompt: "x", duration: 4 }
    ],
    invalidRequests: [
      { request: { input: validContractInput, callbackUrl: "ftp://hooks.example/cb" }, path: "callbackUrl" },
      { request: { input: validContractInput, options: { provider: "two words" } }, path: "options.provider" },
      { request: { input: validContractInput, options: { priority: "high" } }, path: "options.priority" }
    ],
    secret: FakeApixo.defaultApiKey
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
      const layer = broken(() => ({
        prepare: (request) => Effect.succeed({ input: request.input, wire: ScriptedProvider.wireRequest(request) })
      }))
      const exit = yield* Effect.exit(
        TaskProviderContract.runCase(caseNamed("prepare rejects each invalid input"), layer)
      )
      EffectVitest.expect(Exit.isFailure(exit)).toBe(true)
    })
  )

  EffectVitest.it.scoped("a gate that names the wrong field fails the start-request case", () =>
    Effect.gen(function* () {
      const layer = broken(() => ({
        prepare: () => Effect.fail(new TaskError.InvalidInput({ path: "input", rule: "is wrong" }))
      }))
      const withRequests: TaskProviderContract.Options = {
        ...options,
        invalidRequests: [{ request: { input: { prompt: "x" }, callbackUrl: "ftp://x" }, path: "callbackUrl" }]
      }
      const testCase = TaskProviderContract.cases(withRequests).find((each) => each.name.includes("start request"))!
      const exit = yield* Effect.exit(TaskProviderContract.runCase(testCase, layer))
      EffectVitest.expect(Exit.isFailure(exit) && String(exit.cause)).toContain("expected callbackUrl")
    })
  )

  EffectVitest.it.scoped("a wire request that changes from call to call, or does not survive storage, fails", () =>
    Effect.gen(function* () {
      let calls = 0
      const drifting = broken(() => ({
        prepare: (request) =>
          Effect.succeed({
            input: request.input,
            wire: ScriptedProvider.wireRequest({ ...request, options: { nonce: ++calls } })
          })
      }))
      const unstorable = broken(() => ({
        prepare: (request) =>
          Effect.succeed({
            input: request.input,
            wire: ScriptedProvider.wireRequest({ ...request, options: { at: new Date(0) } })
          })
      }))
      const testCase = caseNamed("prepare turns")
      const driftExit = yield* Effect.exit(TaskProviderContract.runCase(testCase, drifting))
      EffectVitest.expect(Exit.isFailure(driftExit) && String(driftExit.cause)).toContain("deterministic")
      const storeExit = yield* Effect.exit(TaskProviderContract.runCase(testCase, unstorable))
      EffectVitest.expect(Exit.isFailure(storeExit) && String(storeExit.cause)).toContain("must be JSON")
    })
  )

  EffectVitest.it.scoped("a redact that keeps the secret fails the redact case", () =>
    Effect.gen(function* () {
      const layer = broken(() => ({ redact: (text: string) => text.replace("sk-", "") }))
      const testCase = TaskProviderContract.cases({ ...options, secret: "sk-kept-secret" }).find((each) =>
        each.name.startsWith("redact")
      )!
      const exit = yield* Effect.exit(TaskProviderContract.runCase(testCase, layer))
      EffectVitest.expect(Exit.isFailure(exit) && String(exit.cause)).toContain("redact left the secret in")
      EffectVitest.expect(String(Exit.isFailure(exit) && exit.cause)).not.toContain("kept-secret")
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
