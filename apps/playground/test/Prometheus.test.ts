// A real Prometheus (Debian's package) scrapes `reelkit serve`'s /metrics, once with the access
// token in its scrape config and once without. Prometheus reaches serve through a forwarding tap
// in this test, which says when each scrape happened: the test waits for that, never for time.
import { describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { EventEmitter } from "node:events"
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { createServer, request as httpRequest, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import { formTokens, freePort, postForm, type Served, startServe } from "./serve.js"
import { tempHome } from "./utils.js"

const prometheusPath = process.env.PROMETHEUS_PATH ?? "/usr/bin/prometheus"
const hasPrometheus = existsSync(prometheusPath)
if (!hasPrometheus) {
  console.log(
    `Prometheus test skipped: no prometheus at ${prometheusPath} (apt-get install prometheus, or set PROMETHEUS_PATH).`
  )
}

const token = "a-metrics-token-of-at-least-32-bytes!"
let served: Served
let tap: Server
let prometheus: ChildProcess | undefined
let prometheusUrl: string
const scrapes = new EventEmitter()
const seen = { withToken: 0, withoutToken: 0 }

/** Resolves once `count` scrapes of a job have reached the tap. */
const scraped = (job: keyof typeof seen, count: number) =>
  new Promise<void>((resolve) => {
    const check = () => {
      if (seen[job] < count) return
      scrapes.off("scrape", check)
      resolve()
    }
    scrapes.on("scrape", check)
    check()
  })

beforeAll(async () => {
  if (!hasPrometheus) return
  served = await startServe(["--port", "0"], { REELKIT_HOME: tempHome(), REELKIT_SERVE_TOKEN: token })
  // One task, so core's submit counter has a sample to show.
  const submitted = await postForm(served, { mode: "text-to-video", prompt: "counted", ...(await formTokens(served)) })
  expect(submitted.status).toBe(303)

  const upstream = new URL(served.base)
  tap = createServer((incoming, outgoing) => {
    seen[incoming.headers.authorization === undefined ? "withoutToken" : "withToken"] += 1
    scrapes.emit("scrape")
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: incoming.url,
        method: incoming.method,
        headers: { ...incoming.headers, host: upstream.host }
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode!, answer.headers)
        answer.pipe(outgoing)
      }
    )
    forwarded.on("error", () => outgoing.destroy())
    incoming.pipe(forwarded)
  })
  await new Promise<void>((resolve) => tap.listen(0, "127.0.0.1", resolve))
  const target = `127.0.0.1:${(tap.address() as AddressInfo).port}`

  const dir = mkdtempSync(join(tmpdir(), "reelkit-prometheus-"))
  const config = join(dir, "prometheus.yml")
  // The token as Prometheus sends it: `authorization` in the scrape config (type Bearer by default).
  writeFileSync(
    config,
    `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: reelkit
    authorization:
      credentials: ${token}
    static_configs:
      - targets: ["${target}"]
  - job_name: reelkit-without-token
    static_configs:
      - targets: ["${target}"]
`
  )
  const port = await freePort()
  prometheusUrl = `http://127.0.0.1:${port}`
  const child = spawn(
    prometheusPath,
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ["ignore", "ignore", "pipe"] }
  )
  prometheus = child
  await new Promise<void>((resolve, reject) => {
    let log = ""
    child.stderr!.on("data", (chunk: Buffer) => {
      log += chunk.toString()
      if (log.includes("Server is ready to receive web requests")) resolve()
    })
    child.once("exit", (code) => reject(new Error(`prometheus exited with ${code}: ${log}`)))
  })
})

afterAll(async () => {
  if (prometheus !== undefined && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus!.once("exit", resolve))
    prometheus.kill("SIGKILL")
    await exited
  }
  await new Promise((resolve) => (tap === undefined ? resolve(undefined) : tap.close(resolve)))
  await served?.stop()
})

/** The answer of an instant query. */
interface Vector {
  readonly result: ReadonlyArray<{ readonly metric: Record<string, string>; readonly value: [number, string] }>
}

const api = async <A>(path: string): Promise<A> => {
  const response = await fetch(`${prometheusUrl}${path}`)
  expect(response.status).toBe(200)
  const body = (await response.json()) as { status: string; data: A }
  expect(body.status).toBe("success")
  return body.data
}

describe.skipIf(!hasPrometheus)("Prometheus scraping reelkit serve", () => {
  it("scrapes /metrics with the token (target up, core's counters queryable); without it the target is down (401)", async () => {
    // A scrape has been recorded once the next one of its job begins. Two more scrapes with the
    // token after the second without it: the recorded one then already counts the first 401.
    await scraped("withoutToken", 2)
    await scraped("withToken", seen.withToken + 2)

    const { activeTargets } = await api<{
      activeTargets: ReadonlyArray<{ labels: { job: string }; health: string; lastError: string }>
    }>("/api/v1/targets")
    const byJob = Object.fromEntries(activeTargets.map((target) => [target.labels.job, target]))
    expect(byJob.reelkit).toMatchObject({ health: "up", lastError: "" })
    expect(byJob["reelkit-without-token"]!.health).toBe("down")
    expect(byJob["reelkit-without-token"]!.lastError).toContain("401")

    const submits = await api<Vector>(
      `/api/v1/query?query=${encodeURIComponent('reelkit_submits_total{job="reelkit"}')}`
    )
    expect(submits.result).toHaveLength(1)
    expect(submits.result[0]!.metric).toMatchObject({ provider: "apixo", model: "vidu-q3" })
    expect(Number(submits.result[0]!.value[1])).toBeGreaterThanOrEqual(1)

    // serve counts its own answers: the scrapes without the token among its 401s.
    const refused = await api<Vector>(
      `/api/v1/query?query=${encodeURIComponent('reelkit_serve_responses_total{job="reelkit",status="401"}')}`
    )
    expect(Number(refused.result[0]?.value[1])).toBeGreaterThanOrEqual(1)

    const up = await api<Vector>("/api/v1/query?query=up")
    const upOf = Object.fromEntries(up.result.map((sample) => [sample.metric.job, sample.value[1]]))
    expect(upOf).toEqual({ reelkit: "1", "reelkit-without-token": "0" })
  })
})
