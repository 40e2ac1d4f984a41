/**
 * The task lifecycle as data and pure functions: the one place that says what a ledger row means.
 * Every state, the allowed transitions, what a provider status does to a row, what a row means to
 * a caller, and what recovery must do with a row after a crash. `TaskClient`, the callback
 * handler, the CLI and the cluster workflow all ask this module; none of them switches on
 * `record.state` by itself.
 *
 * States users see (CLI `--json`, web, `TaskEvent`):
 * - `queued`: the row is written and the paid submit has provably not been sent (waiting for the
 *   budget, a retry, or a process to send it).
 * - `sending`: the submit may be on the wire; only this state can have created a task we do not
 *   know about.
 * - `submitted`, `pending`, `processing`: the provider has the task.
 * - `succeeded`: the provider finished it; outputs are being stored.
 * - `completed`: outputs stored (or no result storage configured). Terminal.
 * - `failed`: the provider reported failure. Terminal.
 * - `rejected`: the submit was refused and the refusal proves nothing was created. Terminal.
 * - `ambiguous`: a submit's outcome is unknown; never re-sent automatically. Terminal until a
 *   confirmed callback or the caller's `resubmit` resolves it.
 * - `cancelled`: the provider confirmed a cancel. Terminal.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import type { TaskRecord, TaskPatch } from "./TaskLedger.js"
import type { TaskStatus } from "./TaskStatus.js"

/** Every state a task row can be in. */
export const State = Schema.Literal(
  "queued",
  "sending",
  "submitted",
  "pending",
  "processing",
  "succeeded",
  "completed",
  "failed",
  "rejected",
  "ambiguous",
  "cancelled"
)

/** A task row's state. */
export type State = typeof State.Type

/** Every state, in lifecycle order. */
export const states: ReadonlyArray<State> = State.literals

/**
 * The allowed transitions, as data: `transitions[from]` lists every state a row in `from` may move
 * to. A ledger refuses any other write. A state may "move" to itself (a lease renewal, a retry).
 */
export const transitions: { readonly [From in State]: ReadonlyArray<State> } = {
  // Sending is the only way out of queued that reaches the provider; rejected covers a start
  // refused before sending (e.g. a spend cap), cancelled a caller who gives up on a queued task.
  queued: ["queued", "sending", "rejected", "cancelled"],
  // The answer to a POST: accepted, refused (proves nothing created), unknown, or proven not sent
  // after all (a connect-stage failure) and queued again for a retry.
  sending: ["sending", "queued", "submitted", "rejected", "ambiguous"],
  submitted: ["submitted", "pending", "processing", "succeeded", "failed", "cancelled"],
  pending: ["pending", "processing", "succeeded", "failed", "cancelled"],
  processing: ["processing", "pending", "succeeded", "failed", "cancelled"],
  succeeded: ["succeeded", "completed"],
  completed: ["completed"],
  failed: ["failed"],
  // The caller re-sends a refused task (e.g. after a top-up): it is queued again.
  rejected: ["rejected", "queued"],
  // Resolved by a confirmed callback (submitted), by a confirmed status, or re-sent by the caller.
  ambiguous: ["ambiguous", "queued", "submitted", "pending", "processing", "succeeded", "failed"],
  cancelled: ["cancelled"]
}

/** Whether a row in `from` may move to `to`. */
export const canTransition = (from: State, to: State): boolean => transitions[from].includes(to)

/** The states `to` may be reached from. */
export const sourcesOf = (to: State): ReadonlyArray<State> => states.filter((from) => canTransition(from, to))

/** States in which the provider holds the task and polling applies. */
export const inFlightStates: ReadonlyArray<State> = ["submitted", "pending", "processing"]

/** States of the submit phase. */
export const submitStates: ReadonlyArray<State> = ["queued", "sending"]

/** States no automatic step changes again. */
export const terminalStates: ReadonlyArray<State> = ["completed", "failed", "rejected", "ambiguous", "cancelled"]

/** States recovery (`reconcile`) must look at after a restart. */
export const unfinishedStates: ReadonlyArray<State> = [
  "queued",
  "sending",
  "submitted",
  "pending",
  "processing",
  "succeeded"
]

/** Whether no automatic step will change this state again. */
export const isTerminal = (state: State): boolean => terminalStates.includes(state)

/** Whether the provider holds the task and it is still running. */
export const isInFlight = (state: State): boolean => inFlightStates.includes(state)

/** Whether the row still holds an account concurrency slot (from the submit to a terminal state). */
export const holdsSlot = (state: State): boolean => !isTerminal(state)

// ---- what a status does to a row ----------------------------------------------------------------

/** The effect of one provider status on a row. */
export type StatusEffect =
  /** Nothing to record: the row already says this (no write, no event beyond progress). */
  | { readonly _tag: "Unchanged"; readonly progress: number | undefined }
  /** Write `patch`; the task is still running. */
  | { readonly _tag: "Advance"; readonly patch: TaskPatch; readonly progress: number | undefined }
  /** Write `patch`; the task is finished remotely (`succeeded`, `failed` or `cancelled`). */
  | { readonly _tag: "Finish"; readonly patch: TaskPatch }
  /** The row is past what the status says (e.g. already completed): ignore the status. */
  | { readonly _tag: "Ignore" }

/** Settings the status mapping needs. */
export interface StatusContext {
  /** Now, epoch milliseconds. */
  readonly now: number
  /** How long result URLs stay valid after completion. */
  readonly resultRetention: Duration.DurationInput
  /** At most this many outputs are kept (the rest are dropped before anything is stored). */
  readonly maxOutputs: number
}

