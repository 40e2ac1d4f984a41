/**
 * The durable generation workflow's definition: its payload, its result, the deferred that ends
 * its wait, and how an execution maps to its ledger row. Any process with a `WorkflowEngine` (a
 * runner or a client-only process) can start, poll and complete it; only runners execute it
 * (`Generation.layer`).
 *
 * @since 0.3.0
 */
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import * as Workflow from "@effect/workflow/Workflow"
import { TaskError, TaskLedger, TaskState } from "@reelkit/core"
import * as Schema from "effect/Schema"

/** What a caller asks to generate. Starting twice with the same `idempotencyKey` yields one execution and one task. */
export const Payload = {
  /** The caller's key: the execution id (and the task key) derive from it. */
  idempotencyKey: Schema.String,
  /** The model input, unchecked: the provider's gate checks it in the first step. */
  input: Schema.Unknown,
  /** Transport options (e.g. apixo's routing `provider`), checked by the gate. */
  providerOptions: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
}

/** How a generation ended: the ledger row's final state and what it holds. */
export class GenerationResult extends Schema.Class<GenerationResult>("@reelkit/cluster/GenerationResult")({
  taskKey: Schema.String,
  /** `completed`, `failed`, `rejected`, `ambiguous` or `cancelled` (see `TaskState`). */
  state: TaskState.State,
  remoteTaskId: Schema.optional(Schema.String),
  /** Stored outputs (empty when no result storage is configured). */
  artifacts: Schema.Array(TaskLedger.StoredArtifact),
  failCode: Schema.optional(Schema.String),
  failMessage: Schema.optional(Schema.String)
}) {}

/** The generation workflow. Its execution id is derived from the payload's `idempotencyKey`. */
export const GenerationWorkflow = Workflow.make({
  name: "reelkit/Generation",
  payload: Payload,
  success: GenerationResult,
  error: TaskError.InvalidInput,
  idempotencyKey: (payload) => payload.idempotencyKey
})

/**
 * Completed (by the callback handler or a runner's status poller) once the ledger row shows the
 * task finished remotely; the workflow reads the row itself, so the deferred carries nothing.
 */
export const TaskDone = DurableDeferred.make("reelkit/TaskDone")

/** The prefix of every task key the cluster writes: tells its rows from `TaskClient`'s in a shared ledger. */
export const taskKeyPrefix = "wf_"

/** The ledger task key of an execution. */
export const taskKeyOf = (executionId: string): string => `${taskKeyPrefix}${executionId}`

/** The execution id of a cluster task key, or `undefined` for a row the cluster did not write. */
export const executionIdOf = (taskKey: string): string | undefined =>
  taskKey.startsWith(taskKeyPrefix) ? taskKey.slice(taskKeyPrefix.length) : undefined

/** The deferred token of an execution's wait (not a secret: callback URLs are signed separately). */
export const doneTokenOf = (executionId: string): DurableDeferred.Token =>
  DurableDeferred.tokenFromExecutionId(TaskDone, { workflow: GenerationWorkflow, executionId })

/** The result a finished row stands for. */
export const resultOf = (record: TaskLedger.TaskRecord): GenerationResult =>
  new GenerationResult({
    taskKey: record.taskKey,
    state: record.state,
    remoteTaskId: record.remoteTaskId,
    artifacts: record.artifacts,
    failCode: record.failCode,
    failMessage: record.failMessage
  })
