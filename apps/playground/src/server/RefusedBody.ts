/**
 * How a connection ends after its request body was refused (413). Node would reset it right after
 * the answer, while the client is still sending, and the reset often destroys the answer before the
 * client reads it. So the connection is kept for a moment instead: whatever else arrives is thrown
 * away, a client that reads the 413 and stops closes it itself, and one that keeps sending is cut
 * off a second after the answer. Nothing of the body is ever kept.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"

/** How long a connection may go on sending after its 413 was written. */
export const lingerMillis = 1000

/** Arranges the end of `request`'s connection once its 413 is written. */
export const lingerThenClose = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<void> =>
  Effect.sync(() => {
    const incoming = NodeHttpServerRequest.toIncomingMessage(request)
    const outgoing = NodeHttpServerRequest.toServerResponse(request)
    outgoing.shouldKeepAlive = true
    incoming.resume()
    outgoing.once("finish", () => {
      if (incoming.complete) return
      // A Node timer, not an Effect one: it belongs to the socket, which outlives the handler's fiber.
      const timer = setTimeout(() => incoming.socket.destroy(), lingerMillis)
      timer.unref()
      incoming.socket.once("close", () => clearTimeout(timer))
      incoming.once("end", () => clearTimeout(timer))
    })
  })
