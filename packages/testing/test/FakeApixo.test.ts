import { describe, expect, it, layer } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Option, Redacted, Schema, TestClock } from "effect"
import { readFileSync } from "node:fs"
import * as Http from "node:http"
import * as FakeApixo from "../src/FakeApixo.js"
import { bodyOf, callbackReceiver, generate, send, statusOf, submit, textToVideo } from "./utils.js"

const video = readFileSync(FakeApixo.sampleVideoPath())

/** The wire schema of a small model, as a provider package would pass it in. */
const ViduLikeInput = Schema.Struct({
  mode: Schema.Literal("text-to-video", "image-to-video"),
  prompt: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(5000)),
  duration: Schema.optional(Schema.Int.pipe(Schema.between(1, 16)))
})

describe("FakeApixo keys", () => {
  it.scoped("answers 401 with the envelope for a wrong or missing key, and records keys only as fingerprints", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make()
      const wrong = yield* generate(fake, textToVideo(), { key: "sk-wrong-secret-1234" })
      const missing = yield* statusOf(fake, "task_1", { key: null })
      expect([wrong.status, bodyOf(wrong)]).toEqual([
        401,
        { code: 401, message: "Invalid or missing API key", data: null }
      ])
      expect(missing.status).toBe(401)
      expect(fake.tasks).toHaveLength(0)
      expect(fake.requests.map((request) => [request.route, request.authorized, request.keyFingerprint])).toEqual([
        ["generate", false, FakeApixo.fingerprint("sk-wrong-secret-1234")],
        ["status", false, undefined]
      ])
      const printed = JSON.stringify([fake.requests, fake.tasks, fake.bills])
      expect(printed).not.toContain("sk-wrong-secret")
      expect(String(fake.apiKey)).not.toContain("test-key")
      expect(Redacted.value(fake.apiKey)).toBe(FakeApixo.defaultApiKey)
    })
  )
})

describe("FakeApixo tasks", () => {
  it.scoped("moves a task through pending, processing and success on the TestClock, with served result URLs", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        timings: { processingAfter: "10 seconds", completeAfter: "90 seconds" },
        outcome: FakeApixo.success(2)
      })
      yield* TestClock.adjust("1 second")
      const taskId = yield* submit(fake)
      const seen: Array<unknown> = []
      for (const step of ["0 seconds", "10 seconds", "79 seconds", "1 second"] as const) {
        yield* TestClock.adjust(step)
        seen.push(bodyOf(yield* statusOf(fake, taskId)).data.state)
      }
      expect(seen).toEqual(["pending", "processing", "processing", "success"])
      const done = bodyOf(yield* statusOf(fake, taskId))
      expect(done).toEqual({
        code: 200,
        message: "success",
        data: {
          taskId,
          state: "success",
          resultJson: JSON.stringify({ resultUrls: [fake.resultUrl(taskId, 0), fake.resultUrl(taskId, 1)] }),
          createTime: 1_000,
          completeTime: 91_000,
          costTime: 90_000
        }
      })
      expect(JSON.parse(done.data.resultJson).resultUrls[1]).toBe(`${fake.url}/results/${taskId}/1.mp4`)
    })
  )

  it.scoped("fails tasks chosen per prompt with failCode and failMsg, still answering code 200", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        outcome: (task) =>
          String(task.input.prompt).includes("forbidden")
            ? FakeApixo.failure("CONTENT_VIOLATION", "Content does not meet safety guidelines")
            : FakeApixo.success()
      })
      const bad = yield* submit(fake, textToVideo(4, "something forbidden"))
      const good = yield* submit(fake, textToVideo(4, "a calm sea"))
      yield* TestClock.adjust("5 seconds")
      const failed = yield* statusOf(fake, bad)
      expect([failed.status, bodyOf(failed)]).toEqual([
        200,
        {
          code: 200,
          message: "success",
          data: {
            taskId: bad,
            state: "failed",
            failCode: "CONTENT_VIOLATION",
            failMsg: "Content does not meet safety guidelines",
            createTime: 0,
            completeTime: 5_000,
            costTime: 5_000
          }
        }
      ])
      expect(bodyOf(yield* statusOf(fake, good)).data.state).toBe("success")
    })
  )

  it.scoped("answers 404 for an unknown task or another model's task, 400 without taskId", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make()
      const taskId = yield* submit(fake)
      const unknown = yield* statusOf(fake, "task_99999999")
      const otherModel = yield* statusOf(fake, taskId, { modelId: "kling-2-6" })
      const missing = yield* send(`${fake.url}/api/v1/statusTask/vidu-q3`, {
        headers: { authorization: "Bearer test-key" }
      })
      expect([unknown.status, bodyOf(unknown)]).toEqual([404, { code: 404, message: "Task not found", data: null }])
      expect(otherModel.status).toBe(404)
      expect([missing.status, bodyOf(missing).message]).toEqual([400, "taskId is required"])
    })
  )
})

