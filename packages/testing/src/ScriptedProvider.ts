/**
 * An in-memory `TaskProvider` whose every answer is scripted: which submits fail and how, which
 * statuses each task reports, by poll count or by time since creation. It records every call, so
 * tests can assert "submitted exactly once" or "never over the rate budget".
 *
 * @since 0.1.0
 */
import { TaskError, TaskProvider, TaskStatus } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"

/** A scripted answer: a status, or an error the provider fails with. */
export type Answer = TaskStatus.TaskStatus | TaskError.ProviderError

/** How one task behaves. */
export interface TaskScript {
  /**
   * Failures of successive submit attempts before one is accepted. An error whose
   * `provesNotCreated` is false still creates the task remotely (the response was lost), as a real
   * server would have.
   */
  readonly submitFailures?: ReadonlyArray<TaskError.ProviderError> | undefined
  /** Answers to successive status requests; the last one repeats. */
  readonly statuses?: ReadonlyArray<Answer> | undefined
  /** Statuses by time since the task was created, used when `statuses` is absent. */
  readonly timeline?: ReadonlyArray<{ readonly after: Duration.DurationInput; readonly status: TaskStatus.TaskStatus }>
}

/** One submit attempt, as seen by the provider. */
export interface SubmitCall {
  readonly taskKey: string
  /** The model input the wire request carried. */
  readonly input: unknown
  /** The callback URL the wire request carried. */
  readonly callbackUrl: string | undefined
  /** The wire request exactly as `submit` received it. */
  readonly wire: TaskProvider.WireRequest
  readonly at: number
  /** The remote id, when this attempt created a task. */
  readonly createdTaskId: string | undefined
  readonly failedWith: string | undefined
}

/** One status request. */
export interface StatusCall {
  readonly remoteTaskId: string
  readonly at: number
}

/** Everything the provider saw. */
export interface Recording {
  readonly submits: ReadonlyArray<SubmitCall>
  readonly statusCalls: ReadonlyArray<StatusCall>
  /** Every request's time (submits and status), in order: for rate-budget assertions. */
  readonly requestTimes: ReadonlyArray<number>
  /** Remote tasks created, by remote id. */
  readonly created: ReadonlyMap<
    string,
    { readonly taskKey: string; readonly input: unknown; readonly createdAt: number }
  >
}

/** Options of the scripted provider. */
export interface Options {
  readonly providerId?: string | undefined
  readonly modelId?: string | undefined
  /** Script for each task, chosen from its input and key (default: succeed on the first poll). */
  readonly script?: ((input: unknown, taskKey: string) => TaskScript) | undefined
  /**
   * The gate (default `prepare`: any object input, an absolute http(s) callback URL). A custom gate
   * should build its wire request with `wireRequest`, so `submit` finds the input and callback URL.
   */
  readonly prepare?: TaskProvider.Service["prepare"] | undefined
  readonly hints?: Partial<TaskProvider.ProviderHints> | undefined
  /** Secrets the provider's `redact` removes (as `TaskProvider.redactSecrets`); no `redact` when absent. */
  readonly secrets?: ReadonlyArray<string> | undefined
}

/** Controls and recordings of a scripted provider. */
export interface Service {
  readonly provider: TaskProvider.Service
  readonly recording: Effect.Effect<Recording>
  /** Replaces the script of tasks submitted from now on. */
  readonly setScript: (script: (input: unknown, taskKey: string) => TaskScript) => Effect.Effect<void>
}

/** The scripted provider's control tag. */
export class ScriptedProvider extends Context.Tag("@reelkit/testing/ScriptedProvider")<ScriptedProvider, Service>() {}

/** A success with one output URL derived from the task id. */
export const succeededWith = (url: string): TaskStatus.Succeeded =>
  new TaskStatus.Succeeded({ outputs: [new TaskStatus.TaskOutput({ url, contentType: "video/mp4" })] })

