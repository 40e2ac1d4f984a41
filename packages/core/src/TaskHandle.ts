/**
 * A reference to a submitted task that can be stored, sent to another process and resumed there.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { DecodeError } from "./TaskError.js"

/** Identifies one submitted task: which provider and model, our key, the remote id, when it was sent. */
export class TaskHandle extends Schema.Class<TaskHandle>("@reelkit/core/TaskHandle")({
  providerId: Schema.NonEmptyString,
  modelId: Schema.NonEmptyString,
  taskKey: Schema.NonEmptyString,
  remoteTaskId: Schema.NonEmptyString,
  /** Epoch milliseconds at which the provider accepted the task. */
  submittedAt: Schema.Number,
  /** Fields the caller set that the transport could not carry (see `TaskProvider.Warning`). */
  warnings: Schema.optional(Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String })))
}) {}

/** The handle as JSON text. */
export const HandleFromJson = Schema.parseJson(TaskHandle)

/** Encodes a handle to a JSON string. */
export const toJson = (handle: TaskHandle): string => Schema.encodeSync(HandleFromJson)(handle)

/** Decodes a handle from a JSON string, failing with a `DecodeError` that says what is wrong. */
export const fromJson = (json: string): Effect.Effect<TaskHandle, DecodeError> =>
  Schema.decode(HandleFromJson)(json).pipe(
    Effect.mapError((error) => new DecodeError({ message: `Not a task handle: ${error.message}` }))
  )