describe("FakeApixo task ids", () => {
  it.scoped("are unique across instances, even for tasks created at the same instant", () =>
    Effect.gen(function* () {
      const first = yield* FakeApixo.make()
      const second = yield* FakeApixo.make()
      const ids = [yield* submit(first), yield* submit(second), yield* submit(first), yield* submit(second)]
      expect(new Set(ids).size).toBe(4)
      // Each fake knows only its own tasks.
      expect((yield* statusOf(first, ids[1]!)).status).toBe(404)
      expect((yield* statusOf(second, ids[0]!)).status).toBe(404)
    })
  )

  it.scoped("recoverTasks: another fake's task is answered from its id, as if created then", () =>
    Effect.gen(function* () {
      const options = { timings: { processingAfter: "1 second", completeAfter: "3 seconds" } } as const
      const creator = yield* FakeApixo.make(options)
      yield* TestClock.adjust("2 seconds")
      const taskId = yield* submit(creator)
      const later = yield* FakeApixo.make({ ...options, recoverTasks: true })
      const plain = yield* FakeApixo.make(options)
      expect(bodyOf(yield* statusOf(later, taskId)).data).toEqual({ taskId, state: "pending", createTime: 2_000 })
      yield* TestClock.adjust("1 second")
      expect(bodyOf(yield* statusOf(later, taskId)).data.state).toBe("processing")
      yield* TestClock.adjust("2 seconds")
      const done = bodyOf(yield* statusOf(later, taskId)).data
      expect(done).toMatchObject({ taskId, state: "success", createTime: 2_000, completeTime: 5_000 })
      expect(JSON.parse(done.resultJson).resultUrls).toEqual([later.resultUrl(taskId)])
      const downloaded = yield* send(later.resultUrl(taskId))
      expect([downloaded.status, downloaded.text.length]).toEqual([200, video.toString("utf8").length])
      // Without the option, or for an id no fake made, or of another model id: unknown.
      expect((yield* statusOf(plain, taskId)).status).toBe(404)
      expect((yield* statusOf(later, "task_123")).status).toBe(404)
      expect(later.tasks).toEqual([])
      expect(later.billedSeconds()).toBe(0)
    })
  )

  it.scoped("recoverTasks: rebuilt tasks end with the configured outcome, and a fake's own unknown ids stay 404", () =>
    Effect.gen(function* () {
      const creator = yield* FakeApixo.make()
      const taskId = yield* submit(creator)
      const later = yield* FakeApixo.make({ recoverTasks: true, outcome: FakeApixo.failure("QUOTA", "no") })
      yield* TestClock.adjust("5 seconds")
      expect(bodyOf(yield* statusOf(later, taskId)).data).toMatchObject({ state: "failed", failCode: "QUOTA" })
      const own = yield* submit(later)
      expect((yield* statusOf(later, own.replace(/_[0-9a-z]+$/, "_zz"))).status).toBe(404)
    })
  )
})

