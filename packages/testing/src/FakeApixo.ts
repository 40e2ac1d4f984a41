/**
 * A fake apixo.ai server on a real socket. It speaks the apixo protocol for any model id
 * (generateTask, statusTask, result downloads, callbacks), checks keys, validates inputs with the
 * model's schema when one is registered, bills per second against a balance, enforces the rate and
 * concurrency limits, moves tasks along on Effect's `Clock` (so `TestClock` drives it), serves a
 * real MP4 as the result, injects faults by rule, and records everything it saw.
 *
 * Use it from Effect (`layer`, `make`) or from plain Node (`start`).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { createHash } from "node:crypto"
import { findSampleVideo } from "./internal/fakeApixoFixture.js"
import * as server from "./internal/fakeApixoServer.js"

/** The API key the fake accepts when `apiKeys` is not given. */
export const defaultApiKey = "test-key"

/** A route of the fake, as fault rules name it. `callback` is the fake's own POST to `callback_url`. */
export type Route = "generate" | "status" | "download" | "callback"

/** Answer with this 5xx. Before the task is created, unless `afterCreate` (the task exists and is billed). */
export interface Status5xx {
  readonly _tag: "Status5xx"
  readonly status: number
  readonly afterCreate: boolean
}
/** Answer 429, with `Retry-After: <seconds>` when given. Nothing is created. */
export interface RateLimit {
  readonly _tag: "RateLimit"
  readonly retryAfterSeconds: number | undefined
}
/** Do the work, then wait `delay` on the Clock before answering (before sending, for a callback). */
export interface Slow {
  readonly _tag: "Slow"
  readonly delay: Duration.DurationInput
}
/** Destroy the connection before anything is created. */
export interface ResetBeforeCreate {
  readonly _tag: "ResetBeforeCreate"
}
/** Create (and bill) the task, then destroy the connection instead of answering. */
export interface ResetAfterCreate {
  readonly _tag: "ResetAfterCreate"
}
/** Do the work, then answer 200 with a body that is not JSON (a callback sends such a body). */
export interface MalformedJson {
  readonly _tag: "MalformedJson"
}
/** Answer `state: "success"` with a `resultJson` string that is not valid JSON. */
export interface MalformedResultJson {
  readonly _tag: "MalformedResultJson"
}
/** Answer a state the protocol does not define. */
export interface UnknownState {
  readonly _tag: "UnknownState"
  readonly state: string
}
/** Announce the whole file in `Content-Length`, send `bytes` bytes, then destroy the connection. */
export interface TruncatedDownload {
  readonly _tag: "TruncatedDownload"
  readonly bytes: number
}
/** Lose this callback: it is never sent (recorded with outcome `dropped`). */
export interface DropCallback {
  readonly _tag: "DropCallback"
}

/** A fault the fake can inject. */
export type Fault =
  | Status5xx
  | RateLimit
  | Slow
  | ResetBeforeCreate
  | ResetAfterCreate
  | MalformedJson
  | MalformedResultJson
  | UnknownState
  | TruncatedDownload
  | DropCallback

/** A 5xx answer (500 by default); `afterCreate` creates and bills the task first. */
export const status5xx = (status = 500, options?: { readonly afterCreate?: boolean | undefined }): Status5xx => ({
  _tag: "Status5xx",
  status,
  afterCreate: options?.afterCreate ?? false
})
/** A 429 answer, with `Retry-After` in seconds when given. */
export const rateLimit = (retryAfterSeconds?: number): RateLimit => ({ _tag: "RateLimit", retryAfterSeconds })
/** A slow answer: the work is done, the answer waits `delay` on the Clock. */
export const slow = (delay: Duration.DurationInput): Slow => ({ _tag: "Slow", delay })
/** The connection is destroyed before the task is created. */
export const resetBeforeCreate: ResetBeforeCreate = { _tag: "ResetBeforeCreate" }
/** The task is created and billed, then the connection is destroyed before the answer. */
export const resetAfterCreate: ResetAfterCreate = { _tag: "ResetAfterCreate" }
/** The answer (or callback body) is not JSON. */
export const malformedJson: MalformedJson = { _tag: "MalformedJson" }
/** The status (or callback) says success with a `resultJson` that does not parse. */
export const malformedResultJson: MalformedResultJson = { _tag: "MalformedResultJson" }
/** The status (or callback) reports the state `state`. */
export const unknownState = (state: string): UnknownState => ({ _tag: "UnknownState", state })
/** The download stops after `bytes` bytes although `Content-Length` announced the whole file. */
export const truncatedDownload = (bytes: number): TruncatedDownload => ({ _tag: "TruncatedDownload", bytes })
/** The callback is lost. */
export const dropCallback: DropCallback = { _tag: "DropCallback" }