const stateOfStatus = (status: TaskStatus): State => {
  switch (status._tag) {
    case "Pending":
      return "pending"
    case "Processing":
      return "processing"
    case "Succeeded":
      return "succeeded"
    case "Failed":
      return "failed"
    case "Cancelled":
      return "cancelled"
  }
}

/** What a provider status does to a row: the patch to write (if any) and whether the task is finished. */
export const applyStatus = (record: TaskRecord, status: TaskStatus, context: StatusContext): StatusEffect => {
  const target = stateOfStatus(status)
  const progress = status._tag === "Processing" ? status.progress : undefined
  if (record.state === target && target !== "succeeded" && target !== "failed" && target !== "cancelled") {
    return { _tag: "Unchanged", progress }
  }
  if (!canTransition(record.state, target) || record.state === target) return { _tag: "Ignore" }
  // A status is about a remote task: it never cancels a row that was not sent (queued is
  // cancelled by the caller's ledger write only).
  if (status._tag === "Cancelled" && !isInFlight(record.state)) return { _tag: "Ignore" }
  switch (status._tag) {
    case "Pending":
    case "Processing":
      return { _tag: "Advance", patch: { state: target }, progress }
    case "Succeeded":
      return {
        _tag: "Finish",
        patch: {
          state: "succeeded",
          resultUrls: status.outputs.slice(0, context.maxOutputs).map((output) => output.url),
          completedAt: status.remoteCompletedAt ?? context.now,
          resultExpiresAt: context.now + Duration.toMillis(context.resultRetention)
        }
      }
    case "Failed":
      return {
        _tag: "Finish",
        patch: {
          state: "failed",
          failCode: status.code,
          failMessage: status.message,
          completedAt: status.remoteCompletedAt ?? context.now
        }
      }
    case "Cancelled":
      // Cancelled as the provider's status says (by our cancel, or from its console): terminal.
      return {
        _tag: "Finish",
        patch: { state: "cancelled", failCode: status.code, completedAt: status.remoteCompletedAt ?? context.now }
      }
  }
}

// ---- what a row means to a caller ---------------------------------------------------------------

/** What a row means to someone waiting for the task. */
export type Outcome =
  /** Outputs stored: the task is done. */
  | { readonly _tag: "Completed" }
  /** The provider reported failure. */
  | { readonly _tag: "Failed"; readonly code: string; readonly message: string }
  /** The submit was refused; nothing was created. */
  | { readonly _tag: "Rejected"; readonly code: string; readonly message: string }
  /** The submit's outcome is unknown; the caller decides (`resubmit` after checking the provider). */
  | { readonly _tag: "Ambiguous"; readonly reason: string }
  /** The provider confirmed a cancel. */
  | { readonly _tag: "Cancelled" }
  /** Finished remotely; its outputs still have to be stored. */
  | { readonly _tag: "StoreOutputs" }
  /** The provider has it and it is running: poll (or await a callback). */
  | { readonly _tag: "Running" }
  /** The submit has not finished: someone is (or was) sending it. */
  | { readonly _tag: "Submitting"; readonly phase: "queued" | "sending" }

/** What a row means to a caller. */
export const outcomeOf = (record: TaskRecord): Outcome => {
  switch (record.state) {
    case "completed":
      return { _tag: "Completed" }
    case "failed":
      return { _tag: "Failed", code: record.failCode ?? "UNKNOWN", message: record.failMessage ?? "" }
    case "rejected":
      return {
        _tag: "Rejected",
        code: record.failCode ?? "Rejected",
        message: record.failMessage ?? "The submit was refused"
      }
    case "ambiguous":
      return { _tag: "Ambiguous", reason: record.failMessage ?? "the submit's outcome is unknown" }
    case "cancelled":
      return { _tag: "Cancelled" }
    case "succeeded":
      return { _tag: "StoreOutputs" }
    case "submitted":
    case "pending":
    case "processing":
      return { _tag: "Running" }
    case "queued":
    case "sending":
      return { _tag: "Submitting", phase: record.state }
  }
}

// ---- what recovery must do with a row -----------------------------------------------------------

/** What `reconcile` must do with an unfinished row it found after a restart. */
export type Recovery =
  /** Queued and nobody holds it: no request of it ever went out, so sending it now is its first submit. */
  | { readonly _tag: "Send" }
  /** Caught sending by a holder that is gone: it may have created a task; never re-send it. */
  | { readonly _tag: "MarkAmbiguous" }
  /** The provider has it: track it to the end. */
  | { readonly _tag: "Track" }
  /** Finished remotely: store its outputs. */
  | { readonly _tag: "StoreOutputs" }
  /** A live holder (lease not expired) is working on it: leave it alone. */
  | { readonly _tag: "HeldElsewhere"; readonly owner: string; readonly until: number }
  /** Nothing to do (terminal). */
  | { readonly _tag: "Nothing" }

/** Whether the row's lease is held by someone other than `owner` and has not expired. */
export const heldByOther = (record: TaskRecord, owner: string, now: number): boolean =>
  record.leaseOwner !== undefined && record.leaseOwner !== owner && (record.leaseExpiresAt ?? 0) > now

/** What recovery by `owner` at `now` must do with a row. */
export const recoveryOf = (record: TaskRecord, owner: string, now: number): Recovery => {
  if (isTerminal(record.state)) return { _tag: "Nothing" }
  if (heldByOther(record, owner, now)) {
    return { _tag: "HeldElsewhere", owner: record.leaseOwner!, until: record.leaseExpiresAt ?? now }
  }
  switch (record.state) {
    case "queued":
      return { _tag: "Send" }
    case "sending":
      return { _tag: "MarkAmbiguous" }
    case "succeeded":
      return { _tag: "StoreOutputs" }
    default:
      return { _tag: "Track" }
  }
}