describe("FakeApixo input validation", () => {
  it.scoped(
    "rejects an input its model's schema refuses with the documented 400 body, creating and billing nothing",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeApixo.make({ models: { "vidu-q3": { inputSchema: ViduLikeInput } } })
        const tooLong = yield* generate(fake, textToVideo(17))
        expect([tooLong.status, bodyOf(tooLong)]).toEqual([
          400,
          { code: 400, message: "input.duration: Expected a number between 1 and 16, actual 17", data: null }
        ])
        const emptyPrompt = yield* generate(fake, textToVideo(4, ""))
        expect(bodyOf(emptyPrompt).message).toMatch(/^input\.prompt: /)
        // A model without a registered schema accepts any input object.
        const other = yield* generate(fake, textToVideo(17), { modelId: "kling-2-6" })
        expect(other.status).toBe(200)
        expect(fake.tasks.map((task) => task.modelId)).toEqual(["kling-2-6"])
        expect(fake.bills.map((bill) => bill.seconds)).toEqual([17])
      })
  )

  it.scoped("can put the 400 text in data.error instead", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        models: { "vidu-q3": { inputSchema: ViduLikeInput } },
        validationErrorStyle: "dataError"
      })
      const answer = yield* generate(fake, { input: { mode: "sketch-to-video", prompt: "x" } })
      expect(answer.status).toBe(400)
      expect(bodyOf(answer).message).toBe("Bad Request")
      expect(bodyOf(answer).data.error).toMatch(/^input\.mode: /)
    })
  )

  it.scoped("enforces the body rules: JSON object, input, request_type, callback_url exactly when callback", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make()
      const answers = yield* Effect.all([
        generate(fake, "{not json"),
        generate(fake, { request_type: "async" }),
        generate(fake, textToVideo(4, "x", { request_type: "webhook" })),
        generate(fake, textToVideo(4, "x", { request_type: "callback" })),
        generate(fake, textToVideo(4, "x", { request_type: "callback", callback_url: "not a url" }))
      ])
      expect(answers.map((answer) => [answer.status, bodyOf(answer).message])).toEqual([
        [400, "Invalid JSON body"],
        [400, "input is required and must be an object"],
        [400, 'request_type must be "async" or "callback"'],
        [400, "callback_url is required when request_type is callback"],
        [400, "callback_url is required when request_type is callback"]
      ])
      expect(fake.tasks).toHaveLength(0)
    })
  )
})

describe("FakeApixo billing", () => {
  it.scoped("bills duration seconds against the balance, answers 402 when it is spent, and records every bill", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({ balanceSeconds: 10 })
      const first = yield* submit(fake, textToVideo(4))
      yield* TestClock.adjust("2 seconds")
      const second = yield* submit(fake, textToVideo(4))
      const refused = yield* generate(fake, textToVideo(4))
      expect([refused.status, bodyOf(refused)]).toEqual([
        402,
        { code: 402, message: "Insufficient credits", data: null }
      ])
      expect(fake.bills).toEqual([
        {
          taskId: first,
          modelId: "vidu-q3",
          keyFingerprint: FakeApixo.fingerprint("test-key"),
          seconds: 4,
          at: 0,
          balanceAfter: 6
        },
        {
          taskId: second,
          modelId: "vidu-q3",
          keyFingerprint: FakeApixo.fingerprint("test-key"),
          seconds: 4,
          at: 2_000,
          balanceAfter: 2
        }
      ])
      expect([fake.balanceSeconds, fake.billedSeconds(), fake.billedSeconds(first)]).toEqual([2, 8, 4])
      // An input without a duration is billed the default 5 s; topping up lets it through.
      fake.setBalance(5)
      yield* submit(fake, { input: { mode: "text-to-video", prompt: "no duration" } })
      expect([fake.bills[2]!.seconds, fake.balanceSeconds]).toEqual([5, 0])
    })
  )
})