const defaultScript = (): TaskScript => ({
  statuses: [succeededWith("https://results.example/video.mp4")]
})

/** The wire body of a scripted submit: the input, the callback URL and the options, as given. */
export interface ScriptedBody {
  readonly input: unknown
  readonly callbackUrl?: string | undefined
  readonly options?: Readonly<Record<string, unknown>> | undefined
}

/** The path every scripted wire request goes to. */
export const submitPath = "/scripted/submit"

/** The scripted provider's wire request for a start request: its fields, as given, in the body. */
export const wireRequest = (request: TaskProvider.StartRequest): TaskProvider.WireRequest => {
  const body: ScriptedBody = {
    input: request.input,
    ...(request.callbackUrl === undefined ? {} : { callbackUrl: request.callbackUrl }),
    ...(request.options === undefined ? {} : { options: request.options })
  }
  return new TaskProvider.WireRequest({ method: "POST", path: submitPath, body })
}

const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

/**
 * The default gate: the input must be an object (`duration`, when numeric, is the billable
 * seconds) and a callback URL an absolute http(s) URL; the wire request carries them unchanged.
 */
export const prepare: TaskProvider.Service["prepare"] = (request) => {
  const { callbackUrl, input } = request
  if (typeof input !== "object" || input === null) {
    return Effect.fail(new TaskError.InvalidInput({ path: "input", rule: "must be an object" }))
  }
  if (callbackUrl !== undefined && !isHttpUrl(callbackUrl)) {
    return Effect.fail(new TaskError.InvalidInput({ path: "callbackUrl", rule: "must be an absolute http(s) URL" }))
  }
  const duration = (input as { duration?: unknown }).duration
  return Effect.succeed({
    input,
    wire: wireRequest(request),
    billableSeconds: typeof duration === "number" ? duration : undefined
  })
}

interface RemoteTask {
  readonly taskKey: string
  readonly input: unknown
  readonly createdAt: number
  readonly script: TaskScript
  readonly polls: number
}

interface State {
  readonly submits: ReadonlyArray<SubmitCall>
  readonly statusCalls: ReadonlyArray<StatusCall>
  readonly requestTimes: ReadonlyArray<number>
  readonly tasks: ReadonlyMap<string, RemoteTask>
  /** Submit attempts per task key, to walk `submitFailures`. */
  readonly attempts: ReadonlyMap<string, number>
}

