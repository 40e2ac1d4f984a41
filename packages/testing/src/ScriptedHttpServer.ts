/**
 * A scripted HTTP server on a real loopback socket (port 0): each route answers the replies you
 * queue (status, headers, body, or a fault: a destroyed socket, a request left hanging), and every
 * request is recorded with its headers and raw body. For exact transport tests, where the
 * protocol-level `FakeApixo` is too clever.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type IncomingHttpHeaders, createServer } from "node:http"
import type { AddressInfo, Socket } from "node:net"

/** One request as the server received it. */
export interface RecordedRequest {
  readonly method: string
  readonly pathname: string
  readonly query: URLSearchParams
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** One scripted answer: a status with headers and a body (objects are sent as JSON), or a fault. */
export type Reply =
  | {
      readonly status: number
      readonly headers?: Readonly<Record<string, string>>
      readonly body?: unknown
    }
  | { readonly fault: "destroy" }
  | { readonly fault: "hang" }

/** Controls of the scripted server. */
export interface ScriptedServer {
  readonly baseUrl: string
  /** Queues answers for `METHOD /path`; the last one repeats. Unscripted routes answer 599. */
  readonly script: (route: string, ...replies: ReadonlyArray<Reply>) => void
  readonly requests: () => ReadonlyArray<RecordedRequest>
  /** Completes once the server has received `count` requests in all (bodies fully read). */
  readonly received: (count: number) => Effect.Effect<void>
}

/** Starts a scripted server on 127.0.0.1, port 0; it closes with the scope. */
export const make: Effect.Effect<ScriptedServer, never, Scope.Scope> = Effect.gen(function* () {
  const queues = new Map<string, Array<Reply>>()
  const recorded: Array<RecordedRequest> = []
  const waiters: Array<{ count: number; resolve: () => void }> = []
  const sockets = new Set<Socket>()

  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const url = new URL(request.url ?? "/", "http://127.0.0.1")
      recorded.push({
        method: request.method ?? "",
        pathname: url.pathname,
        query: url.searchParams,
        headers: request.headers,
        body: Buffer.concat(chunks).toString("utf8")
      })
      for (const waiter of waiters.filter((waiter) => recorded.length >= waiter.count)) waiter.resolve()
      const queue = queues.get(`${request.method} ${url.pathname}`) ?? []
      const reply: Reply = (queue.length > 1 ? queue.shift() : queue[0]) ?? {
        status: 599,
        body: { code: 599, message: `unscripted route ${request.method} ${url.pathname}`, data: null }
      }
      if ("fault" in reply) {
        if (reply.fault === "destroy") request.socket.destroy()
        return
      }
      const text =
        reply.body === undefined ? "" : typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body)
      response.writeHead(reply.status, {
        "content-type": typeof reply.body === "string" ? "text/plain" : "application/json",
        ...reply.headers
      })
      response.end(text)
    })
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })

  const port = yield* Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
    }),
    () =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  )

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    script: (route, ...replies) => {
      queues.set(route, [...replies])
    },
    requests: () => [...recorded],
    received: (count) =>
      Effect.async<void>((resume) => {
        if (recorded.length >= count) return resume(Effect.void)
        waiters.push({ count, resolve: () => resume(Effect.void) })
      })
  }
})

/** A base URL where nothing listens: a port bound, read and released again. */
export const refusedBaseUrl: Effect.Effect<string> = Effect.async<string>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as AddressInfo).port
    server.close(() => resume(Effect.succeed(`http://127.0.0.1:${port}`)))
  })
})