describe("FakeApixo limits", () => {
  it.scoped(
    "answers 429 with Retry-After to the 61st request of a minute, per key, and admits again a minute later",
    () =>
      Effect.gen(function* () {
        const fake = yield* FakeApixo.make({ apiKeys: ["key-a", "key-b"] })
        const taskId = yield* submit(fake, textToVideo(), { key: "key-a" })
        yield* TestClock.adjust("20 seconds")
        for (let n = 2; n <= 60; n++) {
          expect((yield* statusOf(fake, taskId, { key: "key-a" })).status).toBe(200)
        }
        const limited = yield* statusOf(fake, taskId, { key: "key-a" })
        expect([limited.status, bodyOf(limited), limited.headers.get("retry-after")]).toEqual([
          429,
          { code: 429, message: "Rate limit exceeded", data: null },
          "40"
        ])
        expect((yield* statusOf(fake, taskId, { key: "key-b" })).status).toBe(200)
        yield* TestClock.adjust("40 seconds")
        expect((yield* statusOf(fake, taskId, { key: "key-a" })).status).toBe(200)
        const keyA = FakeApixo.fingerprint("key-a")
        expect(fake.maxRequestsPerWindow({ keyFingerprint: keyA })).toBe(61)
        expect(fake.maxRequestsPerWindow({ keyFingerprint: FakeApixo.fingerprint("key-b") })).toBe(1)
        expect(fake.requests.filter((request) => request.status === 429).map((request) => request.sequence)).toEqual([
          61
        ])
      })
  )

  it.scoped("can answer the limit's 429 without Retry-After, or with a fixed one", () =>
    Effect.gen(function* () {
      const bare = yield* FakeApixo.make({ requestsPerMinute: 1, retryAfter: "none" })
      yield* statusOf(bare, "task_1")
      const withoutHeader = yield* statusOf(bare, "task_1")
      expect([withoutHeader.status, withoutHeader.headers.has("retry-after")]).toEqual([429, false])
      const fixed = yield* FakeApixo.make({ requestsPerMinute: 1, retryAfter: 7 })
      yield* statusOf(fixed, "task_1")
      expect((yield* statusOf(fixed, "task_1")).headers.get("retry-after")).toBe("7")
    })
  )

  it.scoped("answers 429 to the 11th concurrent task and admits it once one finishes", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({ timings: { completeAfter: "30 seconds" } })
      for (let n = 1; n <= 10; n++) yield* submit(fake)
      yield* TestClock.adjust("10 seconds")
      const eleventh = yield* generate(fake, textToVideo())
      expect([eleventh.status, bodyOf(eleventh).message, eleventh.headers.get("retry-after")]).toEqual([
        429,
        "Too many concurrent tasks",
        "20"
      ])
      expect(fake.bills).toHaveLength(10)
      yield* TestClock.adjust("20 seconds")
      yield* submit(fake)
      expect(fake.tasks).toHaveLength(11)
      expect(fake.maxConcurrentTasks()).toBe(10)
    })
  )

  it.scoped("computes the most requests one key sent in any sliding window", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({ apiKeys: ["key-a", "key-b"] })
      for (const step of ["0 seconds", "30 seconds", "31 seconds"] as const) {
        yield* TestClock.adjust(step)
        for (let n = 0; n < 3; n++) yield* statusOf(fake, "task_x", { key: "key-a" })
      }
      yield* statusOf(fake, "task_x", { key: "key-b" })
      expect(fake.maxRequestsPerWindow()).toBe(6)
      expect(fake.maxRequestsPerWindow({ window: "30 seconds" })).toBe(3)
      expect(fake.maxRequestsPerWindow({ window: "62 seconds" })).toBe(9)
      expect(fake.maxRequestsPerWindow({ keyFingerprint: FakeApixo.fingerprint("key-b") })).toBe(1)
    })
  )
})

describe("FakeApixo downloads", () => {
  it.scoped("serves the MP4 without credentials, records that none were sent, and answers 410 after retention", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({ resultRetention: "1 hour" })
      const taskId = yield* submit(fake)
      const early = yield* send(fake.resultUrl(taskId))
      expect(early.status).toBe(404)
      yield* TestClock.adjust("5 seconds")
      const bytes = yield* Effect.promise(async () => {
        const response = await fetch(fake.resultUrl(taskId))
        return {
          status: response.status,
          type: response.headers.get("content-type"),
          length: response.headers.get("content-length"),
          body: new Uint8Array(await response.arrayBuffer())
        }
      })
      expect([bytes.status, bytes.type, bytes.length]).toEqual([200, "video/mp4", String(video.length)])
      expect(Buffer.from(bytes.body).equals(video)).toBe(true)
      expect(Buffer.from(bytes.body.subarray(4, 8)).toString("latin1")).toBe("ftyp")
      const head = yield* send(fake.resultUrl(taskId), { method: "HEAD" })
      expect([head.status, head.text]).toEqual([200, ""])
      const downloads = fake.requests.filter((request) => request.route === "download")
      expect(downloads.map((request) => [request.status, request.authorizationSent, request.taskId])).toEqual([
        [404, false, taskId],
        [200, false, taskId],
        [200, false, taskId]
      ])
      yield* TestClock.adjust("1 hour")
      const gone = yield* send(fake.resultUrl(taskId))
      expect([gone.status, bodyOf(gone)]).toEqual([410, { code: 410, message: "Result expired", data: null }])
      expect((yield* send(fake.resultUrl(taskId, 1))).status).toBe(404)
    })
  )
})

