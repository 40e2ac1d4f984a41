/**
 * Durable generations on a cluster: `layer` makes a runner execute the generation workflow (its
 * activities are the lifecycle steps: reserve, submit, wait, persist, release) and run its status
 * poller; `start`, `run` and `poll` work from any process with a `WorkflowEngine` (a runner or a
 * client-only process). Starting the same generation twice (same idempotency key) from any
 * process yields one execution and one task.
 *
 * @since 0.3.0
 */
import * as Activity from "@effect/workflow/Activity"
import * as DurableDeferred from "@effect/workflow/DurableDeferred"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import { AccountLimits, ResultStorage, TaskError, TaskLedger, TaskProvider, TaskState } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { GenerationConfig } from "./GenerationConfig.js"
import { GenerationResult, GenerationWorkflow, TaskDone, taskKeyOf } from "./GenerationWorkflow.js"
import * as LocalSlots from "./internal/localSlots.js"
import * as Poller from "./internal/poller.js"
import * as Steps from "./internal/steps.js"

/** What a caller asks to generate. */
export interface Request {
  /** Same key, same generation: one execution and one task, whichever process starts it. */
  readonly idempotencyKey: string
  readonly input: unknown
  readonly providerOptions?: Readonly<Record<string, unknown>> | undefined
}

const reserveStep = (executionId: string, taskKey: string, payload: Request) =>
  Activity.make({
    name: "reelkit/reserve",
    error: TaskError.InvalidInput,
    execute: Steps.reserve(executionId, taskKey, payload)
  })

const submitStep = (taskKey: string) =>
  Activity.make({ name: "reelkit/submit", success: TaskLedger.TaskRecord, execute: Steps.submit(taskKey) })

const persistStep = (taskKey: string) =>
  Activity.make({
    name: "reelkit/persist",
    success: GenerationResult,
    execute: Steps.persist(taskKey)
  })

const releaseStep = (taskKey: string) => Activity.make({ name: "reelkit/release", execute: Steps.release(taskKey) })

/** The workflow body: each step is an activity, the wait a durable deferred (no journaled poll loop). */
const body = (payload: Request, executionId: string) =>
  Effect.gen(function* () {
    const taskKey = taskKeyOf(executionId)
    yield* reserveStep(executionId, taskKey, payload)
    const submitted = yield* submitStep(taskKey)
    // Read the row again (not journaled): after a replay it may be far past what the submit saw.
    const current = yield* Steps.read(taskKey)
    const waits =
      TaskState.isInFlight(current.state) || (current.state === "ambiguous" && current.callbackUrl !== undefined)
    if (waits) {
      // The slot belongs to the task: a runner that took over the workflow takes it over too.
      yield* Steps.reclaimSlot(current)
      yield* DurableDeferred.await(TaskDone)
    }
    const result = yield* persistStep(taskKey)
    yield* releaseStep(submitted.taskKey)
    return result
  })

/**
 * Makes this process a runner of generations: registers the workflow and forks the status poller.
 * Needs the cluster's `WorkflowEngine` (see `ClusterRunner`), the provider, the ledger shared by all
 * runners, the shared budget, result storage and the settings.
 */
export const layer: Layer.Layer<
  never,
  never,
  | WorkflowEngine
  | TaskProvider.TaskProvider
  | TaskLedger.TaskLedger
  | AccountLimits.AccountLimits
  | ResultStorage.ResultStorage
  | GenerationConfig
> = Layer.scopedDiscard(Effect.forkScoped(Effect.interruptible(Poller.run))).pipe(
  Layer.provideMerge(GenerationWorkflow.toLayer(body)),
  Layer.provide(LocalSlots.layer)
)

/** Starts a generation and returns its execution id once the start is persisted (no runner needs to be alive). */
export const start = (request: Request): Effect.Effect<string, never, WorkflowEngine> =>
  GenerationWorkflow.execute(
    { idempotencyKey: request.idempotencyKey, input: request.input, providerOptions: request.providerOptions },
    { discard: true }
  )

/** Starts a generation (or joins the one with the same idempotency key) and waits for its result. */
export const run = (request: Request): Effect.Effect<GenerationResult, TaskError.InvalidInput, WorkflowEngine> =>
  GenerationWorkflow.execute({
    idempotencyKey: request.idempotencyKey,
    input: request.input,
    providerOptions: request.providerOptions
  })

/** The result of an execution, `Suspended` while it waits, or `undefined` when it is unknown. */
export const poll = (executionId: string) => GenerationWorkflow.poll(executionId)

/** The execution id a request maps to. */
export const executionIdOf = (request: Request): Effect.Effect<string> =>
  GenerationWorkflow.executionId({ idempotencyKey: request.idempotencyKey, input: request.input })

export { GenerationResult, GenerationWorkflow, taskKeyOf } from "./GenerationWorkflow.js"
