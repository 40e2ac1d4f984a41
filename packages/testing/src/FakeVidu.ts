/**
 * A fake official Vidu API on a real socket. It serves `POST /ent/v2/text2video`, `/img2video`
 * and `/start-end2video`, `GET /ent/v2/tasks/{id}/creations`, `POST /ent/v2/tasks/{id}/cancel`
 * and result downloads; checks `Authorization: Token <key>`; validates bodies as Vidu documents
 * them (models `viduq3-pro`/`viduq3-turbo`, image counts per endpoint, no unknown fields); bills
 * credits against a balance; enforces request and concurrency limits; moves tasks along
 * `created -> queueing -> processing -> success | failed` on Effect's `Clock` (so `TestClock`
 * drives it); cancels tasks that have not started (`failed` with `UserCancelled`); POSTs signed
 * callbacks (`X-HMAC-SIGNATURE` under the task's key, `Date`, `x-request-nonce`); and takes the
 * same fault rules as `FakeApixo` and records what it saw the same way.
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
import { createHmac } from "node:crypto"
import type * as FakeApixo from "./FakeApixo.js"
import { fingerprint } from "./FakeApixo.js"
import * as server from "./internal/fakeViduServer.js"

/** The API key the fake accepts when `apiKeys` is not given. */
export const defaultApiKey = "vidu-test-key"

/** A route of the fake, as fault rules name it. `callback` is the fake's own POST to `callback_url`. */
export type Route = "generate" | "status" | "cancel" | "download" | "callback"

/** The Vidu models the fake serves unless `models` says otherwise. */
export const defaultModels: ReadonlyArray<string> = ["viduq3-pro", "viduq3-turbo"]

/** A fault and the requests it applies to (the same faults and counting as `FakeApixo`). */
export interface FaultRule {
  readonly match: {
    readonly route: Route | ReadonlyArray<Route>
    /** The Vidu model of the task (`viduq3-pro`, ...). */
    readonly modelId?: string | undefined
    readonly nth?: number | ReadonlyArray<number> | undefined
    readonly every?: number | undefined
    readonly times?: number | undefined
  }
  readonly fault: FakeApixo.Fault
}

/** Options of the fake. Every field is optional. */
export interface Options {
  /** Port to listen on (default 0: any free port). */
  readonly port?: number | undefined
  /** Interface to listen on (default 127.0.0.1). */
  readonly host?: string | undefined
  /** Accepted Token keys (default `["vidu-test-key"]`). */
  readonly apiKeys?: ReadonlyArray<string> | undefined
  /** Vidu model names accepted in `model` (default `viduq3-pro`, `viduq3-turbo`). */
  readonly models?: ReadonlyArray<string> | undefined
  /** Credits the account holds (default unlimited). */
  readonly balanceCredits?: number | undefined
  /** Credits billed per second of `duration` (default 1); `duration` defaults to 5 as on Vidu. */
  readonly creditsPerSecond?: number | undefined
  /** Requests (submits, queries, cancels) per key in any sliding 60 s window (default 60). */
  readonly requestsPerMinute?: number | undefined
  /** Unfinished tasks per key (default 10). */
  readonly concurrentTasks?: number | undefined
  /** `Retry-After` on the limits' 429s: `"auto"` (default), a number of seconds, or `"none"`. */
  readonly retryAfter?: number | "auto" | "none" | undefined
  /** When tasks move on (`processingAfter`: queueing to processing; `completeAfter`: to the end). */
  readonly timings?: FakeApixo.Timings | undefined
  /** How every task ends (default one result), or a function of its submit body. */
  readonly outcome?: FakeApixo.Outcome | ((body: Readonly<Record<string, unknown>>) => FakeApixo.Outcome) | undefined
  /** How long result URLs stay downloadable after completion (default 24 hours); 410 after. */
  readonly resultRetention?: Duration.DurationInput | undefined
  /**
   * Callbacks: as `FakeApixo`'s; a duplicate is a byte-for-byte replay of the delivery (same
   * `Date`, nonce and signature), a retry after a failed delivery is signed afresh.
   */
  readonly callbacks?: FakeApixo.CallbackOptions | undefined
  /** Faults from the start; more can be added with `addFault`. */
  readonly faults?: ReadonlyArray<FaultRule> | undefined
  /** The bytes served as every result (default the package's sample MP4). */
  readonly video?: Uint8Array | undefined
  /**
   * Answer queries, cancels and downloads for task ids another FakeVidu made (default false: 404),
   * as `FakeApixo`'s `recoverTasks` does: a fake started later (e.g. by the next run of a CLI)
   * answers as if it had created the task then, with the default timings and outcome. Such tasks
   * are not listed in `tasks`, are not billed again, and send no callbacks.
   */
  readonly recoverTasks?: boolean | undefined
}

/** The routes a request can hit; `other` is any path the fake does not serve. */
export type RequestRoute = "generate" | "status" | "cancel" | "download" | "other"

/** One HTTP request the fake received. Keys appear only as fingerprints. */
export interface RequestRecord {
  readonly sequence: number
  readonly method: string
  /** Path and query string. */
  readonly path: string
  readonly route: RequestRoute
  /** The submit endpoint (`text2video`, `img2video`, `start-end2video`) of a generate request. */
  readonly endpoint: string | undefined
  /** The task concerned: created, queried, cancelled or downloaded. */
  readonly taskId: string | undefined
  /** The raw body of a POST. */
  readonly body: string | undefined
  readonly authorizationSent: boolean
  /** Fingerprint of the Token key presented (`FakeApixo.fingerprint`). */
  readonly keyFingerprint: string | undefined
  readonly authorized: boolean
  /** Clock time of arrival, epoch milliseconds. */
  readonly at: number
  /** HTTP status answered; undefined while pending or when the connection was destroyed. */
  readonly status: number | undefined
  readonly fault: FakeApixo.Fault["_tag"] | undefined
}