describe("FakeApixo callbacks", () => {
  const callbackBody = (url: string) => textToVideo(4, "x", { request_type: "callback", callback_url: url })

  it.scoped("POSTs the status envelope to callback_url when the task completes", () =>
    Effect.gen(function* () {
      const receiver = yield* callbackReceiver()
      const fake = yield* FakeApixo.make()
      const taskId = yield* submit(fake, callbackBody(receiver.url))
      yield* TestClock.adjust("4 seconds")
      expect(fake.callbacks).toHaveLength(0)
      yield* TestClock.adjust("1 second")
      const [record] = yield* fake.awaitCallbacks(1)
      const status = bodyOf(yield* statusOf(fake, taskId))
      expect(receiver.bodies.map((body) => JSON.parse(body))).toEqual([status])
      expect(record).toMatchObject({
        taskId,
        url: receiver.url,
        copy: 0,
        attempt: 1,
        at: 5_000,
        outcome: "delivered",
        status: 200
      })
    })
  )

  it.scoped("delays, duplicates and drops callbacks as configured", () =>
    Effect.gen(function* () {
      const receiver = yield* callbackReceiver()
      const fake = yield* FakeApixo.make({
        callbacks: { delay: "30 seconds", duplicates: 2, duplicateDelay: "10 seconds" },
        faults: [{ match: { route: "callback", nth: 2 }, fault: FakeApixo.dropCallback }]
      })
      yield* submit(fake, callbackBody(receiver.url))
      yield* TestClock.adjust("34 seconds")
      expect(fake.callbacks).toHaveLength(0)
      yield* TestClock.adjust("1 second")
      yield* fake.awaitCallbacks(1)
      yield* TestClock.adjust("10 seconds")
      yield* fake.awaitCallbacks(2)
      yield* TestClock.adjust("10 seconds")
      const records = yield* fake.awaitCallbacks(3)
      expect(records.map((record) => [record.copy, record.at, record.outcome])).toEqual([
        [0, 35_000, "delivered"],
        [1, 45_000, "dropped"],
        [2, 55_000, "delivered"]
      ])
      expect(receiver.bodies).toHaveLength(2)
      expect(receiver.bodies[0]).toBe(receiver.bodies[1])
    })
  )

  it.scoped("retries a callback the receiver refused, after 1 s then 2 s", () =>
    Effect.gen(function* () {
      const receiver = yield* callbackReceiver((n) => (n <= 2 ? 500 : 200))
      const fake = yield* FakeApixo.make({ timings: { completeAfter: "1 second" } })
      yield* submit(fake, callbackBody(receiver.url))
      yield* TestClock.adjust("1 second")
      yield* fake.awaitCallbacks(1)
      yield* TestClock.adjust("1 second")
      yield* fake.awaitCallbacks(2)
      yield* TestClock.adjust("2 seconds")
      const records = yield* fake.awaitCallbacks(3)
      expect(records.map((record) => [record.attempt, record.at, record.outcome, record.status])).toEqual([
        [1, 1_000, "failed", 500],
        [2, 2_000, "failed", 500],
        [3, 4_000, "delivered", 200]
      ])
    })
  )

  it.scoped("a POST the receiver leaves unanswered fails after callbacks.timeout and is retried", () =>
    Effect.gen(function* () {
      // The first POST is held open for ever; later ones are answered 200.
      const arrivals: Array<number> = []
      let arrived: () => void = () => {}
      const firstArrived = new Promise<void>((resolve) => {
        arrived = resolve
      })
      const receiver = Http.createServer((request, response) => {
        arrivals.push(arrivals.length + 1)
        request.resume()
        if (arrivals.length === 1) arrived()
        else request.on("end", () => response.writeHead(200).end())
      })
      const port = yield* Effect.acquireRelease(
        Effect.async<number>((resume) => {
          receiver.listen(0, "127.0.0.1", () => resume(Effect.succeed((receiver.address() as { port: number }).port)))
        }),
        () =>
          Effect.async<void>((resume) => {
            receiver.close(() => resume(Effect.void))
            receiver.closeAllConnections()
          })
      )
      const fake = yield* FakeApixo.make({
        timings: { completeAfter: "1 second" },
        callbacks: { timeout: "10 seconds", retryDelay: "1 second" }
      })
      yield* submit(fake, callbackBody(`http://127.0.0.1:${port}/hook`))
      yield* TestClock.adjust("1 second")
      yield* Effect.promise(() => firstArrived)
      yield* TestClock.adjust("9 seconds")
      expect(fake.callbacks).toHaveLength(0)
      yield* TestClock.adjust("1 second")
      const [timedOut] = yield* fake.awaitCallbacks(1)
      expect(timedOut).toMatchObject({ attempt: 1, at: 1_000, outcome: "failed", status: undefined })
      expect(timedOut!.error).toContain("10000 ms")
      yield* TestClock.adjust("1 second")
      const records = yield* fake.awaitCallbacks(2)
      expect(records.map((record) => [record.attempt, record.at, record.outcome, record.status])).toEqual([
        [1, 1_000, "failed", undefined],
        [2, 12_000, "delivered", 200]
      ])
      expect(arrivals).toEqual([1, 2])
    })
  )

  it.scoped("applies body faults to callbacks: malformed JSON, malformed resultJson, unknown states", () =>
    Effect.gen(function* () {
      const receiver = yield* callbackReceiver()
      const fake = yield* FakeApixo.make({
        faults: [
          { match: { route: "callback", nth: 1 }, fault: FakeApixo.malformedJson },
          { match: { route: "callback", nth: 2 }, fault: FakeApixo.malformedResultJson },
          { match: { route: "callback", nth: 3 }, fault: FakeApixo.unknownState("queued") }
        ]
      })
      for (let n = 0; n < 3; n++) yield* submit(fake, callbackBody(receiver.url))
      yield* TestClock.adjust("5 seconds")
      yield* fake.awaitCallbacks(3)
      const [first, second, third] = [...receiver.bodies].sort((a, b) => a.length - b.length).map(String)
      const parsed = [first!, second!, third!].map((body) => Either.try(() => JSON.parse(body)))
      expect(parsed.filter(Either.isLeft)).toHaveLength(1)
      const states = parsed
        .filter(Either.isRight)
        .map((body) => body.right.data.state)
        .sort()
      expect(states).toEqual(["queued", "success"])
      const success = parsed.filter(Either.isRight).find((body) => body.right.data.state === "success")!
      expect(() => JSON.parse(success.right.data.resultJson)).toThrow()
    })
  )
})

