/**
 * `pnpm --filter @reelkit/core bench:callbacks`: callback-handler throughput and latency under
 * load from autocannon (a separate process, on loopback), beside a bare node:http handler that
 * reads the body and answers 200, and beside Effect's own HttpServer doing just that, in the same run;
 * then the router's rejection paths (a forged token, a body that is not JSON). Each server runs in its own child process so
 * the load generator and the two servers never share an event loop.
 * Figures only; nothing is asserted.
 */
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const require = createRequire(import.meta.url)
const autocannonBin = require.resolve("autocannon/autocannon.js")

interface Started {
  readonly url: string
  readonly body: string
  readonly stop: () => void
}

/** Starts a server script in a child process; it prints one JSON line: { url, body }. */
const startServer = (script: string, args: ReadonlyArray<string> = []) =>
  new Promise<Started>((resolve, reject) => {
    const child = spawn(process.execPath, [...args, fileURLToPath(new URL(script, import.meta.url))], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    child.once("error", reject)
    let buffered = ""
    child.stdout.on("data", (data: Buffer) => {
      buffered += String(data)
      const line = buffered.split("\n")[0]
      if (buffered.includes("\n") && line !== undefined) {
        const { url, body } = JSON.parse(line) as { url: string; body: string }
        resolve({ url, body, stop: () => child.kill("SIGTERM") })
      }
    })
  })

interface Load {
  readonly requestsPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly non2xx: number
  readonly errors: number
}

const load = (target: Started, duration: number) =>
  new Promise<Load>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        autocannonBin,
        "--json",
        "-c",
        String(connections),
        "-d",
        String(duration),
        "-m",
        "POST",
        "-H",
        "content-type=application/json",
        "-b",
        target.body,
        target.url
      ],
      { stdio: ["ignore", "pipe", "ignore"] }
    )
    let output = ""
    child.stdout.on("data", (data: Buffer) => {
      output += String(data)
    })
    child.once("error", reject)
    child.once("exit", () => {
      const result = JSON.parse(output) as {
        requests: { average: number }
        latency: { p50: number; p99: number }
        non2xx: number
        errors: number
      }
      resolve({
        requestsPerSecond: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        non2xx: result.non2xx,
        errors: result.errors
      })
    })
  })

const measure = async (
  name: string,
  script: string,
  args: ReadonlyArray<string> = [],
  vary: (target: Started) => Started = (target) => target
) => {
  const server = vary(await startServer(script, args))
  try {
    await load(server, 2) // warm-up
    const result = await load(server, seconds)
    console.log(
      `  ${name.padEnd(32)} ${result.requestsPerSecond.toFixed(0).padStart(7)} req/s   p50 ${String(result.p50).padStart(3)} ms   p99 ${String(result.p99).padStart(3)} ms   non-2xx ${result.non2xx}, errors ${result.errors}`
    )
    return result
  } finally {
    server.stop()
  }
}

const main = async () => {
  console.log(
    `callback handler under autocannon (${connections} connections, ${seconds} s, loopback, node ${process.version})`
  )
  const reelkit = await measure("reelkit Callbacks router", "./callbackServer.ts", ["--import", "tsx"])
  const bare = await measure("bare node:http handler", "./bareServer.mjs")
  const platform = await measure("Effect HttpServer, body read only", "./effectServer.ts", ["--import", "tsx"])
  // The rejection paths, on the same router: a token we never made (401), a body that is not JSON (400).
  const forged = await measure("reelkit, forged token (401)", "./callbackServer.ts", ["--import", "tsx"], (target) => ({
    ...target,
    url: target.url.replace(/[^/]+$/, "A".repeat(43))
  }))
  const garbled = await measure(
    "reelkit, body not JSON (400)",
    "./callbackServer.ts",
    ["--import", "tsx"],
    (target) => ({
      ...target,
      body: "{not json"
    })
  )
  console.log(
    `  reelkit / bare: ${(reelkit.requestsPerSecond / bare.requestsPerSecond).toFixed(2)}x throughput, p99 ${reelkit.p99} ms vs ${bare.p99} ms`
  )
  console.log(
    `  rejections / Effect HttpServer alone: forged ${(forged.requestsPerSecond / platform.requestsPerSecond).toFixed(2)}x, not JSON ${(garbled.requestsPerSecond / platform.requestsPerSecond).toFixed(2)}x`
  )
  console.log(
    `  reelkit / Effect HttpServer alone: ${(reelkit.requestsPerSecond / platform.requestsPerSecond).toFixed(2)}x throughput`
  )
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