/** A task the fake created (and billed). */
export interface TaskRecord {
  readonly taskId: string
  readonly endpoint: string
  readonly model: string
  readonly keyFingerprint: string
  /** The submit body as received (parsed). */
  readonly body: Readonly<Record<string, unknown>>
  readonly callbackUrl: string | undefined
  readonly createdAt: number
  readonly processingAt: number
  /** When it ended (success, failure or cancel). */
  readonly completedAt: number
  readonly outcome: FakeApixo.Outcome
  readonly credits: number
  readonly resultUrls: ReadonlyArray<string>
  /** When it was cancelled, if it was. */
  readonly cancelledAt: number | undefined
}

/** One charge against the balance (a cancel refunds it: a second record with negative credits). */
export interface BillRecord {
  readonly taskId: string
  readonly model: string
  readonly keyFingerprint: string
  readonly credits: number
  readonly at: number
  readonly balanceAfter: number
}

/** One callback POST the fake made, or lost on purpose. */
export interface CallbackRecord extends FakeApixo.CallbackRecord {
  /** The signature headers sent. */
  readonly headers: Readonly<Record<string, string>>
}

/** The running fake. */
export interface Service {
  /** Base URL of the API, e.g. `http://127.0.0.1:43123/ent/v2` (no trailing slash). */
  readonly url: string
  readonly port: number
  /** The first accepted key. */
  readonly apiKey: Redacted.Redacted<string>
  readonly requests: ReadonlyArray<RequestRecord>
  readonly tasks: ReadonlyArray<TaskRecord>
  readonly bills: ReadonlyArray<BillRecord>
  readonly callbacks: ReadonlyArray<CallbackRecord>
  readonly balanceCredits: number
  readonly setBalance: (credits: number) => void
  readonly addFault: (rule: FaultRule) => void
  readonly clearFaults: () => void
  /** The URL of a task's `index`-th result. */
  readonly resultUrl: (taskId: string, index?: number) => string
  /** The most submit/query/cancel requests one key sent in any sliding window (60 s by default). */
  readonly maxRequestsPerWindow: (options?: { readonly window?: Duration.DurationInput | undefined }) => number
  /** Waits (without time) until the predicate holds; re-checked after every recorded event. */
  readonly waitUntil: (predicate: (fake: Service) => boolean) => Effect.Effect<void>
  readonly awaitRequests: (count: number) => Effect.Effect<ReadonlyArray<RequestRecord>>
  readonly awaitCallbacks: (count: number) => Effect.Effect<ReadonlyArray<CallbackRecord>>
}

/** The fake could not start. */
export class FakeViduError extends Schema.TaggedError<FakeViduError>("@reelkit/testing/FakeViduError")(
  "FakeViduError",
  { message: Schema.String, cause: Schema.optional(Schema.Defect) }
) {}

/** The running fake, as a service. */
export class FakeVidu extends Context.Tag("@reelkit/testing/FakeVidu")<FakeVidu, Service>() {}

/** What a signed callback delivery carries besides its body. */
export interface Signing {
  readonly apiKey: string
  readonly method?: string | undefined
  /** The callback URL (its path and query are signed). */
  readonly url: string
  /** The `Date` header value (an HTTP date). */
  readonly date: string
  readonly nonce: string
}

/**
 * The headers of a signed delivery, computed as Vidu documents (independently of `@reelkit/vidu`,
 * so each checks the other): `Date`, `x-request-nonce`, `X-HMAC-SIGNED-HEADERS: Date;x-request-nonce`,
 * `X-HMAC-ALGORITHM`, `X-HMAC-ACCESS-KEY` and `X-HMAC-SIGNATURE`. Tests use it to forge and replay.
 */
export const signedHeaders = (signing: Signing): Record<string, string> => {
  const url = new URL(signing.url)
  const text =
    [(signing.method ?? "POST").toUpperCase(), url.pathname || "/", url.search.replace(/^\?/, ""), "vidu", signing.date]
      .map((line) => `${line}\n`)
      .join("") + `Date:${signing.date}\nx-request-nonce:${signing.nonce}\n`
  return {
    date: signing.date,
    "x-request-nonce": signing.nonce,
    "x-hmac-signed-headers": "Date;x-request-nonce",
    "x-hmac-algorithm": "hmac-sha256",
    "x-hmac-access-key": "vidu",
    "x-hmac-signature": createHmac("sha256", signing.apiKey).update(text, "utf8").digest("base64")
  }
}

/** Starts the fake in the current scope; time comes from the Clock of the calling fiber. */
export const make = (options: Options = {}): Effect.Effect<Service, FakeViduError, Scope.Scope> =>
  server.make(options, {
    fingerprint,
    signedHeaders,
    makeError: (message, cause) => new FakeViduError({ message, cause })
  })

/** A scoped layer running the fake; built in a test, it runs on that test's `TestClock`. */
export const layer = (options: Options = {}): Layer.Layer<FakeVidu, FakeViduError> =>
  Layer.scoped(FakeVidu, make(options))

/** A fake started from plain Node, with `close` to stop it. */
export interface Running extends Service {
  readonly close: () => Promise<void>
}

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
    // Reject with the FakeViduError itself, not Effect's FiberFailure wrapper.
    if (result._tag === "Left") throw result.left
    return result.right
  })
