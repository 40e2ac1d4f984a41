// Range resume over real sockets: a node:http result host on 127.0.0.1 that drops the connection
// half-way through its first answer (the bytes go out, then the socket is destroyed), and counts
// what every request asked for and what it was sent. Both of platform-node's clients.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schedule } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as ArtifactStore from "../src/ArtifactStore.js"
import * as ResultStorage from "../src/ResultStorage.js"
import * as TaskLedger from "../src/TaskLedger.js"

interface Version {
  readonly body: Buffer
  readonly etag: string
}

interface Served {
  readonly range: string | undefined
  readonly ifRange: string | undefined
  readonly status: number
  /** Body bytes the host handed to the socket for this request. */
  readonly bytes: number
}

interface HostOptions {
  /** The version served by the n-th request (the last one for every later request). */
  readonly versions: ReadonlyArray<Version>
  /** Whether the host announces and serves byte ranges. */
  readonly ranges: boolean
}

/** A result host whose first answer stops half-way and whose connection is then destroyed. */
const startHost = (options: HostOptions) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const served: Array<Served> = []
      const answer = (request: IncomingMessage, response: ServerResponse) => {
        const index = served.length
        const version = options.versions[Math.min(index, options.versions.length - 1)]!
        const total = version.body.byteLength
        const headers: Record<string, string> = { "content-type": "video/mp4", etag: version.etag }
        if (options.ranges) headers["accept-ranges"] = "bytes"
        const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? "")
        // If-Range: the rest only of the version the client started with, else the whole file.
        const partial = options.ranges && range !== null && request.headers["if-range"] === version.etag
        const start = partial ? Number(range[1]) : 0
        const status = partial ? 206 : 200
        if (partial) headers["content-range"] = `bytes ${start}-${total - 1}/${total}`
        headers["content-length"] = String(total - start)
        const drop = index === 0
        const content = version.body.subarray(start, drop ? total / 2 : total)
        served.push({
          range: request.headers.range,
          ifRange: request.headers["if-range"] as string | undefined,
          status,
          bytes: content.byteLength
        })
        response.writeHead(status, headers)
        if (drop) response.write(content, () => response.socket?.destroy())
        else response.end(content)
      }
      const server = createServer(answer)
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const { port } = server.address() as AddressInfo
      return { server, served, url: `http://127.0.0.1:${port}/results/0.mp4?sig=secret` }
    }),
    ({ server }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          })
      )
  )

const version = (tag: string): Version => ({ body: randomBytes(3 * 1024 * 1024), etag: `"${tag}"` })
const sha256 = (body: Buffer) => createHash("sha256").update(body).digest("hex")

const succeededTask = (url: string) =>
  new TaskLedger.TaskRecord({
    ...TaskLedger.newRecord({ taskKey: "resumed", providerId: "p", modelId: "m", input: {} }, 0),
    state: "succeeded",
    resultUrls: [url]
  })

/** Stores the task's one output from `host` (a failed download is retried once, at once). */
const storeFrom = (url: string) =>
  ResultStorage.storeResults(succeededTask(url), { retry: Schedule.recurs(1) }).pipe(Effect.map((stored) => stored[0]!))

const clients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["node:http", NodeHttpClient.layer],
  ["undici", NodeHttpClient.layerUndici]
]

describe.each(clients)("ResultStorage range resume (%s client)", (_name, clientLayer) => {
  const downloads = Layer.merge(ArtifactStore.layerMemory, clientLayer)

  it.scoped("asks only for the rest after the connection drops half-way, and stores the right sha256", () =>
    Effect.gen(function* () {
      const original = version("v1")
      const host = yield* startHost({ versions: [original], ranges: true })
      const stored = yield* storeFrom(host.url)
      const half = original.body.byteLength / 2
      expect(host.served).toEqual([
        { range: undefined, ifRange: undefined, status: 200, bytes: half },
        { range: `bytes=${half}-`, ifRange: '"v1"', status: 206, bytes: half }
      ])
      // No byte was served twice.
      expect(host.served.reduce((sum, request) => sum + request.bytes, 0)).toBe(original.body.byteLength)
      expect(stored.bytes).toBe(original.body.byteLength)
      expect(stored.sha256).toBe(sha256(original.body))
    }).pipe(Effect.provide(downloads))
  )

  it.scoped("starts over when the file changed on its host (ETag) instead of splicing two versions", () =>
    Effect.gen(function* () {
      const [first, second] = [version("v1"), version("v2")]
      const host = yield* startHost({ versions: [first, second], ranges: true })
      const stored = yield* storeFrom(host.url)
      const half = first.body.byteLength / 2
      expect(host.served.map(({ range, ifRange, status }) => ({ range, ifRange, status }))).toEqual([
        { range: undefined, ifRange: undefined, status: 200 },
        // If-Range no longer matches: the host answers with the whole new file, which is refused...
        { range: `bytes=${half}-`, ifRange: '"v1"', status: 200 },
        // ...and the download starts over.
        { range: undefined, ifRange: undefined, status: 200 }
      ])
      expect(stored.sha256).toBe(sha256(second.body))
      expect(stored.bytes).toBe(second.body.byteLength)
    }).pipe(Effect.provide(downloads))
  )

  it.scoped("starts over when the host does not serve ranges", () =>
    Effect.gen(function* () {
      const original = version("v1")
      const host = yield* startHost({ versions: [original], ranges: false })
      const stored = yield* storeFrom(host.url)
      expect(host.served.map(({ range, status }) => ({ range, status }))).toEqual([
        { range: undefined, status: 200 },
        { range: undefined, status: 200 }
      ])
      expect(stored.sha256).toBe(sha256(original.body))
    }).pipe(Effect.provide(downloads))
  )
})
