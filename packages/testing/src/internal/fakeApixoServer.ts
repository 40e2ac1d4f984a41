/**
 * The fake apixo server's machinery: a node:http server whose every request is handled by an
 * Effect run on the runtime the fake was built in, so all time (task progress, URL expiry, rate
 * windows, slow answers, callback delays) comes from that runtime's Clock.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { readFile } from "node:fs/promises"
import * as Http from "node:http"
import type * as FakeApixo from "../FakeApixo.js"
import { findSampleVideo } from "./fakeApixoFixture.js"
import { type Answer, listen, makeWaiters, maxInWindow, sleepUntil, writeAnswer } from "./fakeServerKit.js"
import { FaultRules } from "./faultRules.js"

const maxBodyBytes = 1024 * 1024

type MutableRequest = {
  -readonly [K in keyof FakeApixo.RequestRecord]: FakeApixo.RequestRecord[K]
}

const envelope = (code: number, message: string, data: unknown = null): string =>
  JSON.stringify({ code, message, data })

const json = (status: number, message: string, data: unknown = null, headers?: Http.OutgoingHttpHeaders): Answer =>
  headers === undefined
    ? { _tag: "Json", status, body: envelope(status, message, data) }
    : { _tag: "Json", status, body: envelope(status, message, data), headers }

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const resolvePerTask = <A>(value: FakeApixo.PerTask<A> | undefined, task: FakeApixo.TaskRequest): A | undefined =>
  typeof value === "function" ? (value as (task: FakeApixo.TaskRequest) => A)(task) : value

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((segment) => (typeof segment === "number" ? `[${segment}]` : `.${String(segment)}`)).join("")

// A task id: `task_`, its creation time (epoch ms, base 36), the creating instance's random tag
// and its sequence number there (base 36). Unique across instances; `recoverTasks` reads it back.
const taskIdPattern = /^task_([0-9a-z]{1,11})_([0-9a-f]{8})_([0-9a-z]{1,8})$/

/** A task id as the fake makes them. */
const makeTaskId = (createdAt: number, instance: string, sequence: number): string =>
  `task_${createdAt.toString(36)}_${instance}_${sequence.toString(36)}`

interface Classified {
  readonly route: FakeApixo.RequestRoute
  readonly modelId: string | undefined
  readonly taskId: string | undefined
  readonly index: number | undefined
}

const classify = (method: string, url: URL): Classified => {
  const generate = /^\/api\/v1\/generateTask\/([^/]+)$/.exec(url.pathname)
  if (generate !== null && method === "POST") {
    return { route: "generate", modelId: decodeURIComponent(generate[1]!), taskId: undefined, index: undefined }
  }
  const status = /^\/api\/v1\/statusTask\/([^/]+)$/.exec(url.pathname)
  if (status !== null && method === "GET") {
    return {
      route: "status",
      modelId: decodeURIComponent(status[1]!),
      taskId: url.searchParams.get("taskId") ?? undefined,
      index: undefined
    }
  }
  const download = /^\/results\/([^/]+)\/(\d+)\.mp4$/.exec(url.pathname)
  if (download !== null && (method === "GET" || method === "HEAD")) {
    return {
      route: "download",
      modelId: undefined,
      taskId: decodeURIComponent(download[1]!),
      index: Number(download[2])
    }
  }
  return { route: "other", modelId: undefined, taskId: undefined, index: undefined }
}

/** Reads a request body up to 1 MiB ("tooLarge" beyond). */
export const readBody = (request: Http.IncomingMessage): Effect.Effect<Buffer | "tooLarge", string> =>
  Effect.async<Buffer | "tooLarge", string>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    let done = false
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBodyBytes) chunks.push(chunk)
    })
    request.on("end", () => {
      if (done) return
      done = true
      resume(Effect.succeed(size > maxBodyBytes ? "tooLarge" : Buffer.concat(chunks)))
    })
    request.on("error", (error) => {
      if (done) return
      done = true
      resume(Effect.fail(String(error)))
    })
  })

