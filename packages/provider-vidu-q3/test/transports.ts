// The two transports of Vidu Q3 behind one interface, so one end-to-end file runs against each:
// each starts its fake on a real socket and builds the provider layer the application would use.
import type * as HttpClient from "@effect/platform/HttpClient"
import type { TaskProvider } from "@reelkit/core"
import { FakeApixo, FakeVidu } from "@reelkit/testing"
import { Effect, type Layer, type Redacted, type Scope } from "effect"
import * as ViduQ3 from "../src/ViduQ3.js"
import * as ViduQ3Input from "../src/ViduQ3Input.js"

/** What the tests read from either fake. */
export interface Fake {
  readonly url: string
  readonly apiKey: Redacted.Redacted<string>
  /** Submits received (refused or not). */
  readonly submits: () => number
  /** Tasks created (and billed). */
  readonly created: () => number
  /** Status requests received for a task. */
  readonly statusesOf: (taskId: string) => number
  readonly emptyBalance: () => void
  readonly addFault: (rule: {
    readonly match: { readonly route: "generate" | "status"; readonly nth?: number }
    readonly fault: FakeApixo.Fault
  }) => void
  readonly awaitSubmits: (count: number) => Effect.Effect<void>
}

/** Options both fakes understand. */
export interface FakeOptions {
  readonly apiKeys?: ReadonlyArray<string> | undefined
  readonly timings?: FakeApixo.Timings | undefined
  /** Fail every task with the transport's code for a content-policy refusal. */
  readonly failAll?: boolean | undefined
}

/** One transport under test. */
export interface Transport {
  readonly name: "apixo" | "vidu"
  /** The fail code each fake uses for a content-policy failure. */
  readonly failCode: string
  readonly start: (options: FakeOptions) => Effect.Effect<Fake, unknown, Scope.Scope>
  readonly layer: (
    fake: { readonly url: string },
    apiKey: Redacted.Redacted<string>
  ) => Layer.Layer<TaskProvider.TaskProvider, never, HttpClient.HttpClient>
}

const countWhere = <A>(items: ReadonlyArray<A>, predicate: (item: A) => boolean) => items.filter(predicate).length

/** The part both fakes share (same names, same meaning), read the same way. */
interface EitherFake {
  readonly url: string
  readonly apiKey: Redacted.Redacted<string>
  readonly requests: ReadonlyArray<{ readonly route: string; readonly taskId: string | undefined }>
  readonly tasks: ReadonlyArray<unknown>
  readonly setBalance: (amount: number) => void
  readonly addFault: (rule: {
    readonly match: { readonly route: "generate" | "status"; readonly nth?: number }
    readonly fault: FakeApixo.Fault
  }) => void
  readonly waitUntil: (predicate: () => boolean) => Effect.Effect<void>
}

const adapt = (fake: EitherFake): Fake => {
  const submits = () => countWhere(fake.requests, (request) => request.route === "generate")
  return {
    url: fake.url,
    apiKey: fake.apiKey,
    submits,
    created: () => fake.tasks.length,
    statusesOf: (taskId) =>
      countWhere(fake.requests, (request) => request.route === "status" && request.taskId === taskId),
    emptyBalance: () => fake.setBalance(0),
    addFault: (rule) => fake.addFault(rule),
    awaitSubmits: (count) => fake.waitUntil(() => submits() >= count)
  }
}

/** apixo: `ViduQ3.layer` on `FakeApixo`. */
export const apixo: Transport = {
  name: "apixo",
  failCode: "CONTENT_VIOLATION",
  start: (options) =>
    Effect.map(
      FakeApixo.make({
        apiKeys: options.apiKeys,
        models: { "vidu-q3": { inputSchema: ViduQ3Input.ViduQ3Input } },
        timings: options.timings,
        ...(options.failAll === true
          ? { outcome: FakeApixo.failure("CONTENT_VIOLATION", "Content does not meet safety guidelines") }
          : {})
      }),
      adapt
    ),
  layer: (fake, apiKey) => ViduQ3.layer({ apiKey, baseUrl: fake.url })
}

/** The official Vidu API: `ViduQ3.layerVidu` on `FakeVidu`. */
export const vidu: Transport = {
  name: "vidu",
  failCode: "AuditSubmitIllegal",
  start: (options) =>
    Effect.map(
      FakeVidu.make({
        apiKeys: options.apiKeys,
        timings: options.timings,
        ...(options.failAll === true ? { outcome: FakeApixo.failure("AuditSubmitIllegal") } : {})
      }),
      adapt
    ),
  layer: (fake, apiKey) => ViduQ3.layerVidu({ apiKey, baseUrl: fake.url })
}

/** Both transports, for `for (const transport of transports) describe(...)`. */
export const transports: ReadonlyArray<Transport> = [apixo, vidu]
