/**
 * What a provider knows: how to check and encode an input, submit it, and read a status. A
 * provider never waits, loops or sleeps; all timing and durability lives in `TaskClient`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { DecodeError, InvalidInput, ProviderError } from "./TaskError.js"
import type { TaskStatus } from "./TaskStatus.js"

/** An input that passed the model's rules, in the exact form sent on the wire. */
export interface PreparedInput {
  /** JSON-safe wire form of the input; stored in the ledger and sent as is. */
  readonly wire: unknown
  /** Seconds this input will be billed for (e.g. the video duration), when the provider knows. */
  readonly billableSeconds?: number | undefined
}

/** One paid submit. */
export interface SubmitRequest {
  /** Our own key for the task, stable across retries. */
  readonly taskKey: string
  /** The prepared wire input. */
  readonly input: unknown
  /** Where the provider should POST completion, when callbacks are used. */
  readonly callbackUrl?: string | undefined
  /** Transport-specific options (e.g. apixo's routing `provider`), passed through untouched. */
  readonly options?: Readonly<Record<string, unknown>> | undefined
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
  /** Checks the caller's input against the model's rules and encodes it. Sends nothing. */
  readonly prepare: (input: unknown) => Effect.Effect<PreparedInput, InvalidInput>
  /** Sends one paid submit. Never retried here: core decides. */
  readonly submit: (request: SubmitRequest) => Effect.Effect<SubmitAccepted, ProviderError>
  /** Reads a task's status once. */
  readonly status: (remoteTaskId: string) => Effect.Effect<TaskStatus, ProviderError>
  /** Reads a callback body, when the provider supports callbacks. */
  readonly parseCallback?: ((body: unknown) => Effect.Effect<CallbackHint, DecodeError>) | undefined
  /** Cancels a task, when the provider supports it. */
  readonly cancel?: ((remoteTaskId: string) => Effect.Effect<void, ProviderError>) | undefined
  readonly hints: ProviderHints
}

/** The provider service. Swap providers by providing another layer of this tag. */
export class TaskProvider extends Context.Tag("@reelkit/core/TaskProvider")<TaskProvider, Service>() {}

/** Poll plan for providers that give no advice: first poll after 10 s, every 5 s, give up after 1 h. */
export const defaultPollPlan: PollPlan = {
  firstPollAfter: Duration.seconds(10),
  interval: Duration.seconds(5),
  deadline: Duration.hours(1)
}
