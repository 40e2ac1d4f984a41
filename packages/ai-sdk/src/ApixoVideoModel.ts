/**
 * One apixo video model as the AI SDK's `Experimental_VideoModelV4`: `doStart` maps the call
 * options, lets reelkit's `TaskClient` check them, record the task and send the paid submit once
 * (under the SDK's `idempotency-key`), and returns the task handle as the JSON `operation`;
 * `doStatus` asks apixo through the same client; `handleWebhookOption` turns the SDK's webhook into
 * apixo's callback mode.
 *
 * @since 0.1.0
 */
import type {
  Experimental_VideoModelV4,
  Experimental_VideoModelV4CallOptions,
  Experimental_VideoModelV4OperationStartResult,
  Experimental_VideoModelV4OperationStatusResult,
  JSONValue
} from "@ai-sdk/provider"
import { TaskError, TaskHandle, type TaskLedger } from "@reelkit/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import type { ApixoVideoModelId } from "./ApixoVideoOptions.js"
import { type CallContext, type ReelkitError, toApiCallError } from "./internal/errors.js"
import * as Runtime from "./internal/runtime.js"
import { models } from "./internal/models.js"

/** The provider name models report, and the key of their `providerOptions` and `providerMetadata`. */
export const providerName = "apixo"

/** What a model needs from its provider instance. */
export interface ModelConfig {
  readonly runtime: Runtime.Runtime
  readonly baseURL: string
}

/** The `Experimental_VideoModelV4` of one apixo model, with `handleWebhookOption`. */
export type ApixoVideoModel = Experimental_VideoModelV4 & {
  readonly modelId: ApixoVideoModelId
  readonly handleWebhookOption: NonNullable<Experimental_VideoModelV4["handleWebhookOption"]>
}

const headerValue = (headers: Record<string, string | undefined> | undefined, name: string) =>
  Object.entries(headers ?? {}).find(([key, value]) => key.toLowerCase() === name && value !== undefined)?.[1]

const encodeHandle = Schema.encodeSync(TaskHandle.TaskHandle)
const decodeHandle = Schema.decodeUnknown(TaskHandle.TaskHandle)

const responseOf = (modelId: string) =>
  Effect.map(Clock.currentTimeMillis, (now) => ({ timestamp: new Date(now), modelId, headers: undefined }))

/** Turns a run's exit into the SDK's result, or throws what the SDK expects: an `APICallError`, or the abort reason. */
const settle = <A>(
  exit: Exit.Exit<A, ReelkitError>,
  context: (error: ReelkitError) => CallContext,
  signal: AbortSignal | undefined
): A => {
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "Some") throw toApiCallError(failure.value, context(failure.value))
  if (Cause.isInterruptedOnly(exit.cause) && signal?.aborted === true) throw signal.reason
  throw Cause.squash(exit.cause)
}

const statusOf = (
  record: TaskLedger.TaskRecord,
  modelId: string
): Effect.Effect<Experimental_VideoModelV4OperationStatusResult> =>
  Effect.map(responseOf(modelId), (response): Experimental_VideoModelV4OperationStatusResult => {
    const providerMetadata = {
      [providerName]: {
        taskKey: record.taskKey,
        taskId: record.remoteTaskId ?? null,
        // Without an artifact store, `succeeded` is only the moment before `completed`.
        state: record.state === "succeeded" ? "completed" : record.state
      }
    }
    switch (record.state) {
      case "succeeded":
      case "completed":
        return {
          status: "completed",
          videos: record.resultUrls.map((url) => ({ type: "url", url, mediaType: "video/mp4" })),
          warnings: [],
          providerMetadata: { [providerName]: { ...providerMetadata[providerName], resultUrls: record.resultUrls } },
          response
        }
      case "failed":
        return {
          status: "error",
          error: `${record.failCode ?? "UNKNOWN"}: ${record.failMessage ?? "the task failed"}`,
          providerMetadata,
          response
        }
      case "rejected":
      case "ambiguous":
        return {
          status: "error",
          error: `Task ${record.taskKey} is ${record.state}: ${record.failMessage ?? "its submit did not create it"}`,
          providerMetadata,
          response
        }
      default:
        return { status: "pending", providerMetadata, response }
    }
  })

/** Builds the model. Model ids are checked by the provider. */
export const make = (modelId: ApixoVideoModelId, config: ModelConfig): ApixoVideoModel => {
  const submitUrl = `${config.baseURL}/api/v1/generateTask/${modelId}`
  const statusUrl = `${config.baseURL}/api/v1/statusTask/${modelId}`
  const { toCall } = models[modelId]

  const doStart = async (
    options: Experimental_VideoModelV4CallOptions & { webhookUrl?: string }
  ): Promise<Experimental_VideoModelV4OperationStartResult> => {
    let sent: unknown = {}
    const exit = await config.runtime.run(
      Effect.gen(function* () {
        const call = yield* toCall(options)
        sent = call.input
        const handle = yield* Runtime.startTask(modelId, call.input, {
          idempotencyKey: headerValue(options.headers, "idempotency-key"),
          callbackUrl: options.webhookUrl,
          providerOptions: call.provider === undefined ? undefined : { provider: call.provider }
        })
        return {
          operation: encodeHandle(handle) as unknown as JSONValue,
          warnings: call.warnings,
          providerMetadata: { [providerName]: { taskKey: handle.taskKey, taskId: handle.remoteTaskId } },
          response: yield* responseOf(modelId)
        }
      }),
      options.abortSignal
    )
    return settle(exit, () => ({ phase: "start", url: submitUrl, requestBodyValues: sent }), options.abortSignal)
  }

  const doStatus = async (options: {
    operation: JSONValue
    abortSignal?: AbortSignal
  }): Promise<Experimental_VideoModelV4OperationStatusResult> => {
    const exit = await config.runtime.run(
      Effect.gen(function* () {
        const handle = yield* decodeHandle(options.operation).pipe(
          Effect.mapError(
            () => new TaskError.InvalidInput({ path: "operation", rule: "must be the operation doStart returned" })
          )
        )
        if (handle.providerId !== providerName || handle.modelId !== modelId) {
          return yield* new TaskError.InvalidInput({
            path: "operation",
            rule: `must be an operation of ${providerName}/${modelId} (this one is of ${handle.providerId}/${handle.modelId})`
          })
        }
        return yield* statusOf(yield* Runtime.refreshTask(handle), modelId)
      }),
      options.abortSignal
    )
    return settle(
      exit,
      () => ({
        phase: "status",
        url: statusUrl,
        requestBodyValues: { operation: options.operation }
      }),
      options.abortSignal
    )
  }

  return {
    specificationVersion: "v4",
    provider: providerName,
    modelId,
    // One task makes one video; the SDK splits `n` into that many starts.
    maxVideosPerCall: 1,
    // apixo's callback mode: the SDK's webhook URL becomes the task's `callback_url`.
    handleWebhookOption: async ({ webhook }) => {
      const { url, received } = await webhook()
      return { webhookUrl: url, received }
    },
    doStart,
    doStatus
  }
}