describe("FakeApixo faults", () => {
  it.scoped("5xx before the task exists, or after it was created and billed", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        faults: [
          { match: { route: "generate", nth: 1 }, fault: FakeApixo.status5xx(503) },
          { match: { route: "generate", nth: 2 }, fault: FakeApixo.status5xx(502, { afterCreate: true }) }
        ]
      })
      const before = yield* generate(fake, textToVideo())
      const after = yield* generate(fake, textToVideo())
      expect([before.status, bodyOf(before)]).toEqual([503, { code: 503, message: "Server error", data: null }])
      expect(after.status).toBe(502)
      expect(fake.tasks).toHaveLength(1)
      expect(fake.bills).toHaveLength(1)
      expect(fake.requests.map((request) => [request.status, request.fault, request.taskId])).toEqual([
        [503, "Status5xx", undefined],
        [502, "Status5xx", fake.tasks[0]!.taskId]
      ])
    })
  )

  it.scoped("a 429 storm: the rule fires `times` times, with and without Retry-After, then stops", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        faults: [
          { match: { route: "status", nth: 1 }, fault: FakeApixo.rateLimit() },
          { match: { route: "status", times: 2 }, fault: FakeApixo.rateLimit(3) }
        ]
      })
      const taskId = yield* submit(fake)
      const answers: Array<[number, string | null]> = []
      for (let n = 0; n < 4; n++) {
        const answer = yield* statusOf(fake, taskId)
        answers.push([answer.status, answer.headers.get("retry-after")])
      }
      expect(answers).toEqual([
        [429, null],
        [429, "3"],
        [429, "3"],
        [200, null]
      ])
    })
  )

  it.scoped("`every` fires on each multiple, `modelId` narrows, and rules can be added and cleared at run time", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make()
      fake.addFault({ match: { route: "status", every: 2, modelId: "vidu-q3" }, fault: FakeApixo.status5xx() })
      const taskId = yield* submit(fake)
      const statuses: Array<number> = []
      for (let n = 0; n < 4; n++) statuses.push((yield* statusOf(fake, taskId)).status)
      statuses.push((yield* statusOf(fake, taskId, { modelId: "other" })).status)
      fake.clearFaults()
      statuses.push((yield* statusOf(fake, taskId)).status)
      expect(statuses).toEqual([200, 500, 200, 500, 404, 200])
    })
  )

  it.scoped("a slow answer waits on the Clock before answering", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        faults: [{ match: { route: "status" }, fault: FakeApixo.slow("30 seconds") }]
      })
      const taskId = yield* submit(fake)
      const fiber = yield* Effect.fork(statusOf(fake, taskId))
      yield* fake.awaitRequests(2)
      yield* TestClock.adjust("29 seconds")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 second")
      const answer = yield* Fiber.join(fiber)
      // The status was read on arrival (t = 0), so the task is still pending although 30 s passed.
      expect([answer.status, bodyOf(answer).data.state]).toEqual([200, "pending"])
    })
  )

  it.scoped("resetBeforeCreate: the connection breaks and nothing is created", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        faults: [{ match: { route: "generate", nth: 1 }, fault: FakeApixo.resetBeforeCreate }]
      })
      const result = yield* Effect.either(generate(fake, textToVideo()))
      expect(Either.isLeft(result)).toBe(true)
      expect([fake.tasks.length, fake.bills.length]).toEqual([0, 0])
      expect(fake.requests[0]).toMatchObject({ route: "generate", fault: "ResetBeforeCreate", status: undefined })
    })
  )

  it.scoped("resetAfterCreate: the connection breaks after the task was created, and it is billed exactly once", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        faults: [{ match: { route: "generate", nth: 1 }, fault: FakeApixo.resetAfterCreate }]
      })
      const result = yield* Effect.either(generate(fake, textToVideo(6)))
      expect(Either.isLeft(result)).toBe(true)
      const [task] = fake.tasks
      expect(fake.bills.map((bill) => [bill.taskId, bill.seconds])).toEqual([[task!.taskId, 6]])
      expect(fake.requests[0]).toMatchObject({ fault: "ResetAfterCreate", taskId: task!.taskId, status: undefined })
      // The task lives on: a client that learns its id later can still fetch it.
      yield* TestClock.adjust("5 seconds")
      expect(bodyOf(yield* statusOf(fake, task!.taskId)).data.state).toBe("success")
      expect(fake.billedSeconds(task!.taskId)).toBe(6)
    })
  )

  it.scoped("malformed JSON answers (after creating the task), malformed resultJson and unknown states", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        faults: [
          { match: { route: "generate", nth: 2 }, fault: FakeApixo.malformedJson },
          { match: { route: "status", nth: 1 }, fault: FakeApixo.malformedJson },
          { match: { route: "status", nth: 2 }, fault: FakeApixo.malformedResultJson },
          { match: { route: "status", nth: 3 }, fault: FakeApixo.unknownState("queued") }
        ]
      })
      const taskId = yield* submit(fake)
      const garbledSubmit = yield* generate(fake, textToVideo())
      expect(garbledSubmit.status).toBe(200)
      expect(() => JSON.parse(garbledSubmit.text)).toThrow()
      expect(fake.tasks).toHaveLength(2)
      const garbled = yield* statusOf(fake, taskId)
      expect([garbled.status, garbled.headers.get("content-type")]).toEqual([200, "application/json; charset=utf-8"])
      expect(() => JSON.parse(garbled.text)).toThrow()
      const badResult = bodyOf(yield* statusOf(fake, taskId))
      expect(badResult.data.state).toBe("success")
      expect(() => JSON.parse(badResult.data.resultJson)).toThrow()
      expect(bodyOf(yield* statusOf(fake, taskId)).data).toEqual({ taskId, state: "queued", createTime: 0 })
      expect(bodyOf(yield* statusOf(fake, taskId)).data.state).toBe("pending")
    })
  )

  it.scoped("a truncated download announces the whole file, then the connection breaks", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.make({
        faults: [{ match: { route: "download", nth: 1 }, fault: FakeApixo.truncatedDownload(1000) }]
      })
      const taskId = yield* submit(fake)
      yield* TestClock.adjust("5 seconds")
      const outcome = yield* Effect.promise(async () => {
        const response = await fetch(fake.resultUrl(taskId))
        const length = response.headers.get("content-length")
        const reader = response.body!.getReader()
        let received = 0
        try {
          for (;;) {
            const chunk = await reader.read()
            if (chunk.done) return { length, received, error: undefined }
            received += chunk.value.length
          }
        } catch (error) {
          return { length, received, error: String(error) }
        }
      })
      expect(outcome.length).toBe(String(video.length))
      expect(outcome.received).toBe(1000)
      expect(outcome.error).toBeDefined()
      expect((yield* send(fake.resultUrl(taskId))).text.length).toBeGreaterThan(0)
    })
  )
})