/** Dependencies the public module hands in (kept there so this file imports no values from it). */
export interface Deps<E> {
  readonly fingerprint: (apiKey: string) => string
  readonly makeError: (message: string, cause: unknown) => E
}

/** Builds and starts the fake in the current scope. */
export const make = <E>(options: FakeApixo.Options, deps: Deps<E>): Effect.Effect<FakeApixo.Service, E, Scope.Scope> =>
  Effect.gen(function* () {
    const apiKeys = options.apiKeys ?? ["test-key"]
    if (apiKeys.length === 0)
      return yield* Effect.fail(deps.makeError("FakeApixo needs at least one API key", undefined))
    const keyFingerprints = new Set(apiKeys.map(deps.fingerprint))
    const video =
      options.video ??
      (yield* Effect.tryPromise({
        try: () => readFile(findSampleVideo()),
        catch: (cause) => deps.makeError("Cannot read the sample video fixture", cause)
      }))
    const models = options.models ?? {}
    const requestsPerMinute = options.requestsPerMinute ?? 60
    // The rate window is a minute, as at apixo, unless a test scales time down.
    const rateWindowMillis = Duration.toMillis(options.rateWindow ?? Duration.minutes(1))
    const concurrentTasks = options.concurrentTasks ?? 10
    const retryAfter = options.retryAfter ?? "auto"
    const retentionMillis = Duration.toMillis(options.resultRetention ?? Duration.days(15))
    const callbackOptions = options.callbacks ?? {}
    const host = options.host ?? "127.0.0.1"

    const requests: Array<MutableRequest> = []
    const tasks = new Map<string, FakeApixo.TaskRecord>()
    const bills: Array<FakeApixo.BillRecord> = []
    const callbacks: Array<FakeApixo.CallbackRecord> = []
    const rules = new FaultRules<FakeApixo.Route>(options.faults ?? [])
    // Admitted generate/status requests per key fingerprint, for the sliding rate window.
    const admitted = new Map<string, Array<number>>()
    let balance = options.balanceSeconds ?? Number.POSITIVE_INFINITY
    let taskSequence = 0
    // This instance's part of every task id, so two fakes (e.g. two runs sharing one ledger) never agree on one.
    const instance = randomBytes(4).toString("hex")
    // Tasks answered from their id alone (`recoverTasks`), by model id and task id.
    const recovered = new Map<string, FakeApixo.TaskRecord>()
    let callbackSequence = 0
    let baseUrl = ""

    // Waiters re-check their predicate after every recorded event; no polling, no time.
    const { notify, waitUntil } = makeWaiters()

    const pickFault = (route: FakeApixo.Route, modelId: string | undefined): FakeApixo.Fault | undefined =>
      rules.pick(route, modelId)

    const retryAfterHeader = (autoSeconds: number): Http.OutgoingHttpHeaders =>
      retryAfter === "none"
        ? {}
        : { "retry-after": String(retryAfter === "auto" ? Math.max(1, Math.ceil(autoSeconds)) : retryAfter) }

    const stateAt = (task: FakeApixo.TaskRecord, now: number): string =>
      now < task.processingAt
        ? "pending"
        : now < task.completedAt
          ? "processing"
          : task.outcome._tag === "Success"
            ? "success"
            : "failed"

    /** The status `data` of a task at `now`, with a status-shaped fault applied. */
    const statusData = (task: FakeApixo.TaskRecord, now: number, fault: FakeApixo.Fault | undefined) => {
      const times = { completeTime: task.completedAt, costTime: task.completedAt - task.createdAt }
      if (fault?._tag === "UnknownState") {
        return { taskId: task.taskId, state: fault.state, createTime: task.createdAt }
      }
      if (fault?._tag === "MalformedResultJson") {
        const truncated = JSON.stringify({ resultUrls: task.resultUrls }).slice(0, -3)
        return { taskId: task.taskId, state: "success", resultJson: truncated, createTime: task.createdAt, ...times }
      }
      const state = stateAt(task, now)
      if (state === "success") {
        return {
          taskId: task.taskId,
          state,
          resultJson: JSON.stringify({ resultUrls: task.resultUrls }),
          createTime: task.createdAt,
          ...times
        }
      }
      if (state === "failed" && task.outcome._tag === "Failed") {
        return {
          taskId: task.taskId,
          state,
          failCode: task.outcome.failCode,
          failMsg: task.outcome.failMsg,
          createTime: task.createdAt,
          ...times
        }
      }
      return { taskId: task.taskId, state, createTime: task.createdAt }
    }

    const isActive = (task: FakeApixo.TaskRecord, now: number) => task.createdAt <= now && now < task.completedAt

    const run = yield* FiberSet.makeRuntime<never>()

    // ---- callbacks -------------------------------------------------------------------------

    // apixo gives a receiver 30 s to answer; a POST still open then counts as failed (and is retried).
    const callbackTimeout = Duration.toMillis(callbackOptions.timeout ?? Duration.seconds(30))

    const postCallback = (url: string, body: string) =>
      Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
            signal
          })
          await response.arrayBuffer().catch(() => undefined)
          return response.status
        },
        catch: (error) => String(error)
      }).pipe(
        // On the Clock, so TestClock drives it; interrupting the fetch aborts it through `signal`.
        Effect.timeoutFail({ duration: callbackTimeout, onTimeout: () => `no answer within ${callbackTimeout} ms` }),
        Effect.either
      )

    const recordCallback = (record: FakeApixo.CallbackRecord) => {
      callbacks.push(record)
      notify()
    }

    // Every wait below sleeps until an absolute Clock time: a test that moved TestClock past it
    // before this fiber got to sleep still sees the POST go out, instead of a wait that never ends.
    const deliverCopy = (task: FakeApixo.TaskRecord, url: string, copy: number, dueAt: number) =>
      Effect.gen(function* () {
        const retries = callbackOptions.retries ?? 3
        const retryDelay = Duration.toMillis(callbackOptions.retryDelay ?? Duration.seconds(1))
        let due = dueAt
        for (let attempt = 1; attempt <= retries + 1; attempt++) {
          yield* sleepUntil(due)
          const fault = pickFault("callback", task.modelId)
          if (fault?._tag === "Slow") yield* sleepUntil(due + Duration.toMillis(fault.delay))
          const sequence = ++callbackSequence
          const at = yield* Clock.currentTimeMillis
          const body =
            fault?._tag === "MalformedJson"
              ? `{"code":200,"message":"success","data":{"taskId":"${task.taskId}",`
              : envelope(200, "success", statusData(task, task.completedAt, fault))
          const delivery = { sequence, taskId: task.taskId, url, body, copy, attempt, at }
          if (fault?._tag === "DropCallback") {
            recordCallback({ ...delivery, outcome: "dropped", status: undefined, error: undefined })
            return
          }
          const result = yield* postCallback(url, body)
          const delivered = Either.isRight(result) && result.right >= 200 && result.right < 300
          recordCallback({
            ...delivery,
            outcome: delivered ? "delivered" : "failed",
            status: Either.isRight(result) ? result.right : undefined,
            error: Either.isLeft(result) ? result.left : undefined
          })
          if (delivered) return
          // Counted from when the failure was known (a timed-out POST took `timeout` to fail).
          due = (yield* Clock.currentTimeMillis) + retryDelay * 2 ** (attempt - 1)
        }
      })

    const scheduleCallbacks = (task: FakeApixo.TaskRecord, url: string) =>
      run(
        Effect.gen(function* () {
          const firstAt = task.completedAt + Duration.toMillis(callbackOptions.delay ?? 0)
          const duplicates = callbackOptions.duplicates ?? 0
          const duplicateDelay = Duration.toMillis(callbackOptions.duplicateDelay ?? Duration.seconds(1))
          for (let copy = 0; copy <= duplicates; copy++) {
            yield* deliverCopy(task, url, copy, firstAt + copy * duplicateDelay)
          }
        })
      )

    // ---- routes ----------------------------------------------------------------------------

    const badRequest = (text: string): Answer =>
      options.validationErrorStyle === "dataError" ? json(400, "Bad Request", { error: text }) : json(400, text)

    /** When a task moves on and how it ends, from the model's and the default options. */
    const planOf = (request: FakeApixo.TaskRequest) => {
      const model = models[request.modelId] ?? {}
      const timings = resolvePerTask(model.timings, request) ?? {}
      const defaults = resolvePerTask(options.timings, request) ?? {}
      const processingAfter = Duration.toMillis(
        timings.processingAfter ?? defaults.processingAfter ?? Duration.seconds(1)
      )
      const completeAfter = Math.max(
        processingAfter,
        Duration.toMillis(timings.completeAfter ?? defaults.completeAfter ?? Duration.seconds(5))
      )
      const outcome: FakeApixo.Outcome = resolvePerTask(model.outcome, request) ??
        resolvePerTask(options.outcome, request) ?? { _tag: "Success", resultCount: 1 }
      return { processingAfter, completeAfter, outcome }
    }

    /**
     * The task behind an id this fake did not create, rebuilt from the id under `recoverTasks`:
     * created at the time the id carries, with the default timings and outcome (per-task functions
     * see an empty input and sequence 0). Undefined for an id that is not one a fake makes, one of
     * this instance (it would be in `tasks`), or one from the future.
     */
    const recover = (taskId: string, modelId: string | undefined, keyFingerprint: string | undefined, now: number) => {
      if (options.recoverTasks !== true) return undefined
      const cached = modelId === undefined ? undefined : recovered.get(`${modelId}\u0000${taskId}`)
      if (cached !== undefined) return cached
      const parsed = taskIdPattern.exec(taskId)
      if (parsed === null || parsed[2] === instance) return undefined
      const createdAt = Number.parseInt(parsed[1]!, 36)
      if (!Number.isSafeInteger(createdAt) || createdAt > now) return undefined
      const request: FakeApixo.TaskRequest = {
        modelId: modelId ?? "",
        input: {},
        requestType: "async",
        callbackUrl: undefined,
        provider: undefined,
        sequence: 0
      }
      const { completeAfter, outcome, processingAfter } = planOf(request)
      const task: FakeApixo.TaskRecord = {
        taskId,
        modelId: request.modelId,
        keyFingerprint: keyFingerprint ?? "",
        input: request.input,
        requestType: "async",
        callbackUrl: undefined,
        provider: undefined,
        createdAt,
        processingAt: createdAt + processingAfter,
        completedAt: createdAt + completeAfter,
        outcome,
        // Billed by the fake that created it.
        billedSeconds: 0,
        resultUrls:
          outcome._tag === "Success"
            ? Array.from({ length: outcome.resultCount }, (_, index) => resultUrl(taskId, index))
            : []
      }
      // A download names no model: such a record is rebuilt each time instead of cached under a wrong one.
      if (modelId !== undefined) recovered.set(`${modelId}\u0000${taskId}`, task)
      return task
    }

    const generate = (record: MutableRequest, modelId: string, raw: Buffer, now: number) => {
      let body: unknown
      try {
        body = JSON.parse(raw.toString("utf8"))
      } catch {
        return { answer: badRequest("Invalid JSON body") }
      }
      if (!isRecord(body)) return { answer: badRequest("The request body must be a JSON object") }
      const input = body.input
      if (!isRecord(input)) return { answer: badRequest("input is required and must be an object") }
      const requestType = body.request_type ?? "async"
      if (requestType !== "async" && requestType !== "callback") {
        return { answer: badRequest('request_type must be "async" or "callback"') }
      }
      const callbackUrl = body.callback_url
      if (requestType === "callback" && (typeof callbackUrl !== "string" || !/^https?:\/\//.test(callbackUrl))) {
        return { answer: badRequest("callback_url is required when request_type is callback") }
      }
      if (body.provider !== undefined && typeof body.provider !== "string") {
        return { answer: badRequest("provider must be a string") }
      }
      const model = models[modelId] ?? {}
      if (model.inputSchema !== undefined) {
        const decoded = Schema.decodeUnknownEither(model.inputSchema as Schema.Schema<unknown, unknown, never>)(input)
        if (Either.isLeft(decoded)) {
          const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
          const text = issue === undefined ? "input is invalid" : `input${formatPath(issue.path)}: ${issue.message}`
          return { answer: badRequest(text) }
        }
      }
      const keyFingerprint = record.keyFingerprint!
      const active = [...tasks.values()].filter((task) => task.keyFingerprint === keyFingerprint && isActive(task, now))
      if (active.length >= concurrentTasks) {
        const firstDone = Math.min(...active.map((task) => task.completedAt))
        return {
          answer: json(429, "Too many concurrent tasks", null, retryAfterHeader((firstDone - now) / 1000))
        }
      }
      const billable =
        model.billableSeconds?.(input) ??
        (typeof input.duration === "number" && input.duration > 0
          ? input.duration
          : (options.defaultDurationSeconds ?? 5))
      if (balance < billable) return { answer: json(402, "Insufficient credits") }

      const sequence = ++taskSequence
      const taskId = makeTaskId(now, instance, sequence)
      const request: FakeApixo.TaskRequest = {
        modelId,
        input,
        requestType,
        callbackUrl: requestType === "callback" ? (callbackUrl as string) : undefined,
        provider: body.provider as string | undefined,
        sequence
      }
      const { completeAfter, outcome, processingAfter } = planOf(request)
      const resultUrls =
        outcome._tag === "Success"
          ? Array.from({ length: outcome.resultCount }, (_, index) => resultUrl(taskId, index))
          : []
      const task: FakeApixo.TaskRecord = {
        taskId,
        modelId,
        keyFingerprint,
        input,
        requestType,
        callbackUrl: request.callbackUrl,
        provider: request.provider,
        createdAt: now,
        processingAt: now + processingAfter,
        completedAt: now + completeAfter,
        outcome,
        billedSeconds: billable,
        resultUrls
      }
      tasks.set(taskId, task)
      balance -= billable
      bills.push({ taskId, modelId, keyFingerprint, seconds: billable, at: now, balanceAfter: balance })
      record.taskId = taskId
      if (task.callbackUrl !== undefined) scheduleCallbacks(task, task.callbackUrl)
      notify()
      return { answer: json(200, "success", { taskId }), task }
    }

    const status = (
      classified: Classified,
      keyFingerprint: string | undefined,
      now: number,
      fault: FakeApixo.Fault | undefined
    ): Answer => {
      if (classified.taskId === undefined || classified.taskId === "") return badRequest("taskId is required")
      const task = tasks.get(classified.taskId) ?? recover(classified.taskId, classified.modelId, keyFingerprint, now)
      if (task === undefined || task.modelId !== classified.modelId) return json(404, "Task not found")
      return json(200, "success", statusData(task, now, fault))
    }

    const download = (classified: Classified, method: string, now: number, fault: FakeApixo.Fault | undefined) => {
      const task =
        classified.taskId === undefined
          ? undefined
          : (tasks.get(classified.taskId) ?? recover(classified.taskId, undefined, undefined, now))
      if (
        task === undefined ||
        stateAt(task, now) !== "success" ||
        classified.index === undefined ||
        classified.index >= task.resultUrls.length
      ) {
        return json(404, "Not found")
      }
      if (now >= task.completedAt + retentionMillis) return json(410, "Result expired")
      const answer: Answer = {
        _tag: "Video",
        head: method === "HEAD",
        truncateAt: fault?._tag === "TruncatedDownload" ? Math.max(0, Math.min(fault.bytes, video.length)) : undefined
      }
      return answer
    }

    // ---- the request handler ---------------------------------------------------------------

    const write = (request: Http.IncomingMessage, response: Http.ServerResponse, answer: Answer) =>
      writeAnswer(request, response, answer, video)

    const handle = (request: Http.IncomingMessage, response: Http.ServerResponse) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        const method = request.method ?? "GET"
        const url = new URL(request.url ?? "/", "http://fake.invalid")
        const classified = classify(method, url)
        const authorization = request.headers.authorization
        const bearer = authorization === undefined ? undefined : /^Bearer\s+(.+)$/i.exec(authorization)?.[1]?.trim()
        const keyFingerprint = bearer === undefined ? undefined : deps.fingerprint(bearer)
        const record: MutableRequest = {
          sequence: requests.length + 1,
          method,
          path: url.pathname + url.search,
          route: classified.route,
          modelId: classified.modelId,
          taskId: classified.route === "generate" ? undefined : classified.taskId,
          authorizationSent: authorization !== undefined,
          keyFingerprint,
          authorized: keyFingerprint !== undefined && keyFingerprints.has(keyFingerprint),
          at,
          status: undefined,
          fault: undefined
        }
        if (classified.route === "download" && classified.taskId !== undefined) {
          record.modelId = tasks.get(classified.taskId)?.modelId
        }
        requests.push(record)
        notify()

        const answer = yield* decide(request, record, classified, at)
        if (answer.delay !== undefined) yield* sleepUntil(at + Duration.toMillis(answer.delay))
        record.status = write(request, response, answer.answer)
        notify()
      }).pipe(
        Effect.catchAllCause(() =>
          Effect.sync(() => {
            if (!response.headersSent && !response.destroyed) {
              const body = envelope(500, "Internal error of the fake")
              response.writeHead(500, { "content-type": "application/json; charset=utf-8" })
              response.end(body)
            }
            notify()
          })
        )
      )

    const decide = (
      request: Http.IncomingMessage,
      record: MutableRequest,
      classified: Classified,
      at: number
    ): Effect.Effect<{ readonly answer: Answer; readonly delay?: Duration.DurationInput }> =>
      Effect.gen(function* () {
        const route = classified.route
        if (route === "other") return { answer: json(404, "Not found") }

        if (route === "generate" || route === "status") {
          if (!record.authorized) return { answer: json(401, "Invalid or missing API key") }
          if (options.strictModels === true && models[classified.modelId!] === undefined) {
            return { answer: json(404, `Model ${classified.modelId} not found`) }
          }
          const fingerprintKey = record.keyFingerprint!
          const window = (admitted.get(fingerprintKey) ?? []).filter((time) => time > at - rateWindowMillis)
          admitted.set(fingerprintKey, window)
          if (window.length >= requestsPerMinute) {
            return {
              answer: json(
                429,
                "Rate limit exceeded",
                null,
                retryAfterHeader((window[0]! + rateWindowMillis - at) / 1000)
              )
            }
          }
          window.push(at)
        }

        // record.modelId also names the model of a downloaded task, so rules can match downloads by model.
        const fault = pickFault(route, record.modelId)
        record.fault = fault?._tag
        const delay = fault?._tag === "Slow" ? fault.delay : undefined
        const withDelay = (answer: Answer) => (delay === undefined ? { answer } : { answer, delay })

        if (fault?._tag === "ResetBeforeCreate") return { answer: { _tag: "Reset" } as const }
        if (fault?._tag === "RateLimit") {
          const headers =
            fault.retryAfterSeconds === undefined ? undefined : { "retry-after": String(fault.retryAfterSeconds) }
          return { answer: json(429, "Rate limit exceeded", null, headers) }
        }
        if (fault?._tag === "Status5xx" && !fault.afterCreate) {
          return { answer: json(fault.status, "Server error") }
        }

        switch (route) {
          case "generate": {
            const raw = yield* Effect.either(readBody(request))
            if (Either.isLeft(raw)) return { answer: { _tag: "Reset" } as const }
            if (raw.right === "tooLarge") return { answer: json(413, "Request body too large") }
            const outcome = generate(record, classified.modelId!, raw.right, at)
            if (outcome.task === undefined) return withDelay(outcome.answer)
            if (fault?._tag === "ResetAfterCreate") return { answer: { _tag: "Reset" } as const }
            if (fault?._tag === "Status5xx") return withDelay(json(fault.status, "Server error"))
            if (fault?._tag === "MalformedJson") return withDelay(malformedAnswer(outcome.task.taskId))
            return withDelay(outcome.answer)
          }
          case "status": {
            const answer = status(classified, record.keyFingerprint, at, fault)
            if (fault?._tag === "ResetAfterCreate") return { answer: { _tag: "Reset" } as const }
            if (fault?._tag === "Status5xx") return withDelay(json(fault.status, "Server error"))
            if (fault?._tag === "MalformedJson" && answer._tag === "Json" && answer.status === 200) {
              return withDelay(malformedAnswer(classified.taskId!))
            }
            return withDelay(answer)
          }
          case "download": {
            const answer = download(classified, request.method ?? "GET", at, fault)
            if (fault?._tag === "ResetAfterCreate") return { answer: { _tag: "Reset" } as const }
            if (fault?._tag === "Status5xx") return withDelay(json(fault.status, "Server error"))
            return withDelay(answer)
          }
        }
      })

    const malformedAnswer = (taskId: string): Answer => ({
      _tag: "Json",
      status: 200,
      body: `{"code":200,"message":"success","data":{"taskId":"${taskId}"`
    })

    const resultUrl = (taskId: string, index = 0) => `${baseUrl}/results/${encodeURIComponent(taskId)}/${index}.mp4`

    // ---- the socket --------------------------------------------------------------------------

    const httpServer = Http.createServer((request, response) => {
      run(handle(request, response))
    })
    const bound = yield* listen(httpServer, options.port ?? 0, host, deps.makeError)
    const port = bound.port
    baseUrl = bound.baseUrl

    const snapshot = <A extends object>(items: Iterable<A>): ReadonlyArray<A> => [...items].map((item) => ({ ...item }))

    const service: FakeApixo.Service = {
      url: baseUrl,
      port,
      apiKey: Redacted.make(apiKeys[0]!),
      get requests() {
        return snapshot(requests)
      },
      get tasks() {
        return snapshot(tasks.values())
      },
      get bills() {
        return snapshot(bills)
      },
      get callbacks() {
        return snapshot(callbacks)
      },
      get balanceSeconds() {
        return balance
      },
      setBalance: (seconds) => {
        balance = seconds
      },
      addFault: (rule) => {
        rules.add(rule)
      },
      clearFaults: () => {
        rules.clear()
      },
      resultUrl,
      billedSeconds: (taskId) =>
        bills.filter((bill) => taskId === undefined || bill.taskId === taskId).reduce((sum, b) => sum + b.seconds, 0),
      maxRequestsPerWindow: (windowOptions) => {
        const windowMillis =
          windowOptions?.window === undefined ? rateWindowMillis : Duration.toMillis(windowOptions.window)
        const byKey = new Map<string, Array<number>>()
        for (const request of requests) {
          if (request.route !== "generate" && request.route !== "status") continue
          if (request.keyFingerprint === undefined) continue
          if (windowOptions?.keyFingerprint !== undefined && request.keyFingerprint !== windowOptions.keyFingerprint) {
            continue
          }
          const times = byKey.get(request.keyFingerprint) ?? []
          times.push(request.at)
          byKey.set(request.keyFingerprint, times)
        }
        return maxInWindow(byKey.values(), windowMillis)
      },
      maxConcurrentTasks: (keyFingerprint) => {
        const byKey = new Map<string, Array<[number, number]>>()
        for (const task of tasks.values()) {
          if (keyFingerprint !== undefined && task.keyFingerprint !== keyFingerprint) continue
          const list = byKey.get(task.keyFingerprint) ?? []
          list.push([task.createdAt, 1], [task.completedAt, -1])
          byKey.set(task.keyFingerprint, list)
        }
        let max = 0
        for (const events of byKey.values()) {
          // A task ending at the instant another starts frees its slot first.
          events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
          let current = 0
          for (const [, delta] of events) {
            current += delta
            max = Math.max(max, current)
          }
        }
        return max
      },
      waitUntil: (predicate) => waitUntil(() => predicate(service)),
      awaitRequests: (count) =>
        service.waitUntil(() => requests.length >= count).pipe(Effect.map(() => service.requests)),
      awaitCallbacks: (count) =>
        service.waitUntil(() => callbacks.length >= count).pipe(Effect.map(() => service.callbacks))
    }
    return service
  })
