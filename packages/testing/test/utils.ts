import { Effect } from "effect"
import * as Http from "node:http"
import type * as FakeApixo from "../src/FakeApixo.js"

/** An HTTP answer read in full. */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

/** The answer's body as JSON (fails the test when it is not). */
export const bodyOf = (answer: Answer): any => JSON.parse(answer.text)

/** One real HTTP request with node's fetch; fails when the connection breaks. */
export const send = (url: string, init?: RequestInit): Effect.Effect<Answer, Error> =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(url, init)
      return { status: response.status, headers: response.headers, text: await response.text() }
    },
    catch: (error) => (error instanceof Error ? error : new Error(String(error)))
  })

/** Options of the apixo calls below. */
export interface CallOptions {
  readonly modelId?: string
  readonly key?: string | null
}

const authHeaders = (key: string | null | undefined): Record<string, string> =>
  key === null ? {} : { authorization: `Bearer ${key ?? "test-key"}` }

/** POST /api/v1/generateTask/<model> with a JSON body (or a raw string). */
export const generate = (fake: FakeApixo.Service, body: unknown, options: CallOptions = {}) =>
  send(`${fake.url}/api/v1/generateTask/${options.modelId ?? "vidu-q3"}`, {
    method: "POST",
    headers: { ...authHeaders(options.key), "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

/** GET /api/v1/statusTask/<model>?taskId=... */
export const statusOf = (fake: FakeApixo.Service, taskId: string, options: CallOptions = {}) =>
  send(`${fake.url}/api/v1/statusTask/${options.modelId ?? "vidu-q3"}?taskId=${encodeURIComponent(taskId)}`, {
    headers: authHeaders(options.key)
  })

/** A text-to-video body of `duration` seconds. */
export const textToVideo = (duration = 4, prompt = "a lighthouse in a storm", extra: object = {}) => ({
  request_type: "async",
  input: { mode: "text-to-video", prompt, duration },
  ...extra
})

/** Submits and returns the new task id (fails the test otherwise). */
export const submit = (fake: FakeApixo.Service, body: unknown = textToVideo(), options: CallOptions = {}) =>
  Effect.flatMap(generate(fake, body, options), (answer) =>
    answer.status === 200
      ? Effect.succeed(bodyOf(answer).data.taskId as string)
      : Effect.dieMessage(`submit answered ${answer.status}: ${answer.text}`)
  )

/** A callback receiver on a real socket: records every body, answers with `statusFor(n)` (default 200). */
export const callbackReceiver = (statusFor: (n: number) => number = () => 200) =>
  Effect.gen(function* () {
    const bodies: Array<string> = []
    const server = Http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        bodies.push(Buffer.concat(chunks).toString("utf8"))
        response.writeHead(statusFor(bodies.length)).end()
      })
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    return { url: `http://127.0.0.1:${port}/hooks/secret-token`, bodies }
  })
