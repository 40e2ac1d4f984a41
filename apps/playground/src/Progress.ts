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
interface View {
  state: string
  nextPollAt: number | undefined
  note: string | undefined
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
  const view: View = { state: options.state, nextPollAt: options.firstPollAt, note: undefined }
  const render = (now: number): string => {
    const next =
      view.nextPollAt === undefined
        ? ""
        : view.nextPollAt > now
          ? `, next poll in ${formatCountdown(view.nextPollAt - now)}`
          : ", polling"
    const note = view.note === undefined ? "" : ` (${view.note})`
    return `${options.taskKey}  ${view.state}${note}  ${formatElapsed(now - options.startedAt)}${next}`
  }
  const draw = Effect.map(Clock.currentTimeMillis, (now) => output.write(`${clearLine}${render(now)}`))
  const onEvent = (event: TaskEvent.TaskEvent) =>
    Effect.gen(function* () {
      switch (event._tag) {
        case "Submitted":
          // The line already shows the submitted task: nothing new to say.
          if (view.state === "submitted") return
          view.state = "submitted"
          break
        case "Pending":
        case "Processing":
          view.state = event._tag === "Pending" ? "pending" : "processing"
          view.nextPollAt = event.nextPollAt
          view.note = event._tag === "Processing" && event.progress !== undefined ? `${event.progress}%` : undefined
          break
        case "Retrying":
          view.nextPollAt = event.nextPollAt
          view.note = `retrying: ${event.reason}`
          break
        case "Succeeded":
          view.state = "succeeded"
          view.nextPollAt = undefined
          view.note = undefined
          break
        case "Failed":
          view.state = "failed"
          view.nextPollAt = undefined
          view.note = event.code
          break
      }
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
