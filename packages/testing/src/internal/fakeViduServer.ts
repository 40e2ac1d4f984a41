/**
 * The fake Vidu server's machinery: a node:http server whose every request is handled by an
 * Effect run on the runtime the fake was built in, so task progress, URL expiry, rate windows,
 * slow answers and callback delays all follow that runtime's Clock (as the fake apixo server).
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberMap from "effect/FiberMap"
import * as FiberSet from "effect/FiberSet"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { randomBytes, randomUUID } from "node:crypto"
import { readFile } from "node:fs/promises"
import * as Http from "node:http"
import type * as FakeApixo from "../FakeApixo.js"
import type * as FakeVidu from "../FakeVidu.js"
import { readBody } from "./fakeApixoServer.js"
import { findSampleVideo } from "./fakeApixoFixture.js"
import { type Answer, listen, makeWaiters, maxInWindow, sleepUntil, writeAnswer } from "./fakeServerKit.js"
import { FaultRules } from "./faultRules.js"

const minute = 60_000
const apiPrefix = "/ent/v2"

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
type Task = Mutable<FakeVidu.TaskRecord> & { readonly token: string }

const ok = (body: unknown): Answer => ({ _tag: "Json", status: 200, body: JSON.stringify(body) })

/** An error answer as Vidu writes them: `{ code, reason, message, metadata: { trace_id } }`. */
const error = (status: number, reason: string, message: string, headers?: Http.OutgoingHttpHeaders): Answer => {
  const body = JSON.stringify({
    code: status,
    reason,
    message,
    metadata: { trace_id: randomBytes(16).toString("hex") }
  })
  return headers === undefined ? { _tag: "Json", status, body } : { _tag: "Json", status, body, headers }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isHttpUrl = (value: unknown): boolean => typeof value === "string" && /^https?:\/\/[^\s]+$/.test(value)

// The fields each endpoint takes (beyond these, Vidu answers FieldUnwanted) and its image count.
const common = [
  "model",
  "prompt",
  "duration",
  "seed",
  "resolution",
  "audio",
  "off_peak",
  "payload",
  "watermark",
  "callback_url"
]
const endpoints: Readonly<Record<string, { readonly fields: ReadonlyArray<string>; readonly images: number }>> = {
  text2video: { fields: [...common, "aspect_ratio"], images: 0 },
  img2video: { fields: [...common, "images"], images: 1 },
  "start-end2video": { fields: [...common, "images"], images: 2 }
}

interface Classified {
  readonly route: FakeVidu.RequestRoute
  readonly endpoint: string | undefined
  readonly taskId: string | undefined
  readonly index: number | undefined
}

const classify = (method: string, url: URL): Classified => {
  const none = { endpoint: undefined, taskId: undefined, index: undefined }
  const path = url.pathname
  if (
    method === "POST" &&
    path.startsWith(`${apiPrefix}/`) &&
    endpoints[path.slice(apiPrefix.length + 1)] !== undefined
  ) {
    return { ...none, route: "generate", endpoint: path.slice(apiPrefix.length + 1) }
  }
  const task = /^\/ent\/v2\/tasks\/([^/]+)\/(creations|cancel)$/.exec(path)
  if (task !== null) {
    const taskId = decodeURIComponent(task[1]!)
    if (task[2] === "creations" && method === "GET") return { ...none, route: "status", taskId }
    if (task[2] === "cancel" && method === "POST") return { ...none, route: "cancel", taskId }
  }
  const download = /^\/results\/([^/]+)\/(\d+)\.mp4$/.exec(path)
  if (download !== null && (method === "GET" || method === "HEAD")) {
    return {
      route: "download",
      endpoint: undefined,
      taskId: decodeURIComponent(download[1]!),
      index: Number(download[2])
    }
  }
  return { ...none, route: "other" }
}

/** Dependencies the public module hands in. */
export interface Deps<E> {
  readonly fingerprint: (apiKey: string) => string
  readonly signedHeaders: (signing: FakeVidu.Signing) => Record<string, string>
  readonly makeError: (message: string, cause: unknown) => E
}

/** Why a submit body breaks Vidu's rules, as `[reason, message]`, or undefined when it is valid. */
const checkBody = (endpoint: string, body: Record<string, unknown>, models: ReadonlyArray<string>) => {
  const rules = endpoints[endpoint]!
  const unwanted = Object.keys(body).filter((key) => !rules.fields.includes(key))
  if (unwanted.length > 0) return ["FieldUnwanted", `unwanted field: ${unwanted.join(",")}`] as const
  if (typeof body.model !== "string" || body.model === "")
    return ["FieldLacking", "field is missing or empty: model"] as const
  if (!models.includes(body.model)) return ["FieldInvalid", "invalid field: model"] as const
  if (endpoint === "text2video" && (typeof body.prompt !== "string" || body.prompt === "")) {
    return ["FieldLacking", "field is missing or empty: prompt"] as const
  }
  if (body.prompt !== undefined && (typeof body.prompt !== "string" || body.prompt.length > 5000)) {
    return ["FieldInvalid", "invalid field: prompt"] as const
  }
  if (rules.images > 0) {
    if (!Array.isArray(body.images)) return ["FieldLacking", "field is missing or empty: images"] as const
    if (body.images.length !== rules.images)
      return ["FieldItemCountOutOfRange", "field item count out of range: images"] as const
    if (!body.images.every(isHttpUrl)) return ["ImageDownloadFailure", "image download failure"] as const
  }
  const duration = body.duration
  if (
    duration !== undefined &&
    !(Number.isInteger(duration) && (duration as number) >= 1 && (duration as number) <= 16)
  ) {
    return ["FieldInvalid", "invalid field: duration"] as const
  }
  if (body.resolution !== undefined && !["540p", "720p", "1080p"].includes(body.resolution as string)) {
    return ["FieldInvalid", "invalid field: resolution"] as const
  }
  if (body.aspect_ratio !== undefined && !["16:9", "9:16", "4:3", "3:4", "1:1"].includes(body.aspect_ratio as string)) {
    return ["FieldInvalid", "invalid field: aspect_ratio"] as const
  }
  if (body.seed !== undefined && !Number.isInteger(body.seed)) return ["FieldInvalid", "invalid field: seed"] as const
  for (const flag of ["audio", "off_peak", "watermark"]) {
    if (body[flag] !== undefined && typeof body[flag] !== "boolean")
      return ["FieldInvalid", `invalid field: ${flag}`] as const
  }
  if (body.payload !== undefined && typeof body.payload !== "string")
    return ["FieldInvalid", "invalid field: payload"] as const
  if (body.callback_url !== undefined && !isHttpUrl(body.callback_url)) {
    return ["FieldInvalid", "invalid field: callback_url"] as const
  }
  return undefined
}

/** Builds and starts the fake in the current scope. */
export const make = <E>(options: FakeVidu.Options, deps: Deps<E>): Effect.Effect<FakeVidu.Service, E, Scope.Scope> =>
  Effect.gen(function* () {
    const apiKeys = options.apiKeys ?? ["vidu-test-key"]
    if (apiKeys.length === 0)
      return yield* Effect.fail(deps.makeError("FakeVidu needs at least one API key", undefined))
    const keyFingerprints = new Set(apiKeys.map(deps.fingerprint))
    const video =
      options.video ??
      (yield* Effect.tryPromise({
        try: () => readFile(findSampleVideo()),
        catch: (cause) => deps.makeError("Cannot read the sample video fixture", cause)
      }))
    const models = options.models ?? ["viduq3-pro", "viduq3-turbo"]
    const requestsPerMinute = options.requestsPerMinute ?? 60
    const concurrentTasks = options.concurrentTasks ?? 10
    const retryAfter = options.retryAfter ?? "auto"
    const retentionMillis = Duration.toMillis(options.resultRetention ?? Duration.hours(24))
    const callbackOptions = options.callbacks ?? {}
    const creditsPerSecond = options.creditsPerSecond ?? 1
    const host = options.host ?? "127.0.0.1"

    const requests: Array<Mutable<FakeVidu.RequestRecord>> = []
    const tasks = new Map<string, Task>()
    const bills: Array<FakeVidu.BillRecord> = []
    const callbacks: Array<FakeVidu.CallbackRecord> = []
    const rules = new FaultRules<FakeVidu.Route>(options.faults ?? [])
    const admitted = new Map<string, Array<number>>()
    let balance = options.balanceCredits ?? Number.POSITIVE_INFINITY
    let taskSequence = 0
    let callbackSequence = 0
    const instance = randomBytes(4).toString("hex")
    let baseUrl = ""

    const { notify, waitUntil } = makeWaiters()

    const retryAfterHeader = (seconds: number): Http.OutgoingHttpHeaders =>
      retryAfter === "none"
        ? {}
        : { "retry-after": String(retryAfter === "auto" ? Math.max(1, Math.ceil(seconds)) : retryAfter) }

    const stateAt = (task: Task, now: number): string =>
      task.cancelledAt !== undefined
        ? "failed"
        : now <= task.createdAt
          ? "created"
          : now < task.processingAt
            ? "queueing"
            : now < task.completedAt
              ? "processing"
              : task.outcome._tag === "Success"
                ? "success"
                : "failed"

    /** A task as a query answers it at `now`, with a status-shaped fault applied. */
    const taskView = (task: Task, now: number, fault: FakeApixo.Fault | undefined) => {
      const base = { id: task.taskId, credits: task.credits, payload: (task.body.payload as string | undefined) ?? "" }
      if (fault?._tag === "UnknownState") return { ...base, state: fault.state, err_code: "", creations: [] }
      const state = fault?._tag === "MalformedResultJson" ? "success" : stateAt(task, now)
      const creations =
        state === "success" && fault?._tag !== "MalformedResultJson"
          ? task.resultUrls.map((url, index) => ({ id: `${task.taskId}-${index}`, url, cover_url: `${url}.jpg` }))
          : []
      const errCode =
        state !== "failed"
          ? ""
          : task.cancelledAt !== undefined
            ? "UserCancelled"
            : task.outcome._tag === "Failed"
              ? task.outcome.failCode
              : ""
      return { ...base, state, err_code: errCode, creations }
    }

    const success: FakeApixo.Outcome = { _tag: "Success", resultCount: 1 }
    const timingsOf = () => {
      const processingAfter = Duration.toMillis(options.timings?.processingAfter ?? Duration.seconds(1))
      const completeAfter = Math.max(
        processingAfter,
        Duration.toMillis(options.timings?.completeAfter ?? Duration.seconds(5))
      )
      return { processingAfter, completeAfter }
    }
    const resultUrlsOf = (taskId: string, outcome: FakeApixo.Outcome) =>
      outcome._tag === "Success"
        ? Array.from({ length: outcome.resultCount }, (_, index) => resultUrl(taskId, index))
        : []

    const isActive = (task: Task, now: number) => task.createdAt <= now && now < task.completedAt

    // One callback fiber per task: a cancel replaces the scheduled completion callback.
    const callbackFibers = yield* FiberMap.make<string>()
    const callbackTimeout = Duration.toMillis(callbackOptions.timeout ?? Duration.seconds(30))

    const postCallback = (url: string, body: string, headers: Record<string, string>) =>
      Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json", ...headers },
            body,
            signal
          })
          await response.arrayBuffer().catch(() => undefined)
          return response.status
        },
        catch: (cause) => String(cause)
      }).pipe(
        Effect.timeoutFail({ duration: callbackTimeout, onTimeout: () => `no answer within ${callbackTimeout} ms` }),
        Effect.either
      )

    const recordCallback = (record: FakeVidu.CallbackRecord) => {
      callbacks.push(record)
      notify()
    }

    const deliverAll = (task: Task, url: string) =>
      Effect.gen(function* () {
        const firstAt = task.completedAt + Duration.toMillis(callbackOptions.delay ?? 0)
        const retries = callbackOptions.retries ?? 3
        const retryDelay = Duration.toMillis(callbackOptions.retryDelay ?? Duration.seconds(1))
        const duplicates = callbackOptions.duplicates ?? 0
        const duplicateDelay = Duration.toMillis(callbackOptions.duplicateDelay ?? Duration.seconds(1))
        let signed: { readonly body: string; readonly headers: Record<string, string> } | undefined
        for (let copy = 0; copy <= duplicates; copy++) {
          let due = firstAt + copy * duplicateDelay
          for (let attempt = 1; attempt <= retries + 1; attempt++) {
            yield* sleepUntil(due)
            const fault = rules.pick("callback", task.model)
            if (fault?._tag === "Slow") yield* sleepUntil(due + Duration.toMillis(fault.delay))
            const at = yield* Clock.currentTimeMillis
            // A copy replays the first delivery exactly; a retry is a new delivery, signed afresh.
            if (signed === undefined || copy === 0 || attempt > 1) {
              const body =
                fault?._tag === "MalformedJson"
                  ? `{"id":"${task.taskId}","state":`
                  : JSON.stringify(taskView(task, task.completedAt, fault))
              const headers = deps.signedHeaders({
                apiKey: task.token,
                url,
                date: new Date(at).toUTCString(),
                nonce: randomUUID()
              })
              signed = { body, headers }
            }
            const delivery = {
              sequence: ++callbackSequence,
              taskId: task.taskId,
              url,
              body: signed.body,
              headers: signed.headers,
              copy,
              attempt,
              at
            }
            if (fault?._tag === "DropCallback") {
              recordCallback({ ...delivery, outcome: "dropped", status: undefined, error: undefined })
              break
            }
            const result = yield* postCallback(url, signed.body, signed.headers)
            const delivered = Either.isRight(result) && result.right >= 200 && result.right < 300
            recordCallback({
              ...delivery,
              outcome: delivered ? "delivered" : "failed",
              status: Either.isRight(result) ? result.right : undefined,
              error: Either.isLeft(result) ? result.left : undefined
            })
            if (delivered) break
            due = (yield* Clock.currentTimeMillis) + retryDelay * 2 ** (attempt - 1)
          }
        }
      })

    const scheduleCallbacks = (task: Task) =>
      task.callbackUrl === undefined
        ? Effect.void
        : FiberMap.run(callbackFibers, task.taskId, deliverAll(task, task.callbackUrl))

    // Tasks answered from their id alone (`recoverTasks`): an id carries its creation time and its
    // fake's random tag, so a fake started later (the next run of a CLI) answers as if it had made it.
    const recovered = new Map<string, Task>()
    const idPattern = /^vidu_([0-9a-z]{1,11})_([0-9a-f]{8})_([0-9a-z]{1,8})$/
    const recover = (taskId: string, keyFingerprint: string | undefined, now: number): Task | undefined => {
      if (options.recoverTasks !== true) return undefined
      const cached = recovered.get(taskId)
      if (cached !== undefined) return cached
      const parsed = idPattern.exec(taskId)
      if (parsed === null || parsed[2] === instance) return undefined
      const createdAt = Number.parseInt(parsed[1]!, 36)
      if (!Number.isSafeInteger(createdAt) || createdAt > now) return undefined
      const outcome: FakeApixo.Outcome =
        (typeof options.outcome === "function" ? options.outcome({}) : options.outcome) ?? success
      const { processingAfter, completeAfter } = timingsOf()
      const task: Task = {
        taskId,
        endpoint: "",
        model: "",
        keyFingerprint: keyFingerprint ?? "",
        body: {},
        callbackUrl: undefined,
        createdAt,
        processingAt: createdAt + processingAfter,
        completedAt: createdAt + completeAfter,
        outcome,
        // Billed by the fake that created it.
        credits: 0,
        resultUrls: resultUrlsOf(taskId, outcome),
        cancelledAt: undefined,
        token: ""
      }
      recovered.set(taskId, task)
      return task
    }
    /** A task this fake made, or one rebuilt from its id under `recoverTasks`. */
    const lookup = (taskId: string | undefined, keyFingerprint: string | undefined, now: number) =>
      taskId === undefined ? undefined : (tasks.get(taskId) ?? recover(taskId, keyFingerprint, now))

    // ---- routes ------------------------------------------------------------------------------

    const generate = (
      record: Mutable<FakeVidu.RequestRecord>,
      endpoint: string,
      raw: Buffer,
      token: string,
      now: number
    ) =>
      Effect.gen(function* () {
        let body: unknown
        try {
          body = JSON.parse(raw.toString("utf8"))
        } catch {
          return { answer: error(400, "BadRequest", "bad request") }
        }
        if (!isRecord(body)) return { answer: error(400, "BadRequest", "bad request") }
        const broken = checkBody(endpoint, body, models)
        if (broken !== undefined) return { answer: error(400, broken[0], broken[1]) }
        const keyFingerprint = record.keyFingerprint!
        const active = [...tasks.values()].filter(
          (task) => task.keyFingerprint === keyFingerprint && isActive(task, now)
        )
        if (active.length >= concurrentTasks) {
          const firstDone = Math.min(...active.map((task) => task.completedAt))
          return { answer: error(429, "QuotaExceeded", "quota exceeded", retryAfterHeader((firstDone - now) / 1000)) }
        }
        const credits = ((body.duration as number | undefined) ?? 5) * creditsPerSecond
        if (balance < credits) return { answer: error(400, "CreditInsufficient", "insufficient credits") }
        const sequence = ++taskSequence
        const taskId = `vidu_${now.toString(36)}_${instance}_${sequence.toString(36)}`
        const outcome: FakeApixo.Outcome = (typeof options.outcome === "function"
          ? options.outcome(body)
          : options.outcome) ?? { _tag: "Success", resultCount: 1 }
        const processingAfter = Duration.toMillis(options.timings?.processingAfter ?? Duration.seconds(1))
        const completeAfter = Math.max(
          processingAfter,
          Duration.toMillis(options.timings?.completeAfter ?? Duration.seconds(5))
        )
        const task: Task = {
          taskId,
          endpoint,
          model: body.model as string,
          keyFingerprint,
          body,
          callbackUrl: body.callback_url as string | undefined,
          createdAt: now,
          processingAt: now + processingAfter,
          completedAt: now + completeAfter,
          outcome,
          credits,
          resultUrls:
            outcome._tag === "Success"
              ? Array.from({ length: outcome.resultCount }, (_, index) => resultUrl(taskId, index))
              : [],
          cancelledAt: undefined,
          token
        }
        tasks.set(taskId, task)
        balance -= credits
        bills.push({ taskId, model: task.model, keyFingerprint, credits, at: now, balanceAfter: balance })
        record.taskId = taskId
        yield* scheduleCallbacks(task)
        notify()
        const answer = ok({
          task_id: taskId,
          state: "created",
          model: task.model,
          prompt: body.prompt ?? "",
          images: body.images ?? [],
          duration: body.duration ?? 5,
          seed: body.seed ?? 0,
          resolution: body.resolution ?? "720p",
          credits,
          created_at: new Date(now).toISOString()
        })
        return { answer, task }
      })

    const cancel = (taskId: string, keyFingerprint: string, now: number) =>
      Effect.gen(function* () {
        const task = lookup(taskId, keyFingerprint, now)
        if (task === undefined || task.keyFingerprint !== keyFingerprint)
          return error(404, "TaskNotFound", "task not found")
        const state = stateAt(task, now)
        if (state !== "created" && state !== "queueing") {
          return error(400, "BadRequest", `task state is ${state}, can not cancel`)
        }
        task.cancelledAt = now
        task.completedAt = now
        // A task cancelled before it ran is not charged.
        balance += task.credits
        bills.push({
          taskId,
          model: task.model,
          keyFingerprint,
          credits: -task.credits,
          at: now,
          balanceAfter: balance
        })
        yield* scheduleCallbacks(task)
        notify()
        return ok({})
      })

    const download = (
      classified: Classified,
      method: string,
      now: number,
      fault: FakeApixo.Fault | undefined
    ): Answer => {
      const task = lookup(classified.taskId, undefined, now)
      if (task === undefined || stateAt(task, now) !== "success" || (classified.index ?? 0) >= task.resultUrls.length) {
        return error(404, "NotFound", "not found")
      }
      if (now >= task.completedAt + retentionMillis) return error(410, "NotFound", "result expired")
      return {
        _tag: "Video",
        head: method === "HEAD",
        truncateAt: fault?._tag === "TruncatedDownload" ? Math.max(0, Math.min(fault.bytes, video.length)) : undefined
      }
    }

    const resultUrl = (taskId: string, index = 0) => `${baseUrl}/results/${encodeURIComponent(taskId)}/${index}.mp4`

    const decide = (
      request: Http.IncomingMessage,
      record: Mutable<FakeVidu.RequestRecord>,
      classified: Classified,
      token: string | undefined,
      at: number
    ): Effect.Effect<{ readonly answer: Answer; readonly delay?: Duration.DurationInput }> =>
      Effect.gen(function* () {
        const route = classified.route
        if (route === "other") return { answer: error(404, "NotFound", "not found") }
        let raw: Buffer | undefined
        if (route === "generate" || route === "cancel") {
          const read = yield* Effect.either(readBody(request))
          if (Either.isLeft(read)) return { answer: { _tag: "Reset" } as const }
          if (read.right === "tooLarge") return { answer: error(413, "BadRequest", "request body too large") }
          raw = read.right
          record.body = raw.toString("utf8")
        }
        if (route !== "download") {
          if (!record.authorized) return { answer: error(401, "Unauthorized", "unauthorized") }
          const window = (admitted.get(record.keyFingerprint!) ?? []).filter((time) => time > at - minute)
          admitted.set(record.keyFingerprint!, window)
          if (window.length >= requestsPerMinute) {
            return {
              answer: error(
                429,
                "TooManyRequests",
                "too many requests",
                retryAfterHeader((window[0]! + minute - at) / 1000)
              )
            }
          }
          window.push(at)
        }
        const modelOf = () => {
          if (route === "generate" && raw !== undefined) {
            try {
              const parsed = JSON.parse(raw.toString("utf8")) as unknown
              return isRecord(parsed) && typeof parsed.model === "string" ? parsed.model : undefined
            } catch {
              return undefined
            }
          }
          return classified.taskId === undefined ? undefined : tasks.get(classified.taskId)?.model
        }
        const fault = rules.pick(route, modelOf())
        record.fault = fault?._tag
        const delay = fault?._tag === "Slow" ? fault.delay : undefined
        const withDelay = (answer: Answer) => (delay === undefined ? { answer } : { answer, delay })
        if (fault?._tag === "ResetBeforeCreate") return { answer: { _tag: "Reset" } as const }
        if (fault?._tag === "RateLimit") {
          const headers =
            fault.retryAfterSeconds === undefined ? undefined : { "retry-after": String(fault.retryAfterSeconds) }
          return { answer: error(429, "TooManyRequests", "too many requests", headers) }
        }
        if (fault?._tag === "Status5xx" && !fault.afterCreate) {
          return { answer: error(fault.status, "InternalServiceFailure", "internal service failure") }
        }
        const after = (answer: Answer, id: string | undefined) => {
          if (fault?._tag === "ResetAfterCreate") return { answer: { _tag: "Reset" } as const }
          if (fault?._tag === "Status5xx")
            return withDelay(error(fault.status, "InternalServiceFailure", "internal service failure"))
          if (fault?._tag === "MalformedJson" && answer._tag === "Json" && answer.status === 200) {
            return withDelay({ _tag: "Json", status: 200, body: `{"task_id":"${id ?? ""}","state":` })
          }
          return withDelay(answer)
        }
        switch (route) {
          case "generate": {
            const outcome = yield* generate(record, classified.endpoint!, raw!, token!, at)
            return outcome.task === undefined ? withDelay(outcome.answer) : after(outcome.answer, outcome.task.taskId)
          }
          case "status": {
            const task = lookup(classified.taskId, record.keyFingerprint, at)
            if (task === undefined || task.keyFingerprint !== record.keyFingerprint) {
              return withDelay(error(404, "TaskNotFound", "task not found"))
            }
            return after(ok(taskView(task, at, fault)), task.taskId)
          }
          case "cancel":
            return after(yield* cancel(classified.taskId!, record.keyFingerprint!, at), classified.taskId)
          case "download":
            return after(download(classified, request.method ?? "GET", at, fault), classified.taskId)
        }
      })

    const write = (request: Http.IncomingMessage, response: Http.ServerResponse, answer: Answer) =>
      writeAnswer(request, response, answer, video)

    const handle = (request: Http.IncomingMessage, response: Http.ServerResponse) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        const method = request.method ?? "GET"
        const url = new URL(request.url ?? "/", "http://fake.invalid")
        const classified = classify(method, url)
        const authorization = request.headers.authorization
        const token = authorization === undefined ? undefined : /^Token\s+(.+)$/.exec(authorization)?.[1]?.trim()
        const keyFingerprint = token === undefined ? undefined : deps.fingerprint(token)
        const record: Mutable<FakeVidu.RequestRecord> = {
          sequence: requests.length + 1,
          method,
          path: url.pathname + url.search,
          route: classified.route,
          endpoint: classified.endpoint,
          taskId: classified.taskId,
          body: undefined,
          authorizationSent: authorization !== undefined,
          keyFingerprint,
          authorized: keyFingerprint !== undefined && keyFingerprints.has(keyFingerprint),
          at,
          status: undefined,
          fault: undefined
        }
        requests.push(record)
        notify()
        const decided = yield* decide(request, record, classified, token, at)
        if (decided.delay !== undefined) yield* sleepUntil(at + Duration.toMillis(decided.delay))
        record.status = write(request, response, decided.answer)
        notify()
      }).pipe(
        Effect.catchAllCause(() =>
          Effect.sync(() => {
            if (!response.headersSent && !response.destroyed) {
              response.writeHead(500, { "content-type": "application/json; charset=utf-8" })
              response.end(
                JSON.stringify({ code: 500, reason: "InternalServiceFailure", message: "internal error of the fake" })
              )
            }
            notify()
          })
        )
      )

    const run = yield* FiberSet.makeRuntime<never>()
    const httpServer = Http.createServer((request, response) => {
      run(handle(request, response))
    })
    const bound = yield* listen(httpServer, options.port ?? 0, host, deps.makeError)
    const port = bound.port
    baseUrl = bound.baseUrl

    const snapshot = <A extends object>(items: Iterable<A>): ReadonlyArray<A> => [...items].map((item) => ({ ...item }))
    const publicTask = ({ token: _token, ...task }: Task): FakeVidu.TaskRecord => task

    const service: FakeVidu.Service = {
      url: `${baseUrl}${apiPrefix}`,
      port,
      apiKey: Redacted.make(apiKeys[0]!),
      get requests() {
        return snapshot(requests)
      },
      get tasks() {
        return [...tasks.values()].map(publicTask)
      },
      get bills() {
        return snapshot(bills)
      },
      get callbacks() {
        return snapshot(callbacks)
      },
      get balanceCredits() {
        return balance
      },
      setBalance: (credits) => {
        balance = credits
      },
      addFault: (rule) => rules.add(rule),
      clearFaults: () => rules.clear(),
      resultUrl,
      maxRequestsPerWindow: (windowOptions) => {
        const windowMillis = Duration.toMillis(windowOptions?.window ?? Duration.minutes(1))
        const byKey = new Map<string, Array<number>>()
        for (const request of requests) {
          if (request.route === "download" || request.route === "other" || request.keyFingerprint === undefined)
            continue
          byKey.set(request.keyFingerprint, [...(byKey.get(request.keyFingerprint) ?? []), request.at])
        }
        return maxInWindow(byKey.values(), windowMillis)
      },
      waitUntil: (predicate) => waitUntil(() => predicate(service)),
      awaitRequests: (count) =>
        Effect.map(
          service.waitUntil(() => requests.length >= count),
          () => service.requests
        ),
      awaitCallbacks: (count) =>
        Effect.map(
          service.waitUntil(() => callbacks.length >= count),
          () => service.callbacks
        )
    }
    return service
  })
