// What every part of the client shares: the services it was built from, its resolved settings, its
// owner id (the name its ledger writes are fenced with) and the stream of events it publishes.
// Built once by `TaskClient.make`; the submit, tracking, results and reconcile modules take it.
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberMap from "effect/FiberMap"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Random from "effect/Random"
import * as Runtime from "effect/Runtime"
import type { AccountLimits } from "../AccountLimits.js"
import type { CallbackUrls } from "../CallbackUrls.js"
import type { ResultStorage } from "../ResultStorage.js"
import type { SpendCap } from "../SpendCap.js"
import * as Schedules from "../Schedules.js"
import { type LedgerError, UnknownTask } from "../TaskError.js"
import type { TaskEvent } from "../TaskEvent.js"
import { fence, type TaskLedger, type TaskPatch, type TaskRecord } from "../TaskLedger.js"
import type { PollPlan, Service as Provider } from "../TaskProvider.js"
import * as Telemetry from "./telemetry.js"

/** Settings of a client, every one resolved to a value. */
export interface Settings {
  readonly pollPlan: Partial<PollPlan>
  readonly retry: Schedules.RetrySchedule
  /** The longest wait before a submit retry the client accepts; a longer `Retry-After` ends the start with `RetryLater`. */
  readonly maxRetryAfterMillis: number
  readonly pollConcurrency: number
  /** How long a tracking lease holds without renewal. */
  readonly leaseMillis: number
  /** How long a submit lease holds without renewal (longer than the submit timeout). */
  readonly submitLeaseMillis: number
  /** How long one submit attempt may go unanswered before it counts as ambiguous. */
  readonly submitTimeoutMillis: number
  readonly callbackFallbackIntervalMillis: number
}

/** The parts every client module needs. */
export interface ClientContext {
  readonly provider: Provider
  readonly ledger: TaskLedger["Type"]
  readonly limits: AccountLimits["Type"]
  readonly results: ResultStorage["Type"]
  readonly callbackUrls: CallbackUrls["Type"]
  /** The account's spend cap, when one is provided (`SpendCap` is optional: without it nothing is capped). */
  readonly spend: Option.Option<SpendCap["Type"]>
  /** This client's name in leases: unique per client instance, so a restart never inherits a dead one's leases. */
  readonly owner: string
  readonly settings: Settings
  readonly events: PubSub.PubSub<TaskEvent>
  /** How many subscribers `events` has: with none, events are not even built (the poll path stays lean). */
  readonly subscribers: { count: number }
  readonly metrics: ReturnType<typeof Telemetry.metricsFor>
  readonly spanAttributes: Readonly<Record<string, string>>
  /** Removes the provider's secrets from a provider-supplied text. */
  readonly redact: (text: string) => string
}

/** A random base-36 string of `length` characters. */
export const randomId = (length: number): Effect.Effect<string> =>
  Effect.gen(function* () {
    let out = ""
    for (let index = 0; index < length; index++) out += (yield* Random.nextIntBetween(0, 36)).toString(36)
    return out
  })

/** A new task key: `tk_` + time + randomness, sortable by creation. */
export const newTaskKey: Effect.Effect<string> = Effect.zipWith(
  Clock.currentTimeMillis,
  randomId(12),
  (now, suffix) => `tk_${now.toString(36)}${suffix}`
)

/** The patch that gives up a row's lease. */
export const noLease = { leaseOwner: null, leaseExpiresAt: null } as const

/** A fenced write by this client to the row as it last saw it. */
export const write = (context: ClientContext, record: TaskRecord, patch: TaskPatch) =>
  context.ledger.transition(fence(record, context.owner), patch)

/** Publishes an event to the client's subscribers; without any, the event is not built at all. */
export const publish = (context: ClientContext, event: () => TaskEvent): Effect.Effect<void> =>
  context.subscribers.count === 0 ? Effect.void : Effect.asVoid(PubSub.publish(context.events, event()))

/** A scoped subscription to the client's events, counted so that `publish` knows someone listens. */
export const subscribe = (context: ClientContext) =>
  Effect.zipRight(
    Effect.acquireRelease(
      Effect.sync(() => {
        context.subscribers.count += 1
      }),
      () =>
        Effect.sync(() => {
          context.subscribers.count -= 1
        })
    ),
    PubSub.subscribe(context.events)
  )

