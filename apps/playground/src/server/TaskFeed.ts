/**
 * The live task list behind `GET /events`: one fiber reads the ledger every second and keeps the
 * latest list; every event stream follows that one value. Open streams therefore cost a
 * subscription each, not a ledger query each, and their number is capped.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"

/** Event streams open now, for `/metrics`. */
export const openStreams = Metric.gauge("reelkit_serve_event_streams", {
  description: "Event streams (GET /events) open on reelkit serve"
})

/** Event streams refused because the cap was reached. */
export const refusedStreams = Metric.counter("reelkit_serve_event_streams_refused_total", {
  description: "Event streams refused because reelkit serve had as many open as it allows"
})

/** An event stream of the feed, holding one of its places until `release` (which may be called more than once). */
export interface Subscription {
  readonly stream: Stream.Stream<Uint8Array>
  readonly release: () => void
}

/** The feed. */
export interface TaskFeed {
  /** A new event stream, or `None` when `maxStreams` are already open. */
  readonly open: Effect.Effect<Option.Option<Subscription>>
}

/** Starts the feed over `list` (its JSON is what the browser receives); it stops with the scope. */
export const make = <E>(
  list: Effect.Effect<ReadonlyArray<unknown>, E>,
  options: { readonly maxStreams: number }
): Effect.Effect<TaskFeed, never, Scope.Scope> =>
  Effect.gen(function* () {
    const initial = yield* Effect.orElseSucceed(list, () => [])
    const latest = yield* SubscriptionRef.make(JSON.stringify(initial))
    const refresh = Effect.flatMap(Effect.either(list), (result) =>
      result._tag === "Left"
        ? Effect.void
        : SubscriptionRef.update(latest, (previous) => {
            const next = JSON.stringify(result.right)
            return next === previous ? previous : next
          })
    )
    yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced("1 second")))

    let open = 0
    const encoder = new TextEncoder()
    const frames = latest.changes.pipe(
      Stream.changes,
      Stream.mapEffect((tasks) =>
        Effect.map(Clock.currentTimeMillis, (now) =>
          encoder.encode(`event: tasks\ndata: {"now":${now},"tasks":${tasks}}\n\n`)
        )
      )
    )
    return {
      open: Effect.sync(() => {
        if (open >= options.maxStreams) {
          refusedStreams.unsafeUpdate(1, [])
          return Option.none()
        }
        open += 1
        openStreams.unsafeUpdate(open, [])
        let released = false
        const release = () => {
          if (released) return
          released = true
          open -= 1
          openStreams.unsafeUpdate(open, [])
        }
        return Option.some({ stream: frames.pipe(Stream.ensuring(Effect.sync(release))), release })
      })
    }
  })
