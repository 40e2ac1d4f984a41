// Pieces both fake servers (apixo, Vidu) are built from: listening on a socket in a scope, writing
// an answer (JSON, a reset, a whole or truncated video), waiting on recorded events without time,
// sleeping until an absolute Clock time, and the sliding-window request count their "never over
// the limit" checks read.
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Http from "node:http"

/** Sleeps until an absolute Clock time (at once when it has passed), so a TestClock moved past it still wakes the fiber. */
export const sleepUntil = (target: number): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => (now >= target ? Effect.void : Effect.sleep(target - now)))

/** Waiters re-checked after every recorded event: `notify` after each, `waitUntil` to wait for a predicate. */
export const makeWaiters = () => {
  const waiters = new Set<() => void>()
  const notify = (): void => {
    for (const waiter of [...waiters]) waiter()
  }
  const waitUntil = (predicate: () => boolean): Effect.Effect<void> =>
    Effect.async<void>((resume) => {
      if (predicate()) return resume(Effect.void)
      const check = () => {
        if (predicate()) {
          waiters.delete(check)
          resume(Effect.void)
        }
      }
      waiters.add(check)
      return Effect.sync(() => {
        waiters.delete(check)
      })
    })
  return { notify, waitUntil }
}

/** Listens on `host:port` (0: any free port) until the scope closes; returns the base URL (`http://host:port`) and the port. */
export const listen = <E>(
  httpServer: Http.Server,
  port: number,
  host: string,
  makeError: (message: string, cause: unknown) => E
): Effect.Effect<{ readonly port: number; readonly baseUrl: string }, E, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.async<number, E>((resume) => {
        const onError = (error: Error) => resume(Effect.fail(makeError(`Cannot listen: ${error.message}`, error)))
        httpServer.once("error", onError)
        httpServer.listen(port, host, () => {
          httpServer.off("error", onError)
          const address = httpServer.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          httpServer.close(() => resume(Effect.void))
          httpServer.closeAllConnections()
        })
    ),
    (bound) => {
      const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host
      return { port: bound, baseUrl: `http://${urlHost}:${bound}` }
    }
  )

/** The most of `times` (per key) inside any sliding window of `windowMillis`. */
export const maxInWindow = (timesByKey: Iterable<Array<number>>, windowMillis: number): number => {
  let max = 0
  for (const times of timesByKey) {
    times.sort((a, b) => a - b)
    let start = 0
    for (let end = 0; end < times.length; end++) {
      while (times[end]! - times[start]! >= windowMillis) start++
      max = Math.max(max, end - start + 1)
    }
  }
  return max
}

/** What a fake's handler decided to answer, written once any `slow` delay has passed. */
export type Answer =
  | {
      readonly _tag: "Json"
      readonly status: number
      readonly body: string
      readonly headers?: Http.OutgoingHttpHeaders
    }
  | { readonly _tag: "Reset" }
  | {
      readonly _tag: "Video"
      readonly head: boolean
      readonly truncateAt: number | undefined
    }

/**
 * Writes an answer (once: nothing when the response is already under way or gone); returns the
 * HTTP status sent, or undefined for a destroyed connection. A truncated video announces its whole
 * length, sends part of it and then cuts the connection.
 */
export const writeAnswer = (
  request: Http.IncomingMessage,
  response: Http.ServerResponse,
  answer: Answer,
  video: Uint8Array
): number | undefined => {
  if (response.headersSent || response.destroyed) return undefined
  switch (answer._tag) {
    case "Reset":
      request.socket.destroy()
      return undefined
    case "Json":
      response.writeHead(answer.status, {
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(answer.body),
        ...answer.headers
      })
      response.end(answer.body)
      return answer.status
    case "Video":
      response.writeHead(200, { "content-type": "video/mp4", "content-length": video.length })
      if (answer.head) {
        response.end()
      } else if (answer.truncateAt !== undefined) {
        response.write(video.subarray(0, answer.truncateAt), () => response.destroy())
      } else {
        response.end(video)
      }
      return 200
  }
}
