// Shared helpers of the cluster tests: runner processes on loopback, their stdout as signals, and a
// PostgreSQL database of the test run's own.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { RunnerConfig } from "./fixtures/runner.js"

const testDir = dirname(fileURLToPath(import.meta.url))
const fixturesDir = join(testDir, "fixtures")

/** A runner process and the lines it printed. */
export interface Runner {
  readonly child: ChildProcess
  readonly lines: Array<string>
  /** Resolves with the first line (already printed or later) that matches. */
  readonly waitFor: (match: (line: string) => boolean) => Promise<string>
  /** Resolves once `count` lines match. */
  readonly waitForCount: (match: (line: string) => boolean, count: number) => Promise<void>
  readonly exited: Promise<number | null>
  readonly stderr: () => string
  readonly kill: () => Promise<void>
}

/** Starts `test/fixtures/runner.ts` with this configuration. */
export const startRunner = (config: RunnerConfig, nodeArgs: ReadonlyArray<string> = []): Runner => {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", join(fixturesDir, "runner.ts")], {
    // `--import tsx` resolves from the working directory: the package's own, where tsx is a dependency.
    cwd: join(fixturesDir, "..", ".."),
    env: {
      ...process.env,
      TSX_TSCONFIG_PATH: join(fixturesDir, "tsconfig.json"),
      RUNNER_CONFIG: JSON.stringify(config)
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const lines: Array<string> = []
  const waiters = new Set<() => void>()
  let buffer = ""
  let stderr = ""
  child.stdout!.on("data", (data: Buffer) => {
    buffer += data.toString("utf8")
    const parts = buffer.split("\n")
    buffer = parts.pop()!
    lines.push(...parts)
    for (const waiter of [...waiters]) waiter()
  })
  child.stderr!.on("data", (data: Buffer) => {
    stderr += data.toString("utf8")
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const waitForCount = (match: (line: string) => boolean, count: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (lines.filter(match).length >= count) {
          waiters.delete(check)
          resolve()
        }
      }
      waiters.add(check)
      check()
      void exited.then((code) => {
        if (waiters.has(check)) {
          waiters.delete(check)
          reject(
            new Error(
              `runner exited (${code}) before the signal; stdout:\n${lines.slice(-30).join("\n")}\nstderr:\n${stderr.slice(-3000)}`
            )
          )
        }
      })
    })
  const waitFor = (match: (line: string) => boolean) => waitForCount(match, 1).then(() => lines.find(match)!)
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL")
      await exited
    }
  }
  return { child, lines, waitFor, waitForCount, exited, stderr: () => stderr, kill }
}

/** A free TCP port on loopback. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** A fresh temporary directory. */
export const tempDir = (name: string): string => mkdtempSync(join(tmpdir(), `reelkit-cluster-${name}-`))

const pgHost = process.env.REELKIT_TEST_PG_HOST ?? "127.0.0.1"
const pgPort = process.env.REELKIT_TEST_PG_PORT ?? "5432"
const psql = (sql: string) =>
  execFileSync(
    "psql",
    ["-h", pgHost, "-p", pgPort, "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c", sql],
    {
      stdio: ["ignore", "ignore", "inherit"]
    }
  )

/** Creates a database of this run's own (one cluster per database: advisory-lock keys ignore table prefixes). */
export const createDatabase = (): { readonly url: string; readonly drop: () => void } => {
  const name = `reelkit_cluster_${randomBytes(6).toString("hex")}`
  psql(`CREATE DATABASE ${name}`)
  return {
    url: `postgres://postgres@${pgHost}:${pgPort}/${name}`,
    drop: () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  }
}

/** A callback secret of the test run (never printed). */
export const testSecret = (): string => randomBytes(32).toString("hex")

/**
 * A callback relay on loopback: the fake posts callbacks here, and they are held until `release()`
 * (then forwarded to `target` and answered with its status), so a test decides when callbacks
 * arrive instead of racing the fake's retry timer.
 */
export const startCallbackRelay = async (target: string) => {
  const { createServer: createHttpServer } = await import("node:http")
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let held = 0
  const server = createHttpServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      held++
      void released
        .then(() =>
          fetch(`${target}${request.url}`, {
            method: request.method ?? "POST",
            headers: { "content-type": request.headers["content-type"] ?? "application/json" },
            body: Buffer.concat(chunks)
          })
        )
        .then(
          async (answer) => {
            response.writeHead(answer.status, { "content-type": "application/json" })
            response.end(await answer.text())
          },
          () => {
            response.writeHead(502)
            response.end()
          }
        )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    release,
    held: () => held,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** A socket runner's configuration on a fresh port, with the tests' defaults (fast failover, 300 ms polls). */
export const socketRunnerConfig = async (
  fields: Pick<RunnerConfig, "pgUrl" | "fakeUrl" | "storeRoot" | "requestsPerWindow" | "concurrentTasks"> &
    Partial<RunnerConfig>
): Promise<RunnerConfig> => ({
  mode: "socket",
  runnerPort: await freePort(),
  apiKey: "test-key",
  pollIntervalMillis: 300,
  submitTimeoutMillis: 5_000,
  submitLeaseMillis: 2_000,
  sharding: "fast",
  ...fields
})
