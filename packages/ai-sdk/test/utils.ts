// Test harness: FakeApixo on a real socket whose clock the test owns, providers wired to it, and
// the SDK options that make its loops follow that clock instead of waiting for real time.
import { FakeApixo } from "@reelkit/testing"
import { ViduQ3Input } from "@reelkit/provider-vidu-q3"
import { Duration, Effect, Runtime, TestClock } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { type ApixoProvider, type ApixoProviderSettings, createApixo } from "../src/index.js"

/** The bytes every fake result serves. */
export const sampleVideo = new Uint8Array(readFileSync(FakeApixo.sampleVideoPath()))

/** What a test gets. */
export interface Harness {
  readonly fake: FakeApixo.Service
  /** A new provider instance on the fake (each one its own runtime, ledger and budget: "another process"). */
  readonly provider: (settings?: ApixoProviderSettings) => ApixoProvider
  /** The SDK's `poll` option: each interval moves the fake's clock by that much, at once. */
  readonly poll: { readonly intervalMs: number; readonly delay: (delayInMs: number) => Promise<void> }
  /** Moves the fake's clock. */
  readonly advance: (millis: number) => Promise<void>
  /** Runs an effect on the test's runtime (e.g. the fake's `awaitCallbacks`). */
  readonly run: <A>(effect: Effect.Effect<A>) => Promise<A>
}

/**
 * The SDK's `poll` option for webhook calls: the SDK races the webhook against `delay(timeoutMs)`,
 * so this delay never ends by itself (a lost webhook fails the test by its timeout, not by a race).
 */
export const waitForWebhook = { delay: () => new Promise<void>(() => {}) }

/**
 * The SDK's `download` option for these tests. The SDK's default download refuses loopback
 * addresses (it guards against requests into private networks), and the fake serves on 127.0.0.1.
 */
export const download = async ({ url }: { url: URL }) => {
  const response = await fetch(url)
  if (!response.ok) throw new Error(`download of ${url} answered ${response.status}`)
  return {
    data: new Uint8Array(await response.arrayBuffer()),
    mediaType: response.headers.get("content-type") ?? undefined
  }
}

/** Runs `body` against a fake that knows Vidu Q3's schema, closing every provider it made afterwards. */
export const withFake = (options: FakeApixo.Options, body: (harness: Harness) => Promise<void>) =>
  Effect.gen(function* () {
    const fake = yield* FakeApixo.make({
      models: { "vidu-q3": { inputSchema: ViduQ3Input.ViduQ3Input } },
      ...options
    })
    const runtime = yield* Effect.runtime<never>()
    const run = <A>(effect: Effect.Effect<A>) => Runtime.runPromise(runtime)(effect)
    const advance = (millis: number) => run(TestClock.adjust(Duration.millis(millis)))
    const providers: Array<ApixoProvider> = []
    const provider = (settings: ApixoProviderSettings = {}) => {
      const created = createApixo({ apiKey: FakeApixo.defaultApiKey, baseURL: fake.url, ...settings })
      providers.push(created)
      return created
    }
    yield* Effect.promise(() =>
      body({ fake, provider, poll: { intervalMs: 5_000, delay: advance }, advance, run }).finally(() =>
        Promise.all(providers.map((created) => created.close()))
      )
    )
  })

/** A created task as the body apixo received: `request_type`, `callback_url`, `provider`, `input`. */
export const bodyOf = (task: FakeApixo.TaskRecord) => ({
  request_type: task.requestType,
  ...(task.callbackUrl === undefined ? {} : { callback_url: task.callbackUrl }),
  ...(task.provider === undefined ? {} : { provider: task.provider }),
  input: task.input
})

/** Requests of one route. */
export const requestsTo = (fake: FakeApixo.Service, route: FakeApixo.RequestRoute) =>
  fake.requests.filter((request) => request.route === route)

const fixturesDir = fileURLToPath(new URL("./fixtures/", import.meta.url))

/**
 * Runs a fixture (`test/fixtures/<name>.ts`) in a child Node process, resolving when it exits
 * with its stdout lines; a non-zero exit rejects with its stderr.
 */
export const runFixture = (name: string, args: ReadonlyArray<string>): Promise<ReadonlyArray<string>> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", `${fixturesDir}${name}.ts`, ...args], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...process.env, TSX_TSCONFIG_PATH: `${fixturesDir}tsconfig.json` },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.on("error", reject)
    child.on("exit", (code) =>
      code === 0
        ? resolve(stdout.split("\n").filter((line) => line !== ""))
        : reject(new Error(`${name} exited ${code}: ${stderr}`))
    )
  })
