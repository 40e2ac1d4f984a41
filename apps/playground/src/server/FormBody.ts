/**
 * Reads a url-encoded form body up to a cap. Beyond the cap it stops keeping bytes and answers
 * `None`, and the rest of the body is thrown away (`RefusedBody` ends the connection after the 413).
 * (The platform's own reader destroys the socket at its cap: the sender would never see a 413.)
 */
import * as UrlParams from "@effect/platform/UrlParams"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/** The form's fields, or `None` when the body is larger than `maxBytes`; fails when the body cannot be read. */
export const read = (
  request: HttpServerRequest.HttpServerRequest,
  maxBytes: number
): Effect.Effect<Option.Option<UrlParams.UrlParams>, Error> =>
  Effect.async<Option.Option<UrlParams.UrlParams>, Error>((resume) => {
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const chunks: Array<Buffer> = []
    let total = 0
    const stop = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    function onData(chunk: Buffer) {
      total += chunk.byteLength
      if (total <= maxBytes) return void chunks.push(chunk)
      stop()
      resume(Effect.succeed(Option.none()))
    }
    function onEnd() {
      stop()
      const text = Buffer.concat(chunks).toString("utf8")
      resume(Effect.succeed(Option.some(UrlParams.fromInput(new URLSearchParams(text)))))
    }
    function onError(error: Error) {
      stop()
      resume(Effect.fail(error))
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    return Effect.sync(stop)
  })
