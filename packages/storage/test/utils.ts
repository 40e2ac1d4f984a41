// Shared helpers: child processes running fixtures through tsx, and finding (or starting) a
// PostgreSQL server on loopback for the PgLedger tests.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const fixturesDir = join(packageDir, "test/fixtures")

/** Starts `test/fixtures/<name>.ts` in a child Node process, with workspace packages resolved to sources. */
export const spawnFixture = (name: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  spawn(process.execPath, ["--import", "tsx", join(fixturesDir, `${name}.ts`), ...args], {
    cwd: packageDir,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(fixturesDir, "tsconfig.json"), ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })

/** Collects a child's output lines; `waitFor` resolves when a line matches. */
export const lines = (child: ChildProcess) => {
  const seen: Array<string> = []
  let stderr = ""
  const waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = []
  let buffer = ""
  child.stdout!.on("data", (data: Buffer) => {
    buffer += data.toString("utf8")
    let newline = buffer.indexOf("\n")
    while (newline >= 0) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      seen.push(line)
      for (const waiter of [...waiters]) {
        if (waiter.match(line)) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve(line)
        }
      }
      newline = buffer.indexOf("\n")
    }
  })
  child.stderr!.on("data", (data: Buffer) => {
    stderr += data.toString("utf8")
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return {
    seen,
    stderr: () => stderr,
    exited,
    waitFor: (match: (line: string) => boolean) => {
      const found = seen.find(match)
      if (found !== undefined) return Promise.resolve(found)
      return Promise.race([
        new Promise<string>((resolve) => waiters.push({ match, resolve })),
        exited.then((code): string => {
          throw new Error(`child exited with ${code} before the expected line; stderr:\n${stderr}`)
        })
      ])
    }
  }
}

/** Where a PostgreSQL server answers, and how to stop it if this run started it. */
export interface Postgres {
  readonly host: string
  readonly port: number
  readonly stop: () => void
}

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    socket.setTimeout(1000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
  })

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const findBinary = (name: string): string | undefined => {
  const candidates = (process.env.PATH ?? "").split(":").map((dir) => join(dir, name))
  if (existsSync("/usr/lib/postgresql")) {
    for (const version of readdirSync("/usr/lib/postgresql").sort().reverse()) {
      candidates.push(join("/usr/lib/postgresql", version, "bin", name))
    }
  }
  return candidates.find((candidate) => existsSync(candidate))
}

/**
 * The machine's PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) if it answers; otherwise a
 * private cluster started with initdb/pg_ctl in a temp dir (as the postgres user when running as
 * root); otherwise the reason none is available.
 */
