import { describe, expect, it } from "@effect/vitest"
import { APICallError } from "@ai-sdk/provider"
import { AccountLimits, TaskLedger } from "@reelkit/core"
import { FakeApixo } from "@reelkit/testing"
import {
  experimental_generateVideo as generateVideo,
  experimental_getVideoStatus as getVideoStatus,
  experimental_startVideo as startVideo
} from "ai"
import { Effect, Schedule } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { bodyOf, download, requestsTo, runFixture, sampleVideo, waitForWebhook, withFake } from "./utils.js"

const prompt = "a paper boat on a rainy street"

/** The rejection of a promise, failing the test when it resolves. */
const rejectionOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`)
    },
    (error: unknown) => error
  )

const asApiCallError = (error: unknown): APICallError => {
  expect(APICallError.isInstance(error)).toBe(true)
  return error as APICallError
}

/** reelkit's own submit retries with no delay, so a test waits for no real time. */
const immediateRetries = { retry: Schedule.recurs(5) }
/** No submit retries of reelkit's own: every failure goes to the SDK. */
const noRetries = { retry: Schedule.recurs(0) }

describe("invalid options", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly call: Omit<Parameters<typeof startVideo>[0], "model">
    readonly option: string
    readonly rule: string
  }> = [
    {
      name: "a duration past 16 s",
      call: { prompt, duration: 20 },
      option: "duration",
      rule: "must be an integer from 1 to 16 (seconds)"
    },
    {
      name: "a size Vidu Q3 does not render",
      call: { prompt, resolution: "640x480" },
      option: "resolution",
      rule: "must be a Vidu Q3 size"
    },
    {
      name: "a resolution whose shape contradicts aspectRatio",
      call: { prompt, resolution: "720x1280", aspectRatio: "16:9" },
      option: "resolution",
      rule: "must have the aspect ratio given in aspectRatio (16:9)"
    },
    {
      name: "an aspect ratio with an image (image modes follow the image)",
      call: { prompt: { image: "https://example.com/a.jpg", text: prompt }, aspectRatio: "16:9" },
      option: "aspectRatio",
      rule: "is only allowed in text modes"
    },
    {
      name: "image bytes (apixo takes URLs)",
      call: { prompt: { image: new Uint8Array([0x89, 0x50, 0x4e, 0x47]), text: prompt } },
      option: "image",
      rule: "must be an http(s) URL"
    },
    {
      name: "a last frame without a first",
      call: { prompt, frameImages: [{ image: "https://example.com/end.jpg", frameType: "last_frame" }] },
      option: "frameImages",
      rule: "a last_frame needs a first_frame"
    },
    {
      name: "an unknown style",
      call: { prompt, providerOptions: { apixo: { style: "noir" } } },
      option: "providerOptions.apixo.style",
      rule: 'must be "general" or "anime"'
    },
    {
      name: "a provider option apixo does not have",
      call: { prompt, providerOptions: { apixo: { loop: true } } },
      option: "providerOptions.apixo.loop",
      rule: "is not an option of apixo's video models"
    },
    {
      name: "a tier that contradicts the mode",
      call: { prompt, providerOptions: { apixo: { mode: "text-to-video", tier: "turbo" } } },
      option: "providerOptions.apixo.tier",
      rule: 'must match the tier of mode "text-to-video"'
    },
    {
      name: "an empty prompt",
      call: { prompt: "" },
      option: "prompt",
      rule: "must be a string of 1 to 5000 characters"
    }
  ]

  for (const { name, call, option, rule } of cases) {
    it.scoped(`${name}: an APICallError naming ${option}, not retryable, and no request at all`, () =>
      withFake({}, async ({ fake, provider }) => {
        const error = asApiCallError(await rejectionOf(startVideo({ model: provider().video("vidu-q3"), ...call })))
        expect(error.isRetryable).toBe(false)
        expect(error.message).toContain(`Invalid video option ${option}`)
        expect(error.message).toContain(rule)
        expect(error.data).toMatchObject({ error: "InvalidInput", option })
        expect(fake.requests).toEqual([])
      })
    )
  }
})

describe("faults", () => {
  it.scoped("a 500 after the task was created ends in one bill: not retryable, so the SDK's retries send nothing", () =>
    withFake(
      { faults: [{ match: { route: "generate" }, fault: FakeApixo.status5xx(500, { afterCreate: true }) }] },
      async ({ fake, provider, poll }) => {
        const model = provider().video("vidu-q3")
        const error = asApiCallError(await rejectionOf(generateVideo({ model, prompt, duration: 4, poll, download })))
        expect(error.isRetryable).toBe(false)
        expect(error.data).toMatchObject({ error: "SubmitOutcomeUnknown" })
        expect(error.message).toContain("may or may not have created a paid task")
        expect(requestsTo(fake, "generate")).toHaveLength(1)
        expect(fake.bills).toHaveLength(1)

        // Calling again with the same idempotency key finds the ambiguous task and sends nothing.
        const headers = { "idempotency-key": "order-500" }
        await rejectionOf(startVideo({ model, prompt, duration: 4, headers }))
        const again = asApiCallError(await rejectionOf(startVideo({ model, prompt, duration: 4, headers })))
        expect(again.isRetryable).toBe(false)
        expect(requestsTo(fake, "generate")).toHaveLength(2)
        expect(fake.bills).toHaveLength(2)
      }
    )
  )

  it.scoped("a connection reset after the task was created is not retryable either", () =>
    withFake(
      { faults: [{ match: { route: "generate" }, fault: FakeApixo.resetAfterCreate }] },
      async ({ fake, provider }) => {
        const error = asApiCallError(await rejectionOf(startVideo({ model: provider().video("vidu-q3"), prompt })))
        expect(error.isRetryable).toBe(false)
        expect(requestsTo(fake, "generate")).toHaveLength(1)
        expect(fake.bills).toHaveLength(1)
      }
    )
  )

  it.scoped("429s are absorbed by reelkit's retries: one task, one bill, the video", () =>
    withFake(
      { faults: [{ match: { route: "generate", nth: [1, 2] }, fault: FakeApixo.rateLimit(0) }] },
      async ({ fake, provider, poll }) => {
        const result = await generateVideo({
          model: provider({ taskClient: immediateRetries }).video("vidu-q3"),
          prompt,
          poll,
          download
        })
        expect(result.video.uint8Array).toEqual(sampleVideo)
        expect(requestsTo(fake, "generate").map((request) => request.status)).toEqual([429, 429, 200])
        expect(fake.bills).toHaveLength(1)
      }
    )
  )

  it.scoped(
    "a 429 reelkit gives up on is retryable with its Retry-After; the SDK's retry reuses the idempotency key",
    () =>
      withFake(
        { faults: [{ match: { route: "generate", nth: [1, 2] }, fault: FakeApixo.rateLimit(0) }] },
        async ({ fake, provider, poll, run }) => {
          const ledger = await run(TaskLedger.makeMemory)
          const model = provider({ taskClient: noRetries, ledger }).video("vidu-q3")
          const first = asApiCallError(await rejectionOf(startVideo({ model, prompt, maxRetries: 0 })))
          expect([first.isRetryable, first.statusCode, first.responseHeaders]).toEqual([
            true,
            429,
            { "retry-after": "0", "retry-after-ms": "0" }
          ])

          // With the SDK's default two retries, the second 429 is retried too and the third try lands.
          const result = await generateVideo({ model, prompt, poll, download })
          expect(result.video.uint8Array).toEqual(sampleVideo)
          expect(requestsTo(fake, "generate").map((request) => request.status)).toEqual([429, 429, 200])
          const rows = await run(Effect.orDie(ledger.list()))
          // One row per logical start: the SDK's two tries of the second start share its idempotency key.
          expect(rows.every((row) => row.idempotencyKey?.startsWith("aisdk_vid_"))).toBe(true)
          expect(rows.map((row) => (row.state === "succeeded" ? "completed" : row.state)).sort()).toEqual([
            "completed",
            "rejected"
          ])
          expect(fake.bills).toHaveLength(1)
        }
      )
  )

  it.scoped("a task that fails remotely fails the SDK call with its fail code", () =>
    withFake(
      { outcome: FakeApixo.failure("CONTENT_VIOLATION", "Content does not meet safety guidelines") },
      async ({ provider, poll }) => {
        const error = await rejectionOf(generateVideo({ model: provider().video("vidu-q3"), prompt, poll, download }))
        expect((error as Error).message).toBe("CONTENT_VIOLATION: Content does not meet safety guidelines")
      }
    )
  )

  it.scoped("a wrong key is a 401, not retryable, and the key appears nowhere in the error", () =>
    withFake({ apiKeys: ["the-right-key"] }, async ({ provider }) => {
      const secret = "sk-live-wrong-7d1c0a9b"
      const error = asApiCallError(
        await rejectionOf(startVideo({ model: provider({ apiKey: secret }).video("vidu-q3"), prompt }))
      )
      expect([error.statusCode, error.isRetryable]).toEqual([401, false])
      const printed = JSON.stringify({
        message: error.message,
        url: error.url,
        body: error.requestBodyValues,
        data: error.data,
        cause: String(error.cause)
      })
      expect(printed).not.toContain(secret)
    })
  )
})

describe("start, status, webhooks", () => {
  it.scoped("the JSON operation is checked by a fresh provider instance (another process)", () =>
    withFake({ timings: { processingAfter: 1_000, completeAfter: 30_000 } }, async ({ fake, provider, advance }) => {
      const started = await startVideo({ model: provider().video("vidu-q3"), prompt, duration: 4 })
      const operation = JSON.parse(JSON.stringify(started.operation))
      expect(operation).toMatchObject({ providerId: "apixo", modelId: "vidu-q3", remoteTaskId: fake.tasks[0]!.taskId })

      const elsewhere = provider().video("vidu-q3")
      expect((await getVideoStatus(elsewhere, { operation })).status).toBe("pending")
      await advance(30_000)
      const done = await getVideoStatus(elsewhere, { operation })
      if (done.status !== "completed") throw new Error(`expected completed, got ${done.status}`)
      expect(done.videos).toEqual([{ type: "url", url: fake.resultUrl(fake.tasks[0]!.taskId), mediaType: "video/mp4" }])
      expect((await download({ url: new URL((done.videos[0] as { url: string }).url) })).data).toEqual(sampleVideo)
      // A finished task is answered from the ledger: no further request.
      await getVideoStatus(elsewhere, { operation })
      expect(requestsTo(fake, "status")).toHaveLength(2)
    })
  )

  it.scoped("a 5xx on a status check is retryable (asking again is harmless) and the next check answers", () =>
    withFake(
      { faults: [{ match: { route: "status", nth: 1 }, fault: FakeApixo.status5xx(503) }] },
      async ({ fake, provider, advance }) => {
        const model = provider().video("vidu-q3")
        const { operation } = await startVideo({ model, prompt })
        await advance(5_000)
        const error = asApiCallError(await rejectionOf(getVideoStatus(model, { operation, maxRetries: 0 })))
        expect([error.statusCode, error.isRetryable, error.url]).toEqual([
          503,
          true,
          `${fake.url}/api/v1/statusTask/vidu-q3`
        ])
        expect((await getVideoStatus(model, { operation, maxRetries: 0 })).status).toBe("completed")
        expect(requestsTo(fake, "status").map((request) => request.status)).toEqual([503, 200])
      }
    )
  )

  it.scoped(
    "a real child process starts the video and exits; this process finishes it from the JSON alone",
    () =>
      withFake({ timings: { processingAfter: 1_000, completeAfter: 30_000 } }, async ({ fake, provider, advance }) => {
        const lines = await runFixture("startVideo", [fake.url, FakeApixo.defaultApiKey, prompt])
        const operation = JSON.parse(lines.at(-1)!.replace(/^operation /, ""))
        expect(fake.tasks.map((task) => task.input)).toEqual([{ mode: "text-to-video", prompt, duration: 4 }])

        const model = provider().video("vidu-q3")
        expect((await getVideoStatus(model, { operation })).status).toBe("pending")
        await advance(30_000)
        const done = await getVideoStatus(model, { operation })
        if (done.status !== "completed") throw new Error(`expected completed, got ${done.status}`)
        const video = done.videos[0] as { url: string }
        expect((await download({ url: new URL(video.url) })).data).toEqual(sampleVideo)
        expect([requestsTo(fake, "generate").length, fake.bills.length]).toEqual([1, 1])
      }),
    // Starting a process that compiles the SDK and Effect takes seconds on a busy machine.
    60_000
  )

  it.scoped("an operation that is not a reelkit handle is refused without a request", () =>
    withFake({}, async ({ fake, provider }) => {
      const error = asApiCallError(
        await rejectionOf(getVideoStatus(provider().video("vidu-q3"), { operation: { taskId: "x" } }))
      )
      expect(error.isRetryable).toBe(false)
      expect(error.message).toContain("operation")
      expect(fake.requests).toEqual([])
    })
  )

  it.scoped("the webhook path: handleWebhookOption puts apixo in callback mode and the callback completes it", () =>
    withFake({ timings: { processingAfter: 0, completeAfter: 0 } }, async ({ fake, provider }) => {
      let resolveReceived: (webhook: { headers: Record<string, string>; body: never }) => void = () => {}
      const received = new Promise<{ headers: Record<string, string>; body: never }>((resolve) => {
        resolveReceived = resolve
      })
      const receiver = createServer((request, response) => {
        let body = ""
        request.on("data", (chunk) => {
          body += chunk
        })
        request.on("end", () => {
          response.writeHead(200).end()
          resolveReceived({ headers: request.headers as Record<string, string>, body: JSON.parse(body) as never })
        })
      })
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/video-done`
      try {
        const result = await generateVideo({
          model: provider().video("vidu-q3"),
          prompt,
          webhook: async () => ({ url, received }),
          poll: waitForWebhook,
          download
        })
        expect(result.video.uint8Array).toEqual(sampleVideo)
        expect(fake.tasks.map(bodyOf)[0]).toMatchObject({ request_type: "callback", callback_url: url })
        expect(fake.callbacks.map((callback) => callback.outcome)).toEqual(["delivered"])
        expect(requestsTo(fake, "status")).toHaveLength(1)
      } finally {
        await new Promise((resolve) => receiver.close(resolve))
      }
    })
  )

  it.scoped("n videos are n tasks, each started once under its own idempotency key", () =>
    withFake({}, async ({ fake, provider, poll }) => {
      const result = await generateVideo({ model: provider().video("vidu-q3"), prompt, n: 2, poll, download })
      expect(result.videos.map((video) => video.uint8Array)).toEqual([sampleVideo, sampleVideo])
      expect([fake.tasks.length, requestsTo(fake, "generate").length, fake.bills.length]).toEqual([2, 2, 2])
      expect(result.providerMetadata.apixo).toMatchObject({ state: "completed" })
    })
  )

  it.scoped("options Vidu Q3 has no use for become the SDK's unsupported warnings", () =>
    withFake({}, async ({ provider }) => {
      const started = await startVideo({
        model: provider().video("vidu-q3"),
        prompt,
        fps: 24,
        inputReferences: ["https://example.com/ref.jpg"]
      })
      expect(
        started.warnings.map((warning) => (warning.type === "unsupported" ? warning.feature : warning.type))
      ).toEqual(["fps", "inputReferences"])
    })
  )

  it.scoped("a supplied ledger and budget are shared: a second instance with the same key sends nothing", () =>
    withFake({}, async ({ fake, provider, run, advance }) => {
      const ledger = await run(TaskLedger.makeMemory)
      const limits = await run(AccountLimits.makeMemory())
      const headers = { "idempotency-key": "order-42" }
      const shared = { ledger, limits, holdTaskSlots: true }
      const model = provider(shared).video("vidu-q3")
      const first = await startVideo({ model, prompt, headers })
      const second = await startVideo({ model: provider(shared).video("vidu-q3"), prompt, headers })
      expect(second.operation).toEqual(first.operation)
      expect(requestsTo(fake, "generate")).toHaveLength(1)
      // With holdTaskSlots, the task holds a slot of the shared budget until a status check sees it end.
      expect((await run(limits.snapshot)).tasksInFlight).toBe(1)
      await advance(5_000)
      const status = await getVideoStatus(model, { operation: first.operation })
      expect(status.status).toBe("completed")
      const snapshot = await run(limits.snapshot)
      expect([snapshot.tasksInFlight, snapshot.requestsInWindow]).toEqual([0, 2])
    })
  )

  it.scoped("a ledger given as a layer is built once per instance: a repeated key is the same task", () =>
    withFake({}, async ({ fake, provider }) => {
      const model = provider({ ledger: TaskLedger.layerMemory, limits: AccountLimits.layerMemory() }).video("vidu-q3")
      const headers = { "idempotency-key": "order-7" }
      const first = await startVideo({ model, prompt, headers })
      const second = await startVideo({ model, prompt, headers })
      expect(second.operation).toEqual(first.operation)
      expect(requestsTo(fake, "generate")).toHaveLength(1)
      // The same key with another input is a conflict, refused before anything is sent.
      const conflict = asApiCallError(await rejectionOf(startVideo({ model, prompt: "another prompt", headers })))
      expect([conflict.statusCode, conflict.isRetryable]).toEqual([409, false])
      expect(requestsTo(fake, "generate")).toHaveLength(1)
    })
  )

  it.scoped("by default, tasks nobody checks here do not block later starts, nor a supplied budget", () =>
    // Ten unchecked tasks would hold all ten slots of apixo's limits, and the eleventh start would wait for ever.
    withFake({ concurrentTasks: 30, timings: { completeAfter: 3_600_000 } }, async ({ fake, provider, run }) => {
      const model = provider().video("vidu-q3")
      for (let index = 0; index < 11; index++) await startVideo({ model, prompt: `${prompt} #${index}` })
      const limits = await run(AccountLimits.makeMemory())
      const withBudget = provider({ limits }).video("vidu-q3")
      for (let index = 0; index < 11; index++) await startVideo({ model: withBudget, prompt: `${prompt} @${index}` })
      expect(fake.tasks).toHaveLength(22)
      expect((await run(limits.snapshot)).tasksInFlight).toBe(0)
    })
  )

  it.scoped("an aborted call sends nothing and rejects with the abort reason", () =>
    withFake({}, async ({ fake, provider }) => {
      const controller = new AbortController()
      controller.abort()
      const error = await rejectionOf(
        startVideo({ model: provider().video("vidu-q3"), prompt, abortSignal: controller.signal })
      )
      expect((error as Error).name).toBe("AbortError")
      expect(fake.requests).toEqual([])
    })
  )
})
