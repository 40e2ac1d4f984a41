// FakeVidu over raw HTTP: the official Vidu API's rules as the fake enforces them (Token auth,
// per-endpoint bodies, credits, limits), states on the TestClock, cancel, recovered tasks, and
// signed callbacks, checked with an HMAC computed here from Vidu's documented recipe.
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, TestClock } from "effect"
import { createHmac } from "node:crypto"
import { createServer } from "node:http"
import * as FakeApixo from "../src/FakeApixo.js"
import * as FakeVidu from "../src/FakeVidu.js"
import { bodyOf, send } from "./utils.js"

const key = FakeVidu.defaultApiKey
const post = (fake: FakeVidu.Service, path: string, body: unknown, token: string | null = key) =>
  send(`${fake.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === null ? {} : { authorization: `Token ${token}` }) },
    body: JSON.stringify(body)
  })
const query = (fake: FakeVidu.Service, taskId: string) =>
  send(`${fake.url}/tasks/${taskId}/creations`, { headers: { authorization: `Token ${key}` } })

describe("FakeVidu", () => {
  it.scoped("checks the Token key and each endpoint's body as Vidu documents it", () =>
    Effect.gen(function* () {
      const fake = yield* FakeVidu.make()
      const answers = [
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "x" }, null),
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "x" }, "Bearer-style-wrong"),
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "x", bgm: true }),
        yield* post(fake, "/text2video", { model: "viduq2", prompt: "x" }),
        yield* post(fake, "/img2video", {
          model: "viduq3-pro",
          images: ["https://a.example/1.png", "https://a.example/2.png"]
        }),
        yield* post(fake, "/start-end2video", { model: "viduq3-turbo", images: ["https://a.example/1.png"] }),
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "x", duration: 17 })
      ]
      expect(answers.map((answer) => [answer.status, bodyOf(answer).reason])).toEqual([
        [401, "Unauthorized"],
        [401, "Unauthorized"],
        [400, "FieldUnwanted"],
        [400, "FieldInvalid"],
        [400, "FieldItemCountOutOfRange"],
        [400, "FieldItemCountOutOfRange"],
        [400, "FieldInvalid"]
      ])
      expect(fake.tasks).toHaveLength(0)
    })
  )

  it.scoped("moves a task created -> queueing -> processing -> success on the Clock and bills its duration", () =>
    Effect.gen(function* () {
      const fake = yield* FakeVidu.make({ timings: { processingAfter: "5 seconds", completeAfter: "30 seconds" } })
      const created = bodyOf(
        yield* post(fake, "/img2video", { model: "viduq3-pro", images: ["https://a.example/1.png"], duration: 4 })
      )
      expect([created.state, created.credits]).toEqual(["created", 4])
      const states: Array<string> = []
      for (const step of [0, 1, 5, 25]) {
        yield* TestClock.adjust(Duration.seconds(step))
        states.push(bodyOf(yield* query(fake, created.task_id)).state)
      }
      expect(states).toEqual(["created", "queueing", "processing", "success"])
      const done = bodyOf(yield* query(fake, created.task_id))
      expect(done.creations).toHaveLength(1)
      const video = yield* send(done.creations[0].url)
      expect([video.status, video.headers.get("content-type")]).toEqual([200, "video/mp4"])
      expect(fake.bills.map((bill) => bill.credits)).toEqual([4])
    })
  )

  it.scoped("cancels a task that has not started (failed, UserCancelled, refunded); refuses one that runs", () =>
    Effect.gen(function* () {
      const fake = yield* FakeVidu.make({ timings: { processingAfter: "5 seconds", completeAfter: "30 seconds" } })
      const first = bodyOf(yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "a" })).task_id
      const second = bodyOf(yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "b" })).task_id
      expect((yield* post(fake, `/tasks/${first}/cancel`, { id: first })).status).toBe(200)
      expect(bodyOf(yield* query(fake, first))).toMatchObject({ state: "failed", err_code: "UserCancelled" })
      yield* TestClock.adjust(Duration.seconds(6))
      const refused = yield* post(fake, `/tasks/${second}/cancel`, { id: second })
      expect([refused.status, bodyOf(refused).message]).toEqual([400, "task state is processing, can not cancel"])
      expect((yield* post(fake, "/tasks/nope/cancel", { id: "nope" })).status).toBe(404)
      expect(fake.bills.map((bill) => bill.credits)).toEqual([5, 5, -5])
    })
  )

  it.scoped("refuses past the balance, the request rate and the concurrency limit", () =>
    Effect.gen(function* () {
      const fake = yield* FakeVidu.make({ balanceCredits: 6, concurrentTasks: 1, requestsPerMinute: 3 })
      const answers = [
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "a", duration: 4 }),
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "b", duration: 1 }),
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "c", duration: 1 }),
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "d", duration: 1 })
      ]
      expect(answers.map((answer) => [answer.status, bodyOf(answer).reason ?? "ok"])).toEqual([
        [200, "ok"],
        [429, "QuotaExceeded"],
        [429, "QuotaExceeded"],
        [429, "TooManyRequests"]
      ])
      expect(answers[3]!.headers.get("retry-after")).toBe("60")
      yield* TestClock.adjust(Duration.minutes(1))
      const broke = yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "e", duration: 4 })
      expect([broke.status, bodyOf(broke).reason]).toEqual([400, "CreditInsufficient"])
    })
  )

  it.scoped("answers for tasks another FakeVidu made only with recoverTasks", () =>
    Effect.gen(function* () {
      const first = yield* FakeVidu.make()
      const taskId = bodyOf(yield* post(first, "/text2video", { model: "viduq3-pro", prompt: "a" })).task_id
      const strict = yield* FakeVidu.make()
      const lenient = yield* FakeVidu.make({ recoverTasks: true })
      yield* TestClock.adjust(Duration.seconds(10))
      expect((yield* query(strict, taskId)).status).toBe(404)
      expect(bodyOf(yield* query(lenient, taskId)).state).toBe("success")
    })
  )

  it.scoped("POSTs a callback signed with the task's key over the callback URL, Date and nonce", () =>
    Effect.gen(function* () {
      const received: Array<{
        readonly headers: Record<string, string | string[] | undefined>
        readonly body: string
      }> = []
      const receiver = createServer((request, response) => {
        let body = ""
        request.on("data", (chunk) => {
          body += chunk
        })
        request.on("end", () => {
          received.push({ headers: request.headers, body })
          response.writeHead(200).end()
        })
      })
      const port = yield* Effect.acquireRelease(
        Effect.async<number>((resume) => {
          receiver.listen(0, "127.0.0.1", () => resume(Effect.succeed((receiver.address() as { port: number }).port)))
        }),
        () =>
          Effect.async<void>((resume) => {
            receiver.close(() => resume(Effect.void))
          })
      )
      const callbackUrl = `http://127.0.0.1:${port}/hooks/cb?task=1`
      const fake = yield* FakeVidu.make({
        timings: { processingAfter: "1 second", completeAfter: "3 seconds" },
        callbacks: { duplicates: 1 },
        outcome: FakeApixo.failure("AuditSubmitIllegal")
      })
      const taskId = bodyOf(
        yield* post(fake, "/text2video", { model: "viduq3-pro", prompt: "a", callback_url: callbackUrl })
      ).task_id
      yield* TestClock.adjust(Duration.seconds(5))
      yield* fake.awaitCallbacks(2)
      expect(received).toHaveLength(2)
      const headers = received[0]!.headers as Record<string, string>
      const signing = `POST\n/hooks/cb\ntask=1\nvidu\n${headers.date}\nDate:${headers.date}\nx-request-nonce:${headers["x-request-nonce"]}\n`
      expect(headers["x-hmac-signature"]).toBe(createHmac("sha256", key).update(signing).digest("base64"))
      expect([headers["x-hmac-signed-headers"], headers["x-hmac-algorithm"], headers["x-hmac-access-key"]]).toEqual([
        "Date;x-request-nonce",
        "hmac-sha256",
        "vidu"
      ])
      expect(JSON.parse(received[0]!.body)).toMatchObject({
        id: taskId,
        state: "failed",
        err_code: "AuditSubmitIllegal"
      })
      // The duplicate is a replay: the same nonce and signature.
      expect(received[1]!.headers["x-request-nonce"]).toBe(headers["x-request-nonce"])
      expect(Option.fromNullable(received[1]!.headers["x-hmac-signature"])).toEqual(
        Option.some(headers["x-hmac-signature"])
      )
    })
  )
})