/**
 * Which requests a fault applies to. Each rule counts the requests matching `route` and `modelId`
 * that reach it (generate and status once past the key and rate checks; downloads and callbacks
 * always) as 1, 2, 3, ...: with `nth` it fires on those numbers only, with `every` on each
 * multiple, otherwise on all of them; `times` caps how often it fires. The first rule that fires wins.
 */
export interface FaultMatch {
  readonly route: Route | ReadonlyArray<Route>
  readonly modelId?: string | undefined
  readonly nth?: number | ReadonlyArray<number> | undefined
  readonly every?: number | undefined
  readonly times?: number | undefined
}

/** A fault and the requests it applies to. */
export interface FaultRule {
  readonly match: FaultMatch
  readonly fault: Fault
}

/** How a task ends. */
export type Outcome =
  | { readonly _tag: "Success"; readonly resultCount: number }
  | { readonly _tag: "Failed"; readonly failCode: string; readonly failMsg: string }

/** The task succeeds with `resultCount` result URLs (1 by default). */
export const success = (resultCount = 1): Outcome => ({ _tag: "Success", resultCount })
/** The task fails with this apixo `failCode` and message. */
export const failure = (failCode: string, failMsg = "Generation failed"): Outcome => ({
  _tag: "Failed",
  failCode,
  failMsg
})

/** When a task moves on, counted from its creation. */
export interface Timings {
  /** From `pending` to `processing` (default 1 s). */
  readonly processingAfter?: Duration.DurationInput | undefined
  /** From creation to `success` or `failed` (default 5 s). */
  readonly completeAfter?: Duration.DurationInput | undefined
}

/** An accepted submit, as the per-task options (`timings`, `outcome`) see it. */
export interface TaskRequest {
  readonly modelId: string
  readonly input: Readonly<Record<string, unknown>>
  readonly requestType: "async" | "callback"
  readonly callbackUrl: string | undefined
  readonly provider: string | undefined
  /** 1 for the first task this fake creates, then 2, 3, ...; 0 for a task rebuilt by `recoverTasks`. */
  readonly sequence: number
}

/** A value, or a function of the task it applies to. */
export type PerTask<A> = A | ((task: TaskRequest) => A)

/** What the fake knows about one model id. Every field is optional. */
export interface ModelOptions {
  /** Checks `input`: the schema's encoded side is the wire input. A failure answers 400. */
  readonly inputSchema?: Schema.Schema<any, any, never> | undefined
  readonly timings?: PerTask<Timings> | undefined
  readonly outcome?: PerTask<Outcome> | undefined
  /** Seconds to bill (default: `input.duration` when a positive number, else `defaultDurationSeconds`). */
  readonly billableSeconds?: ((input: Readonly<Record<string, unknown>>) => number) | undefined
}

/** How callbacks are delivered. */
export interface CallbackOptions {
  /** Extra delay after completion before the first POST (default 0). */
  readonly delay?: Duration.DurationInput | undefined
  /** Extra copies of each callback, sent after the first (default 0). */
  readonly duplicates?: number | undefined
  /** Delay between copies (default 1 s). */
  readonly duplicateDelay?: Duration.DurationInput | undefined
  /** Retries when the receiver does not answer 2xx (default 3), after 1x, 2x, 4x `retryDelay`. */
  readonly retries?: number | undefined
  /** First retry delay (default 1 s), counted from the failure. */
  readonly retryDelay?: Duration.DurationInput | undefined
  /** How long a POST may go unanswered before it counts as failed and is retried (default 30 s, apixo's limit). */
  readonly timeout?: Duration.DurationInput | undefined
}