/** Builds a scripted provider. */
export const make = (options: Options = {}): Effect.Effect<Service> =>
  Effect.gen(function* () {
    const scriptRef = yield* Ref.make(options.script ?? defaultScript)
    const state = yield* Ref.make<State>({
      submits: [],
      statusCalls: [],
      requestTimes: [],
      tasks: new Map(),
      attempts: new Map()
    })
    let nextId = 1

    const submit: TaskProvider.Service["submit"] = ({ taskKey, wire }) =>
      Effect.gen(function* () {
        const body = (wire.body ?? {}) as ScriptedBody
        const request = { taskKey, input: body.input, callbackUrl: body.callbackUrl }
        const now = yield* Clock.currentTimeMillis
        const script = (yield* Ref.get(scriptRef))(request.input, request.taskKey)
        const current = yield* Ref.get(state)
        const attempt = current.attempts.get(request.taskKey) ?? 0
        const failure = script.submitFailures?.[attempt]
        const creates = failure === undefined || !failure.provesNotCreated
        const remoteTaskId = creates ? `task_${String(nextId++).padStart(6, "0")}` : undefined
        yield* Ref.update(state, (previous) => ({
          ...previous,
          requestTimes: [...previous.requestTimes, now],
          attempts: new Map(previous.attempts).set(request.taskKey, attempt + 1),
          submits: [
            ...previous.submits,
            {
              taskKey: request.taskKey,
              input: request.input,
              callbackUrl: request.callbackUrl,
              wire,
              at: now,
              createdTaskId: remoteTaskId,
              failedWith: failure?._tag
            }
          ],
          tasks:
            remoteTaskId === undefined
              ? previous.tasks
              : new Map(previous.tasks).set(remoteTaskId, {
                  taskKey: request.taskKey,
                  input: request.input,
                  createdAt: now,
                  script,
                  polls: 0
                })
        }))
        if (failure !== undefined) return yield* Effect.fail(failure)
        return { remoteTaskId: remoteTaskId! }
      })

    const status: TaskProvider.Service["status"] = (remoteTaskId) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const task = yield* Ref.modify(state, (previous): [RemoteTask | undefined, State] => {
          const found = previous.tasks.get(remoteTaskId)
          const polled = found === undefined ? undefined : { ...found, polls: found.polls + 1 }
          return [
            polled,
            {
              ...previous,
              requestTimes: [...previous.requestTimes, now],
              statusCalls: [...previous.statusCalls, { remoteTaskId, at: now }],
              tasks: polled === undefined ? previous.tasks : new Map(previous.tasks).set(remoteTaskId, polled)
            }
          ]
        })
        if (task === undefined) {
          return yield* Effect.fail(new TaskError.TaskNotFound({ remoteTaskId, message: "No such task" }))
        }
        const answer = answerFor(task, now)
        return TaskError.isProviderError(answer) ? yield* Effect.fail(answer) : answer
      })

    const provider: TaskProvider.Service = {
      providerId: options.providerId ?? "scripted",
      modelId: options.modelId ?? "scripted-model",
      prepare: options.prepare ?? prepare,
      submit,
      status,
      parseCallback: (body) =>
        Effect.suspend(() => {
          const candidate = body as { remoteTaskId?: unknown; status?: unknown }
          return typeof candidate?.remoteTaskId === "string" && candidate.status !== undefined
            ? Effect.succeed({
                remoteTaskId: candidate.remoteTaskId,
                status: candidate.status as TaskStatus.TaskStatus
              })
            : Effect.fail(new TaskError.DecodeError({ message: "Not a scripted callback body" }))
        }),
      hints: {
        pollPlan: options.hints?.pollPlan ?? TaskProvider.defaultPollPlan,
        resultRetention: options.hints?.resultRetention ?? Duration.days(15)
      },
      ...(options.secrets === undefined ? {} : { redact: TaskProvider.redactSecrets(options.secrets) })
    }

    return ScriptedProvider.of({
      provider,
      setScript: (script) => Ref.set(scriptRef, script),
      recording: Ref.get(state).pipe(
        Effect.map((current) => ({
          submits: current.submits,
          statusCalls: current.statusCalls,
          requestTimes: current.requestTimes,
          created: new Map(
            [...current.tasks].map(([id, task]) => [
              id,
              { taskKey: task.taskKey, input: task.input, createdAt: task.createdAt }
            ])
          )
        }))
      )
    })
  })

const answerFor = (task: RemoteTask, now: number): Answer => {
  const { statuses, timeline } = task.script
  if (statuses !== undefined && statuses.length > 0) {
    return statuses[Math.min(task.polls, statuses.length) - 1]!
  }
  if (timeline !== undefined && timeline.length > 0) {
    const elapsed = now - task.createdAt
    const reached = timeline.filter((step) => Duration.toMillis(step.after) <= elapsed)
    return reached.length > 0 ? reached[reached.length - 1]!.status : new TaskStatus.Pending({})
  }
  return succeededWith(`https://results.example/${task.taskKey}.mp4`)
}

/** A layer providing both the `TaskProvider` and the `ScriptedProvider` controls. */
export const layer = (options: Options = {}): Layer.Layer<TaskProvider.TaskProvider | ScriptedProvider> =>
  Layer.effectContext(
    Effect.map(make(options), (service) =>
      Context.make(ScriptedProvider, service).pipe(Context.add(TaskProvider.TaskProvider, service.provider))
    )
  )