describe("FakeApixo from plain Node", () => {
  it("start() runs on the live clock and close() frees the port", async () => {
    const fake = await FakeApixo.start({ timings: { processingAfter: 0, completeAfter: 0 } })
    const submitted = await fetch(`${fake.url}/api/v1/generateTask/any-model`, {
      method: "POST",
      headers: { authorization: "Bearer test-key", "content-type": "application/json" },
      body: JSON.stringify({ input: { mode: "text-to-video", prompt: "x", duration: 1 } })
    }).then((response) => response.json() as Promise<any>)
    const status = await fetch(`${fake.url}/api/v1/statusTask/any-model?taskId=${submitted.data.taskId}`, {
      headers: { authorization: "Bearer test-key" }
    }).then((response) => response.json() as Promise<any>)
    expect(status.data.state).toBe("success")
    const [url] = JSON.parse(status.data.resultJson).resultUrls
    expect((await fetch(url)).headers.get("content-type")).toBe("video/mp4")
    expect(fake.requests.every((request) => request.at > 1_600_000_000_000)).toBe(true)
    await fake.close()
    await expect(fetch(`${fake.url}/api/v1/statusTask/x?taskId=y`)).rejects.toThrow()
  })

  it("fails to start on a taken port with FakeApixoError", async () => {
    const first = await FakeApixo.start()
    try {
      await expect(FakeApixo.start({ port: first.port })).rejects.toMatchObject({ _tag: "FakeApixoError" })
    } finally {
      await first.close()
    }
  })

  it.effect("a layer built in a test runs on that test's TestClock", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.FakeApixo
      yield* TestClock.adjust(Duration.minutes(3))
      yield* send(`${fake.url}/nowhere`)
      expect(fake.requests[0]).toMatchObject({ at: 180_000, route: "other", status: 404 })
    }).pipe(Effect.provide(FakeApixo.layer()))
  )
})

layer(FakeApixo.layer({ timings: { completeAfter: "1 minute" } }))("FakeApixo shared through it.layer", (it) => {
  it.effect("moves on the suite's TestClock", () =>
    Effect.gen(function* () {
      const fake = yield* FakeApixo.FakeApixo
      const taskId = yield* submit(fake)
      expect(bodyOf(yield* statusOf(fake, taskId)).data.state).toBe("pending")
      yield* TestClock.adjust("1 minute")
      expect(bodyOf(yield* statusOf(fake, taskId)).data.state).toBe("success")
    })
  )
})
