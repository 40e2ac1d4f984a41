/**
 * Progress while waiting, on stderr so stdout stays for results: on a terminal, one live line
 * rewritten in place (state, elapsed time, next poll); otherwise one plain line per change.
 */
import type { TaskEvent } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { formatElapsed } from "./TaskSummary.js"

/** Where progress goes. */
export interface Output {
  readonly write: (text: string) => void
  /** Whether `write` reaches a terminal. */
  readonly isTerminal: boolean
}

/** Progress on the process's stderr. */
export const stderr: Output = {
  write: (text) => void process.stderr.write(text),
  isTerminal: process.stderr.isTTY === true
}

/** What the line shows. */
export interface View {
  readonly state: string
  readonly nextPollAt: number | undefined
  readonly note: string | undefined
}

// How far along each state is: the line never moves back (a replayed or late event says nothing new).
const rank: Readonly<Record<string, number>> = {
  queued: 0,
  sending: 0,
  submitted: 1,
  pending: 2,
  processing: 3,
  succeeded: 4,
  completed: 5,
  failed: 5,
  rejected: 5,
  ambiguous: 5,
  cancelled: 5
}

const rankOf = (state: string): number => rank[state] ?? 0

/**
 * The line after an event, or undefined when the event changes nothing shown (a state behind the
 * current one, or `Submitted` again). Retries and waits keep the state and say why the line waits.
 */
export const viewAfter = (view: View, event: TaskEvent.TaskEvent): View | undefined => {
  const moveTo = (state: string, nextPollAt: number | undefined, note: string | undefined): View | undefined =>
    rankOf(state) < rankOf(view.state) || (state === view.state && state === "submitted")
      ? undefined
      : { state, nextPollAt, note }
  switch (event._tag) {
    case "Submitted":
      return moveTo("submitted", view.nextPollAt, undefined)
    case "Pending":
      return moveTo("pending", event.nextPollAt, undefined)
    case "Processing":
      return moveTo("processing", event.nextPollAt, event.progress === undefined ? undefined : `${event.progress}%`)
    case "Retrying":
      return { state: view.state, nextPollAt: event.nextPollAt, note: `retrying after: ${event.reason}` }
    case "Succeeded":
      return moveTo("succeeded", undefined, undefined)
    case "Failed":
      return moveTo("failed", undefined, event.code)
    default: {
      // Events this CLI does not know yet (a wait for a slot, a queued submit): show that it waits.
      const other = event as { readonly _tag: string; readonly nextPollAt?: number; readonly reason?: string }
      const note = other.reason === undefined ? other._tag : `${other._tag}: ${other.reason}`
      return { state: view.state, nextPollAt: other.nextPollAt ?? view.nextPollAt, note }
    }
  }
}

const clearLine = "\r\u001b[2K"

// Tenths of a second while short polls matter, whole seconds once the wait is long.
const formatCountdown = (millis: number): string =>
  millis < 10_000 ? `${(millis / 1000).toFixed(1)} s` : `${Math.ceil(millis / 1000)} s`

/**
 * Runs a task's event stream to its end while showing progress. `startedAt` is when the task was
 * submitted (elapsed time counts from it); `firstPollAt` when the first status request is due.
 */
export const follow = <E>(
  events: Stream.Stream<TaskEvent.TaskEvent, E>,
  options: {
    readonly taskKey: string
    readonly startedAt: number
    readonly state: string
    readonly firstPollAt: number | undefined
    readonly output?: Output | undefined
  }
): Effect.Effect<void, E> => {
  const output = options.output ?? stderr
  const view: { -readonly [K in keyof View]: View[K] } = {
    state: options.state,
    nextPollAt: options.firstPollAt,
    note: undefined
  }
  const render = (now: number): string => {
    const next =
      view.nextPollAt === undefined
        ? ""
        : view.nextPollAt > now
          ? `, ${view.note?.startsWith("retrying") === true ? "retry" : "next poll"} in ${formatCountdown(view.nextPollAt - now)}`
          : ", polling"
    const note = view.note === undefined ? "" : ` (${view.note})`
    return `${options.taskKey}  ${view.state}${note}  ${formatElapsed(now - options.startedAt)}${next}`
  }
  const draw = Effect.map(Clock.currentTimeMillis, (now) => output.write(`${clearLine}${render(now)}`))
  const onEvent = (event: TaskEvent.TaskEvent) =>
    Effect.gen(function* () {
      const next = viewAfter(view, event)
      if (next === undefined) return
      Object.assign(view, next)
      if (output.isTerminal) return yield* draw
      const now = yield* Clock.currentTimeMillis
      output.write(`${render(now)}\n`)
    })
  const run = Stream.runForEach(events, onEvent)
  if (!output.isTerminal) {
    return Effect.zipRight(
      Effect.map(Clock.currentTimeMillis, (now) => output.write(`${render(now)}\n`)),
      run
    )
  }
  // The elapsed time and the countdown move between events: redraw every quarter second.
  return Effect.scoped(
    Effect.gen(function* () {
      yield* Effect.forkScoped(Effect.repeat(draw, Schedule.spaced("250 millis")))
      yield* run
    })
  ).pipe(Effect.ensuring(Effect.map(Clock.currentTimeMillis, (now) => output.write(`${clearLine}${render(now)}\n`))))
}
