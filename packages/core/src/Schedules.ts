/**
 * The named, overridable schedules of reelkit. Time only ever passes through Effect's `Clock`, so
 * `TestClock` drives every one of them.
 *
 * - `retry`: how transient failures (429, 5xx, dropped connections, garbled answers) are retried,
 *   for status requests always, for submits only when the failure proves no task was created.
 * - `poll(plan)`: the poll plan as a Schedule, for users who run their own loops.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type { ProviderError } from "./TaskError.js"
import type { PollPlan } from "./TaskProvider.js"

/** A retry schedule: fed each failure, it decides whether and when to try again. */
export type RetrySchedule = Schedule.Schedule<unknown, ProviderError>

/**
 * The default retry: jittered exponential backoff from 1 s, doubling, each delay capped at 30 s,
 * at most 6 retries. Only retryable errors are retried (see `TaskError`).
 */
export const retry: RetrySchedule = Schedule.exponential(Duration.seconds(1), 2).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(30))),
  Schedule.intersect(Schedule.recurs(6)),
  Schedule.whileInput((error: ProviderError) => error.retryable)
)

/** The longest a server's `Retry-After` is honoured for, by default; a longer hint is capped. */
export const defaultMaxRetryAfter: Duration.Duration = Duration.minutes(2)

/**
 * Wraps a retry schedule so that a `RateLimited` error's `retryAfterMillis` (capped at `maxRetryAfter`)
 * is the least delay before the next try, and non-retryable errors stop it.
 */
export const honourRetryAfter = (
  schedule: RetrySchedule,
  maxRetryAfter: Duration.DurationInput = defaultMaxRetryAfter
): RetrySchedule => {
  const capMillis = Duration.toMillis(maxRetryAfter)
  const serverHint = Schedule.identity<ProviderError>().pipe(
    Schedule.addDelay((error) =>
      Duration.millis(
        error._tag === "RateLimited" && error.retryAfterMillis !== undefined
          ? Math.min(Math.max(error.retryAfterMillis, 0), capMillis)
          : 0
      )
    )
  )
  return Schedule.intersect(schedule, serverHint).pipe(Schedule.whileInput((error: ProviderError) => error.retryable))
}

/** The poll plan as a Schedule: first after `firstPollAfter`, then every `interval`, until `deadline`. */
export const poll = (plan: PollPlan): Schedule.Schedule<number> =>
  Schedule.spaced(plan.interval).pipe(
    Schedule.modifyDelay((repetition: number, delay) => (repetition === 0 ? plan.firstPollAfter : delay)),
    Schedule.upTo(plan.deadline)
  )

/**
 * A schedule being stepped by hand, one input at a time: the scheduler keeps one per task instead
 * of a sleeping fiber, and asks it for the next delay.
 */
export interface Stepper<In> {
  /** The delay before the next try, or `None` when the schedule is done. */
  readonly next: (input: In, now: number) => Effect.Effect<Option.Option<number>>
}

/** Starts stepping a schedule by hand. */
export const stepper = <In>(schedule: Schedule.Schedule<unknown, In>): Stepper<In> => {
  let state: unknown = schedule.initial
  return {
    next: (input, now) =>
      Effect.map(schedule.step(now, input, state), ([nextState, _output, decision]) => {
        state = nextState
        if (ScheduleDecision.isDone(decision)) return Option.none()
        return Option.some(Math.max(0, ScheduleIntervals.start(decision.intervals) - now))
      })
  }
}