export const findPostgres = async (): Promise<Postgres | { readonly unavailable: string }> => {
  // REELKIT_TEST_PG=private skips the shared server, to exercise the private-cluster path.
  if (process.env.REELKIT_TEST_PG !== "private" && (await canConnect(5432)))
    return { host: "127.0.0.1", port: 5432, stop: () => undefined }
  const initdb = findBinary("initdb")
  const pgCtl = findBinary("pg_ctl")
  if (initdb === undefined || pgCtl === undefined) {
    return { unavailable: "nothing answers on 127.0.0.1:5432 and initdb/pg_ctl are not installed" }
  }
  const asPostgres = (command: string, args: ReadonlyArray<string>) =>
    process.getuid?.() === 0
      ? (["runuser", ["-u", "postgres", "--", command, ...args]] as const)
      : ([command, args] as const)
  const dir = mkdtempSync(join(tmpdir(), "reelkit-pg-"))
  try {
    chmodSync(dir, 0o777)
    const port = await freePort()
    const [initCommand, initArgs] = asPostgres(initdb, ["-D", join(dir, "data"), "-A", "trust", "-U", "postgres"])
    execFileSync(initCommand, initArgs, { stdio: "ignore" })
    const [startCommand, startArgs] = asPostgres(pgCtl, [
      "-D",
      join(dir, "data"),
      "-l",
      join(dir, "log"),
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`,
      "-w",
      "start"
    ])
    execFileSync(startCommand, startArgs, { stdio: "ignore" })
    const pid = Number(readFileSync(join(dir, "data/postmaster.pid"), "utf8").split("\n")[0])
    return {
      host: "127.0.0.1",
      port,
      stop: () => {
        try {
          // SIGINT is PostgreSQL's "fast shutdown"; sent to the postmaster we started, by pid.
          process.kill(pid, "SIGINT")
          // Wait (up to 10 s) for the postmaster to exit before deleting its directory.
          const pause = new Int32Array(new SharedArrayBuffer(4))
          for (let tries = 0; tries < 200; tries++) {
            process.kill(pid, 0)
            Atomics.wait(pause, 0, 0, 50)
          }
        } catch {}
        rmSync(dir, { recursive: true, force: true })
      }
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    return { unavailable: `nothing answers on 127.0.0.1:5432 and a private cluster failed to start: ${error}` }
  }
}

/** A database name no other run uses. */
export const privateDatabaseName = () => `reelkit_test_${randomBytes(6).toString("hex")}`

/** Where `HoldingProxy` stops relaying, once. */
export type HoldPoint =
  /** The submit POST is held: it never reaches the server. */
  | "generate-request"
  /** The submit reaches the server (which creates and bills the task); its answer is held. */
  | "generate-response"
  /** The first status request is held (the submit's answer was relayed and recorded). */
  | "status-request"
  /** A result download is relayed up to `holdAfterBytes`, then held mid-body. */
  | "download-body"

/**
 * An HTTP proxy in front of the fake apixo that relays everything (rewriting the fake's own URL to
 * its own in JSON answers, so result downloads come through it too) except at one hold point, where
 * it stops relaying and reports it: a child process can then be killed at exactly that point.
 */
export interface HoldingProxy {
  readonly url: string
  /** Resolves when the hold point is reached. */
  readonly held: Promise<void>
  /** From now on, relay everything. */
  readonly release: () => void
  readonly close: () => Promise<void>
}

const routeOf = (method: string, path: string) =>
  method === "POST" && path.startsWith("/api/v1/generateTask/")
    ? "generate"
    : path.startsWith("/api/v1/statusTask/")
      ? "status"
      : path.startsWith("/results/")
        ? "download"
        : "other"

/** Starts a holding proxy in front of `target` (e.g. `http://127.0.0.1:1234`). */
export const startHoldingProxy = async (
  target: string,
  hold: HoldPoint,
  holdAfterBytes = 1024 * 1024
): Promise<HoldingProxy> => {
  const { createServer: createHttpServer, request } = await import("node:http")
  const upstream = new URL(target)
  let holding = true
  let reached: () => void = () => undefined
  const held = new Promise<void>((resolve) => {
    reached = resolve
  })
  const holdNow = (point: HoldPoint) => holding && hold === point
  let selfUrl = ""
  const sockets = new Set<import("node:net").Socket>()
  const server = createHttpServer((incoming, outgoing) => {
    const route = routeOf(incoming.method ?? "GET", incoming.url ?? "/")
    const chunks: Array<Buffer> = []
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk))
    incoming.on("end", () => {
      if ((route === "generate" && holdNow("generate-request")) || (route === "status" && holdNow("status-request"))) {
        reached()
        return
      }
      const forwarded = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: { ...incoming.headers, host: upstream.host }
        },
        (answer) => {
          if (route === "download") {
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers)
            let relayed = 0
            const holdBody = holdNow("download-body")
            answer.on("data", (chunk: Buffer) => {
              if (holdBody && relayed >= holdAfterBytes) return
              outgoing.write(chunk)
              relayed += chunk.length
              if (holdBody && relayed >= holdAfterBytes) {
                answer.pause()
                reached()
              }
            })
            answer.on("end", () => outgoing.end())
            return
          }
          const body: Array<Buffer> = []
          answer.on("data", (chunk: Buffer) => body.push(chunk))
          answer.on("end", () => {
            if (route === "generate" && holdNow("generate-response")) {
              reached()
              return
            }
            const text = Buffer.concat(body).toString("utf8").replaceAll(target, selfUrl)
            const headers = { ...answer.headers, "content-length": String(Buffer.byteLength(text)) }
            delete headers["transfer-encoding"]
            outgoing.writeHead(answer.statusCode ?? 502, headers)
            outgoing.end(text)
          })
        }
      )
      forwarded.on("error", () => outgoing.destroy())
      forwarded.end(Buffer.concat(chunks))
    })
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  selfUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
  return {
    url: selfUrl,
    held,
    release: () => {
      holding = false
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** A server sending one large body, which it stops sending part-way until released. */
export interface HeldBodyServer {
  readonly url: string
  /** The whole body the server sends (its length is announced). */
  readonly body: Uint8Array
  /** Sends the rest of the body to every request held part-way, and everything to later ones. */
  readonly release: () => void
  readonly close: () => Promise<void>
}

/**
 * Starts an HTTP server on 127.0.0.1 answering every GET with `totalBytes` of `video/mp4`
 * (announced length), written with backpressure, that stops after `holdAfterBytes` until
 * `release()`: a download that is provably in progress for as long as the test needs.
 */
export const startHeldBodyServer = async (totalBytes: number, holdAfterBytes: number): Promise<HeldBodyServer> => {
  const { createServer: createHttpServer } = await import("node:http")
  const body = new Uint8Array(totalBytes).map((_, index) => (index * 7919) % 251)
  let released: () => void = () => undefined
  const releasedNow = new Promise<void>((resolve) => {
    released = resolve
  })
  const sockets = new Set<import("node:net").Socket>()
  const server = createHttpServer(async (_request, response) => {
    response.writeHead(200, { "content-type": "video/mp4", "content-length": String(totalBytes) })
    const chunkBytes = 64 * 1024
    for (let offset = 0; offset < totalBytes; offset += chunkBytes) {
      if (offset >= holdAfterBytes) await releasedNow
      if (response.destroyed) return
      const chunk = body.subarray(offset, Math.min(offset + chunkBytes, totalBytes))
      if (!response.write(chunk)) {
        // A client that died never drains: the socket's close ends the wait.
        await new Promise((resolve) => {
          response.once("drain", resolve)
          response.once("close", resolve)
        })
      }
    }
    response.end()
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  return {
    url: `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/video.mp4`,
    body,
    release: () => released(),
    close: () =>
      new Promise<void>((resolve) => {
        released()
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** Where a Redis server answers, and how to stop it if this run started it. */
export interface RedisServer {
  readonly url: string
  readonly stop: () => void
}

/**
 * The machine's Redis on 127.0.0.1:6379 if it answers; otherwise a private `redis-server` on a free
 * port (stopped by its pid); otherwise the reason none is available.
 */
export const findRedis = async (): Promise<RedisServer | { readonly unavailable: string }> => {
  if (process.env.REELKIT_TEST_REDIS !== "private" && (await canConnect(6379)))
    return { url: "redis://127.0.0.1:6379", stop: () => undefined }
  const binary = findBinary("redis-server")
  if (binary === undefined)
    return { unavailable: "nothing answers on 127.0.0.1:6379 and redis-server is not installed" }
  const dir = mkdtempSync(join(tmpdir(), "reelkit-redis-"))
  try {
    const port = await freePort()
    const pidfile = join(dir, "redis.pid")
    execFileSync(binary, [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--daemonize",
      "yes",
      "--pidfile",
      pidfile,
      "--dir",
      dir,
      "--save",
      ""
    ])
    // --daemonize returns once the server forked; the pid file appears when it is up.
    for (let tries = 0; tries < 200 && !(await canConnect(port)); tries++) await new Promise((r) => setImmediate(r))
    return {
      url: `redis://127.0.0.1:${port}`,
      stop: () => {
        try {
          process.kill(Number(readFileSync(pidfile, "utf8").trim()), "SIGTERM")
        } catch {}
        rmSync(dir, { recursive: true, force: true })
      }
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    return { unavailable: `nothing answers on 127.0.0.1:6379 and a private redis-server failed to start: ${error}` }
  }
}

/**
 * Bundles `test/fixtures/<name>.ts` (workspace sources included, other packages left as imports)
 * into one ES module under `node_modules/.cache`, so that many child processes start from plain
 * JavaScript instead of each transpiling the workspace. Returns the bundle's path.
 */
export const bundleFixture = async (name: string): Promise<string> => {
  const esbuild = await import("esbuild")
  const outfile = join(packageDir, "node_modules/.cache/reelkit-fixtures", `${name}.mjs`)
  await esbuild.build({
    entryPoints: [join(fixturesDir, `${name}.ts`)],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    tsconfig: join(fixturesDir, "tsconfig.json"),
    logLevel: "silent",
    plugins: [
      {
        name: "external-packages",
        setup: (build) => {
          // Everything but the workspace's own packages stays an import, resolved from this package.
          build.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith("@reelkit/") ? undefined : { path: args.path, external: true }
          )
        }
      }
    ]
  })
  return outfile
}

/** Starts a bundle made by `bundleFixture` in a child Node process. */
export const spawnBundle = (path: string, args: ReadonlyArray<string>) =>
  spawn(process.execPath, [path, ...args], { cwd: packageDir, env: process.env, stdio: ["pipe", "pipe", "pipe"] })