/** The poll plan of a task, with the client's and the call's overrides. */
export const planFor = (
  context: ClientContext,
  overrides: {
    readonly firstPollAfter?: Duration.DurationInput | undefined
    readonly pollInterval?: Duration.DurationInput | undefined
    readonly deadline?: Duration.DurationInput | undefined
  },
  record?: TaskRecord
): PollPlan => {
  const hints = context.provider.hints.pollPlan
  const client = context.settings.pollPlan
  const interval = Duration.decode(overrides.pollInterval ?? client.interval ?? hints.interval)
  return {
    firstPollAfter: Duration.decode(overrides.firstPollAfter ?? client.firstPollAfter ?? hints.firstPollAfter),
    // A task in callback mode is told when it is done; polling is only the fallback, unless the caller asks otherwise.
    interval:
      record?.callbackUrl !== undefined && overrides.pollInterval === undefined
        ? Duration.max(interval, Duration.millis(context.settings.callbackFallbackIntervalMillis))
        : interval,
    deadline: Duration.decode(overrides.deadline ?? client.deadline ?? hints.deadline)
  }
}

/**
 * Reads the row at most every `intervalMillis` until `done` says it has moved on (another process
 * is working on it), or the deadline passes (`None`). Costs ledger reads only, no provider requests.
 */
export const followLedger = (
  context: ClientContext,
  taskKey: string,
  done: (record: TaskRecord, now: number) => boolean,
  intervalMillis: number,
  deadlineAt: number
): Effect.Effect<Option.Option<TaskRecord>, LedgerError | UnknownTask> =>
  Effect.gen(function* () {
    for (;;) {
      const row = yield* context.ledger.get(taskKey)
      if (Option.isNone(row)) return yield* new UnknownTask({ reference: taskKey })
      const now = yield* Clock.currentTimeMillis
      if (done(row.value, now)) return row
      if (now >= deadlineAt) return Option.none()
      const leaseEnd = row.value.leaseExpiresAt ?? now
      const wakeAt = Math.min(deadlineAt, now + intervalMillis, leaseEnd > now ? leaseEnd : now + intervalMillis)
      yield* Effect.sleep(Duration.millis(Math.max(1, wakeAt - now)))
    }
  })

/**
 * Joins the fiber running for `key`, or runs `effect` as that fiber and joins it: concurrent
 * callers of one key share one run. (`FiberMap.run` with `onlyIfMissing` returns an interrupted
 * fiber for a key already present, which would interrupt the second caller instead.) The look-up
 * and the insert happen in one synchronous step, so two callers never both start a run.
 */
export const joinOrRun = <K, A, E>(
  map: FiberMap.FiberMap<K, A, E>,
  key: K,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.withFiberRuntime<Fiber.RuntimeFiber<A, E>>((parent) => {
    const existing = FiberMap.unsafeGet(map, key)
    if (Option.isSome(existing)) return Effect.succeed(existing.value)
    // Like FiberMap.run: the caller's services and fiber refs, default (interruptible) flags.
    const runtime = Runtime.make({
      context: parent.currentContext,
      fiberRefs: parent.getFiberRefs(),
      runtimeFlags: Runtime.defaultRuntime.runtimeFlags
    })
    const fiber = Runtime.runFork(runtime)(effect)
    FiberMap.unsafeSet(map, key, fiber)
    return Effect.succeed(fiber)
  }).pipe(Effect.flatMap(Fiber.join))

/**
 * The same error with the provider's secrets cut out of its message (same class, same other
 * fields), so a provider error that echoes an API key is never returned, printed or traced as is.
 */
export const redactError = <E extends { readonly message: string }>(redact: (text: string) => string, error: E): E => {
  const message = redact(error.message)
  if (message === error.message) return error
  const copy: E = Object.assign(Object.create(Object.getPrototypeOf(error)), error)
  Object.defineProperty(copy, "message", { value: message, enumerable: true, writable: true, configurable: true })
  return copy
}
