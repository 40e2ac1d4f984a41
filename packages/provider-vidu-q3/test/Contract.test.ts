// The provider contract, passed by Vidu Q3 on both transports: apixo on FakeApixo and the
// official Vidu API on FakeVidu, each over real HTTP with the real transport.
import { FetchHttpClient } from "@effect/platform"
import * as EffectVitest from "@effect/vitest"
import { FakeApixo, FakeVidu, TaskProviderContract } from "@reelkit/testing"
import { Effect, Layer } from "effect"
import * as ViduQ3 from "../src/ViduQ3.js"
import * as ViduQ3Input from "../src/ViduQ3Input.js"

const validInput = { mode: "text-to-video", prompt: "a lighthouse", duration: 4 }
const invalidInputs = [
  { mode: "text-to-video", prompt: "", duration: 4 },
  { mode: "text-to-video", prompt: "x", duration: 17 },
  { mode: "image-to-video", prompt: "x" },
  { mode: "sketch-to-video", prompt: "x" }
]
const badCallback = { request: { input: validInput, callbackUrl: "ftp://hooks.example/cb" }, path: "callbackUrl" }
const timings = { processingAfter: "10 seconds", completeAfter: "30 seconds" } as const

TaskProviderContract.suite(
  "Vidu Q3 on apixo (FakeApixo)",
  () =>
    Layer.unwrapScoped(
      Effect.map(FakeApixo.make({ models: { "vidu-q3": { inputSchema: ViduQ3Input.ViduQ3Input } }, timings }), (fake) =>
        ViduQ3.layer({ apiKey: fake.apiKey, baseUrl: fake.url }).pipe(Layer.provide(FetchHttpClient.layer))
      )
    ),
  {
    validInput,
    invalidInputs,
    invalidRequests: [
      badCallback,
      { request: { input: validInput, options: { provider: "two words" } }, path: "options.provider" }
    ],
    secret: FakeApixo.defaultApiKey
  },
  EffectVitest
)

TaskProviderContract.suite(
  "Vidu Q3 on the official Vidu API (FakeVidu)",
  () =>
    Layer.unwrapScoped(
      Effect.map(FakeVidu.make({ timings }), (fake) =>
        ViduQ3.layerVidu({ apiKey: fake.apiKey, baseUrl: fake.url }).pipe(Layer.provide(FetchHttpClient.layer))
      )
    ),
  {
    validInput,
    invalidInputs,
    invalidRequests: [
      badCallback,
      { request: { input: validInput, options: { provider: "auto" } }, path: "options.provider" },
      { request: { input: validInput, options: { off_peak: "tonight" } }, path: "options.off_peak" }
    ],
    secret: FakeVidu.defaultApiKey
  },
  EffectVitest
)