/** Options of the fake. Every field is optional. */
export interface Options {
  /** Port to listen on (default 0: any free port). */
  readonly port?: number | undefined
  /** Interface to listen on (default 127.0.0.1). */
  readonly host?: string | undefined
  /** Accepted Bearer keys (default `["test-key"]`). */
  readonly apiKeys?: ReadonlyArray<string> | undefined
  /** Per-model schemas, timings, outcomes and billing. Unlisted model ids use the defaults. */
  readonly models?: Readonly<Record<string, ModelOptions>> | undefined
  /** Answer 404 for model ids not listed in `models` (default false: any model id is served). */
  readonly strictModels?: boolean | undefined
  /** Seconds of generation the account can pay for (default unlimited). */
  readonly balanceSeconds?: number | undefined
  /** Seconds billed for an input without a numeric `duration` (default 5). */
  readonly defaultDurationSeconds?: number | undefined
  /** Requests (generate and status) per key in any sliding `rateWindow` (default 60). */
  readonly requestsPerMinute?: number | undefined
  /** The sliding window of `requestsPerMinute` (default one minute; shorter to scale a test down in time). */
  readonly rateWindow?: Duration.DurationInput | undefined
  /** Unfinished tasks per key (default 10). */
  readonly concurrentTasks?: number | undefined
  /**
   * `Retry-After` on the limits' 429s: `"auto"` (default) sends the seconds until the limit frees,
   * a number sends that many seconds, `"none"` sends no header.
   */
  readonly retryAfter?: number | "auto" | "none" | undefined
  /** Default timings of every task (per model in `models`). */
  readonly timings?: PerTask<Timings> | undefined
  /** Default outcome of every task (default one result URL). */
  readonly outcome?: PerTask<Outcome> | undefined
  /** How long result URLs stay downloadable after completion (default 15 days); 410 after. */
  readonly resultRetention?: Duration.DurationInput | undefined
  readonly callbacks?: CallbackOptions | undefined
  /** Faults from the start; more can be added with `addFault`. */
  readonly faults?: ReadonlyArray<FaultRule> | undefined
  /**
   * Where a 400 puts its text: `"message"` (default, `data: null`) or `"dataError"`
   * (`message: "Bad Request"`, `data: { error }`). Both forms appear in apixo's answers.
   */
  readonly validationErrorStyle?: "message" | "dataError" | undefined
  /** The bytes served as every result (default the package's sample MP4). */
  readonly video?: Uint8Array | undefined
  /**
   * Answer status requests and downloads for task ids another fake made (default false: 404).
   * A task id carries its creation time and its fake's random tag, so a fake started later (e.g.
   * by the next run of a CLI) answers as if it had created the task then, with the default (or the
   * model's) timings and outcome; per-task functions see an empty `input` and `sequence` 0. Such
   * tasks are not listed in `tasks`, are not billed again, and send no callbacks.
   */
  readonly recoverTasks?: boolean | undefined
}

/** The routes a request can hit; `other` is any path the fake does not serve. */
export type RequestRoute = "generate" | "status" | "download" | "other"

/** One HTTP request the fake received. Keys appear only as fingerprints. */
export interface RequestRecord {
  /** 1 for the first request, then 2, 3, ... */
  readonly sequence: number
  readonly method: string
  /** Path and query string. */
  readonly path: string
  readonly route: RequestRoute
  readonly modelId: string | undefined
  /** The task concerned: the one created (generate), asked about (status) or downloaded. */
  readonly taskId: string | undefined
  /** Whether an `Authorization` header was sent at all (result downloads should carry none). */
  readonly authorizationSent: boolean
  /** Fingerprint of the Bearer key presented, if any (see `fingerprint`). */
  readonly keyFingerprint: string | undefined
  /** Whether the key is one the fake accepts. */
  readonly authorized: boolean
  /** Clock time of arrival, in epoch milliseconds. */
  readonly at: number
  /** HTTP status answered; undefined while pending or when the connection was destroyed. */
  readonly status: number | undefined
  /** The fault applied, if any. */
  readonly fault: Fault["_tag"] | undefined
}

/** A task the fake created (and billed). */
export interface TaskRecord {
  /**
   * Opaque, unique across fake instances (it carries a random part of the instance that made it),
   * like apixo's own ids; do not parse it.
   */
  readonly taskId: string
  readonly modelId: string
  readonly keyFingerprint: string
  readonly input: Readonly<Record<string, unknown>>
  readonly requestType: "async" | "callback"
  readonly callbackUrl: string | undefined
  readonly provider: string | undefined
  readonly createdAt: number
  readonly processingAt: number
  readonly completedAt: number
  readonly outcome: Outcome
  readonly billedSeconds: number
  readonly resultUrls: ReadonlyArray<string>
}

/** One charge against the balance. */
export interface BillRecord {
  readonly taskId: string
  readonly modelId: string
  readonly keyFingerprint: string
  readonly seconds: number
  readonly at: number
  readonly balanceAfter: number
}

/** One callback POST the fake made, or lost on purpose. */
export interface CallbackRecord {
  /** 1 for the first callback, then 2, 3, ... (what `nth`/`every` count on the `callback` route). */
  readonly sequence: number
  readonly taskId: string
  readonly url: string
  /** The body as sent (normally the status envelope as JSON). */
  readonly body: string
  /** 0 for the original, 1.. for duplicates. */
  readonly copy: number
  /** 1 for the first attempt, more for retries after a failed delivery. */
  readonly attempt: number
  readonly at: number
  /** `delivered` (2xx), `failed` (another status or a connection error), `dropped` (never sent). */
  readonly outcome: "delivered" | "failed" | "dropped"
  /** The receiver's HTTP status, when it answered. */
  readonly status: number | undefined
  readonly error: string | undefined
}

