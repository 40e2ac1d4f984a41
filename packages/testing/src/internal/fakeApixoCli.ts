/**
 * The `reelkit-fake-apixo` command: reads flags into `FakeApixo.Options`, starts the fake on the
 * live clock, prints where it listens, and stops it on SIGINT or SIGTERM.
 */
import { parseArgs } from "node:util"
import * as FakeApixo from "../FakeApixo.js"

/** The command's help text. */
export const usage = `Usage: reelkit-fake-apixo [options]

Runs a fake apixo.ai server (generateTask, statusTask, result downloads, callbacks) on 127.0.0.1.

  --port N               port to listen on (default 0: any free port)
  --host HOST            interface to listen on (default 127.0.0.1)
  --key KEY              accepted Bearer key; repeat for several (default test-key)
  --balance SECONDS      seconds of generation the account can pay for (default unlimited)
  --rpm N                requests per key per minute (default 60)
  --concurrency N        unfinished tasks per key (default 10)
  --retry-after V        Retry-After on 429: auto, none, or seconds (default auto)
  --processing-after S   seconds from creation to processing (default 1)
  --complete-after S     seconds from creation to success or failure (default 5)
  --retention S          seconds result URLs stay downloadable (default 15 days)
  --fail-prompt TEXT     tasks whose prompt contains TEXT fail with CONTENT_VIOLATION
  --help                 show this text`

/** What the command line asked for. */
export type Parsed = { readonly _tag: "Help" } | { readonly _tag: "Run"; readonly options: FakeApixo.Options }

const number = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const parsed = Number(value)
  if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`--${name} must be a non-negative number, got "${value}"`)
  return parsed
}

/** Parses the command line (without `node` and the script). Throws with a readable message. */
export const parse = (argv: ReadonlyArray<string>): Parsed => {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      key: { type: "string", multiple: true },
      balance: { type: "string" },
      rpm: { type: "string" },
      concurrency: { type: "string" },
      "retry-after": { type: "string" },
      "processing-after": { type: "string" },
      "complete-after": { type: "string" },
      retention: { type: "string" },
      "fail-prompt": { type: "string" },
      help: { type: "boolean" }
    }
  })
  if (values.help === true) return { _tag: "Help" }
  const retryAfterFlag = values["retry-after"]
  const retryAfter =
    retryAfterFlag === undefined || retryAfterFlag === "auto" || retryAfterFlag === "none"
      ? retryAfterFlag
      : number("retry-after", retryAfterFlag)
  const seconds = (name: string, value: string | undefined) => {
    const parsed = number(name, value)
    return parsed === undefined ? undefined : parsed * 1000
  }
  const failPrompt = values["fail-prompt"]
  return {
    _tag: "Run",
    options: {
      port: number("port", values.port),
      host: values.host,
      apiKeys: values.key,
      balanceSeconds: number("balance", values.balance),
      requestsPerMinute: number("rpm", values.rpm),
      concurrentTasks: number("concurrency", values.concurrency),
      retryAfter,
      timings: {
        processingAfter: seconds("processing-after", values["processing-after"]),
        completeAfter: seconds("complete-after", values["complete-after"])
      },
      resultRetention: seconds("retention", values.retention),
      outcome:
        failPrompt === undefined
          ? undefined
          : (task) =>
              String(task.input.prompt ?? "").includes(failPrompt)
                ? FakeApixo.failure("CONTENT_VIOLATION", "Content does not meet safety guidelines")
                : FakeApixo.success()
    }
  }
}

/** A provider package whose models the command checks inputs against when it is installed. */
export interface KnownProvider {
  readonly specifier: string
  /** The models of the package's module namespace. */
  readonly models: (module: Readonly<Record<string, unknown>>) => Readonly<Record<string, FakeApixo.ModelOptions>>
}

/**
 * The providers this command knows. The package imports none of them (they depend on it for their
 * tests); each is loaded only if it is installed where this command can import it.
 */
export const knownProviders: ReadonlyArray<KnownProvider> = [
  {
    specifier: "@reelkit/provider-vidu-q3",
    models: (module) => {
      const { ViduQ3, ViduQ3Input } = module as {
        readonly ViduQ3: { readonly modelId: string }
        readonly ViduQ3Input: { readonly ViduQ3Input: FakeApixo.ModelOptions["inputSchema"] }
      }
      return { [ViduQ3.modelId]: { inputSchema: ViduQ3Input.ViduQ3Input } }
    }
  }
]

/** The models of every known provider that `load` can import; a missing package is left out. */
export const installedModels = async (
  load: (specifier: string) => Promise<unknown> = (specifier) => import(specifier),
  providers: ReadonlyArray<KnownProvider> = knownProviders
): Promise<Readonly<Record<string, FakeApixo.ModelOptions>>> => {
  const found: Record<string, FakeApixo.ModelOptions> = {}
  for (const provider of providers) {
    try {
      const module = (await load(provider.specifier)) as Readonly<Record<string, unknown>>
      // A CommonJS build imported from ESM may arrive as `default` only.
      const exports = Object.keys(module).some((name) => name !== "default") ? module : module.default
      Object.assign(found, provider.models(exports as Readonly<Record<string, unknown>>))
    } catch {
      // Not installed here: its inputs are not checked.
    }
  }
  return found
}

/** Runs the command; resolves with the exit code once the fake stopped. */
export const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  let parsed: Parsed
  try {
    parsed = parse(argv)
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${usage}\n`)
    return 2
  }
  if (parsed._tag === "Help") {
    process.stdout.write(`${usage}\n`)
    return 0
  }
  const models = await installedModels()
  const modelIds = Object.keys(models)
  // With a provider installed, its models are the ones served (others get 404), each input checked.
  const fake = await FakeApixo.start({ ...parsed.options, models, strictModels: modelIds.length > 0 })
  const key = parsed.options.apiKeys?.[0] ?? FakeApixo.defaultApiKey
  const checked =
    modelIds.length > 0
      ? `checking inputs of ${modelIds.join(", ")}`
      : "no provider package installed here, so inputs are not checked"
  // The key is printed on purpose: it is the fake's own test key, needed to call it.
  process.stdout.write(`reelkit-fake-apixo listening on ${fake.url} (API key: ${key}; ${checked})\n`)
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve)
    process.once("SIGTERM", resolve)
  })
  await fake.close()
  return 0
}
