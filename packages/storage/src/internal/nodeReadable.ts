// Turns an Effect Stream into a Node Readable for libraries that consume Node streams (the AWS SDK's
// multipart `Upload`). The stream is pulled on demand, so backpressure holds, and its typed failure
// is kept aside: the library only sees a generic error and the caller re-raises the original.
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Readable } from "node:stream"

/** A Readable over a stream, and the stream's failure once it has failed. */
export interface Bridged<E> {
  readonly readable: Readable
  readonly failure: () => Option.Option<Cause.Cause<E>>
}

/** Builds a Readable that pulls `stream`; the pull is released with the scope. */
export const toReadable = <E>(stream: Stream.Stream<Uint8Array, E>): Effect.Effect<Bridged<E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(stream)
    const runtime = yield* Effect.runtime<never>()
    let failure: Option.Option<Cause.Cause<E>> = Option.none()
    async function* generate(): AsyncGenerator<Uint8Array> {
      while (true) {
        const exit = await Runtime.runPromiseExit(runtime)(pull)
        if (Exit.isFailure(exit)) {
          // `Option.none()` in the failure channel means the stream ended.
          const cause = Cause.flipCauseOption(exit.cause)
          if (Option.isNone(cause)) return
          failure = cause
          throw new Error("The body stream failed")
        }
        for (const chunk of exit.value) yield chunk
      }
    }
    return { readable: Readable.from(generate(), { objectMode: false }), failure: () => failure }
  })