/** The running fake: its address, recordings and controls. */
export interface Service {
  /** Base URL, e.g. `http://127.0.0.1:43123` (no trailing slash). */
  readonly url: string
  readonly port: number
  /** The first accepted key, for wiring a client. */
  readonly apiKey: Redacted.Redacted<string>
  /** Every request received, in order (a snapshot). */
  readonly requests: ReadonlyArray<RequestRecord>
  /** Every task created, in order (a snapshot). */
  readonly tasks: ReadonlyArray<TaskRecord>
  /** Every bill, in order (a snapshot). */
  readonly bills: ReadonlyArray<BillRecord>
  /** Every callback sent or dropped, in order (a snapshot). */
  readonly callbacks: ReadonlyArray<CallbackRecord>
  /** The remaining balance, in seconds. */
  readonly balanceSeconds: number
  /** Sets the remaining balance. */
  readonly setBalance: (seconds: number) => void
  /** Adds a fault rule, after those already present. */
  readonly addFault: (rule: FaultRule) => void
  /** Removes every fault rule. */
  readonly clearFaults: () => void
  /** The URL of a task's `index`-th result. */
  readonly resultUrl: (taskId: string, index?: number) => string
  /** Seconds billed in total, or for one task. */
  readonly billedSeconds: (taskId?: string) => number
  /**
   * The most generate and status requests one key sent in any sliding window (`rateWindow` by default),
   * counting every request, refused or not: "never over the rate limit" is `<= 60`.
   */
  readonly maxRequestsPerWindow: (options?: {
    readonly window?: Duration.DurationInput | undefined
    readonly keyFingerprint?: string | undefined
  }) => number
  /** The most tasks of one key that were unfinished at the same moment. */
  readonly maxConcurrentTasks: (keyFingerprint?: string) => number
  /** Waits (without time) until the predicate holds; re-checked after every recorded event. */
  readonly waitUntil: (predicate: (fake: Service) => boolean) => Effect.Effect<void>
  /** Waits until at least `count` requests have arrived (answered or not: see each record's `status`). */
  readonly awaitRequests: (count: number) => Effect.Effect<ReadonlyArray<RequestRecord>>
  /** Waits until at least `count` callbacks were recorded (sent, failed or dropped). */
  readonly awaitCallbacks: (count: number) => Effect.Effect<ReadonlyArray<CallbackRecord>>
}

/** A fake started from plain Node, with `close` to stop it. */
export interface Running extends Service {
  readonly close: () => Promise<void>
}

/** The fake could not start (e.g. the port is taken, or the video fixture is missing). */
export class FakeApixoError extends Schema.TaggedError<FakeApixoError>("@reelkit/testing/FakeApixoError")(
  "FakeApixoError",
  { message: Schema.String, cause: Schema.optional(Schema.Defect) }
) {}

/** The running fake, as a service. */
export class FakeApixo extends Context.Tag("@reelkit/testing/FakeApixo")<FakeApixo, Service>() {}

/** A short, stable fingerprint of an API key, safe to print: `sha256:` and 12 hex digits. */
export const fingerprint = (apiKey: string): string =>
  `sha256:${createHash("sha256").update(apiKey).digest("hex").slice(0, 12)}`

/** Absolute path of the small playable MP4 (H.264, 320x180, 2 s) the fake serves as every result. */
export const sampleVideoPath = (): string => findSampleVideo()

/** Starts the fake in the current scope; time comes from the Clock of the calling fiber. */
export const make = (options: Options = {}): Effect.Effect<Service, FakeApixoError, Scope.Scope> =>
  server.make(options, { fingerprint, makeError: (message, cause) => new FakeApixoError({ message, cause }) })

/** A scoped layer running the fake; built in a test, it runs on that test's `TestClock`. */
export const layer = (options: Options = {}): Layer.Layer<FakeApixo, FakeApixoError> =>
  Layer.scoped(FakeApixo, make(options))

/** Starts the fake from plain Node, on the live clock. `close()` stops it. */
export const start = (options: Options = {}): Promise<Running> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const service = yield* make(options).pipe(
        Scope.extend(scope),
        Effect.onError(() => Scope.close(scope, Exit.void))
      )
      const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
      return Object.assign(service, { close }) as Running
    }).pipe(Effect.either)
  ).then((result) => {
    // Reject with the FakeApixoError itself, not Effect's FiberFailure wrapper.
    if (result._tag === "Left") throw result.left
    return result.right
  })
