/**
 * What a provider knows: how to check and encode an input, submit it, and read a status. A
 * provider never waits, loops or sleeps; all timing and durability lives in `TaskClient`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { CallbackRejected, DecodeError, InvalidInput, ProviderError } from "./TaskError.js"
import type { TaskStatus } from "./TaskStatus.js"

/** What a caller asks to start: the model input plus everything else that shapes the paid request. */
export interface StartRequest {
  /** The caller's model input, unchecked. */
  readonly input: unknown
  /** Where the provider should POST completion (callback mode), when callbacks are used. */
  readonly callbackUrl?: string | undefined
  /** Transport-specific options (e.g. apixo's routing `provider`), checked by the provider's gate. */
  readonly options?: Readonly<Record<string, unknown>> | undefined
}

/** The exact paid request a submit sends (headers such as auth are added by the transport). */
export class WireRequest extends Schema.Class<WireRequest>("@reelkit/core/WireRequest")({
  method: Schema.Literal("POST"),
  /** Path under the transport's base URL, e.g. `/api/v1/generateTask/vidu-q3`. */
  path: Schema.String,
  /** The JSON body, exactly as sent. */
  body: Schema.Unknown
}) {}

/**
 * A field the caller set that the transport cannot carry: reported, never silently dropped. A
 * field that must not be lost is an `InvalidInput` instead.
 */
export interface Warning {
  /** The field's path as the caller wrote it, e.g. `input.bgm`. */
  readonly field: string
  readonly message: string
}

/** A start request that passed the provider's gate: nothing about it can be refused as invalid any more. */
export interface PreparedRequest {
  /** The model input in wire form: what the ledger stores and what idempotency compares. */
  readonly input: unknown
  /** The exact request `submit` sends; stored in the ledger row so a recovery sends the same bytes. */
  readonly wire: WireRequest
  /** Seconds this request will be billed for (e.g. the video duration), when the provider knows. */
  readonly billableSeconds?: number | undefined
  /** Fields the transport could not carry. */
  readonly warnings?: ReadonlyArray<Warning> | undefined
}

/** One paid submit of a prepared request. */
export interface SubmitRequest {
  /** Our own key for the task, stable across retries. */
  readonly taskKey: string
  /** The request `prepare` returned (as stored in the ledger). */
  readonly wire: WireRequest
}

/** The provider accepted the task. */
export interface SubmitAccepted {
  readonly remoteTaskId: string
}

/** What a callback body claims. A hint only: core confirms it with `status` before acting. */
export interface CallbackHint {
  readonly remoteTaskId: string
  readonly status: TaskStatus
}

/**
 * One callback delivery as the handler received it, for a provider whose callbacks are signed.
 * `url` is the callback URL this task was given (what the provider signs), not the URL the
 * request arrived on, which a proxy or a mount prefix may have changed.
 */
export interface CallbackDelivery {
  readonly method: string
  /** The task's callback URL as handed to the provider. */
  readonly url: string
  /** Request headers, names lower-cased. */
  readonly headers: Readonly<Record<string, string | undefined>>
  /** The raw body text. */
  readonly body: string
}

/** When to poll a task of this model. Every field is overridable per call. */
export interface PollPlan {
  /** Delay between submit and the first status request. */
  readonly firstPollAfter: Duration.Duration
  /** Delay between later status requests. */
  readonly interval: Duration.Duration
  /** How long `wait` keeps waiting before `DeadlineExceeded`. */
  readonly deadline: Duration.Duration
}

/** Defaults core uses for this model. */
export interface ProviderHints {
  readonly pollPlan: PollPlan
  /** How long result URLs stay valid after completion. */
  readonly resultRetention: Duration.Duration
}

/** A provider for one model. */
export interface Service {
  /** The transport's id, e.g. `apixo`. */
  readonly providerId: string
  /** The model's id, e.g. `vidu-q3`. */
  readonly modelId: string
  /**
   * The validation gate: checks the whole start request (input, callback URL, transport options)
   * and returns the exact wire request. Sends nothing; core calls it before any ledger row exists.
   */
  readonly prepare: (request: StartRequest) => Effect.Effect<PreparedRequest, InvalidInput>
  /** Sends one paid submit of a prepared request. Never retried here: core decides. */
  readonly submit: (request: SubmitRequest) => Effect.Effect<SubmitAccepted, ProviderError>
  /** Reads a task's status once. */
  readonly status: (remoteTaskId: string) => Effect.Effect<TaskStatus, ProviderError>
  /** Reads a callback body, when the provider supports callbacks. */
  readonly parseCallback?: ((body: unknown) => Effect.Effect<CallbackHint, DecodeError>) | undefined
  /**
   * Checks a delivery's signature, when the provider signs its callbacks (after the handler's own
   * URL-token check, before the body is read as a hint). A refusal changes nothing.
   */
  readonly verifyCallback?: ((delivery: CallbackDelivery) => Effect.Effect<void, CallbackRejected>) | undefined
  /** Cancels a task, when the provider supports it. */
  readonly cancel?: ((remoteTaskId: string) => Effect.Effect<void, ProviderError>) | undefined
  readonly hints: ProviderHints
  /**
   * Removes this provider's secrets (API keys) from a provider-supplied text. Core applies it to
   * every such text (fail messages, error messages) before it is stored, printed or traced; a
   * transport applies it at its own boundary too.
   */
  readonly redact?: ((text: string) => string) | undefined
}

/** The provider service. Swap providers by providing another layer of this tag. */
export class TaskProvider extends Context.Tag("@reelkit/core/TaskProvider")<TaskProvider, Service>() {}

/** Poll plan for providers that give no advice: first poll after 10 s, every 5 s, give up after 1 h. */
export const defaultPollPlan: PollPlan = {
  firstPollAfter: Duration.seconds(10),
  interval: Duration.seconds(5),
  deadline: Duration.hours(1)
}

/** Replaces every occurrence of each secret in `text` with `[redacted]` (secrets shorter than 4 characters are ignored). */
export const redactSecrets =
  (secrets: ReadonlyArray<string>) =>
  (text: string): string => {
    let out = text
    for (const secret of secrets) {
      if (secret.length >= 4) out = out.split(secret).join("[redacted]")
    }
    return out
  }
