// apixo has been seen echoing the caller's API key in answers. Over a real socket, a server that
// puts the key in every field a message is built from: the key must reach no error, no status,
// no callback hint and no span, while the text around it still does.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Apixo, ApixoModel } from "@reelkit/apixo"
import { TaskProvider } from "@reelkit/core"
import { Cause, Effect, Layer, Schema } from "effect"
import { type Reply, type ScriptedServer, apiKey, makeServer, recordingTracer, redactedKey, spanText } from "./utils.js"

const model = ApixoModel.define({
  modelId: "echo-model",
  input: Schema.Struct({ mode: Schema.Literal("text-to-video"), prompt: Schema.String })
})
const submitRoute = "POST /api/v1/generateTask/echo-model"
const statusRoute = "GET /api/v1/statusTask/echo-model"
const input = { mode: "text-to-video", prompt: "a heron" }

const envelope = (code: number, message: string, data: unknown) => ({ code, message, data })
const status = (data: Record<string, unknown>): Reply => ({
  status: 200,
  body: envelope(200, "success", { taskId: "task_1", ...data })
})
// The key spelled with JSON \u escapes: no text search of the raw body finds it.
const unicodeEscapedKey = [...apiKey].map((char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")

/** Every text a value shows to a log, a row or a terminal. */
const texts = (value: unknown): ReadonlyArray<string> => [
  JSON.stringify(value),
  String(value),
  String((value as { message?: unknown }).message),
  Cause.pretty(Cause.fail(value))
]

const expectClean = (value: unknown) => {
  for (const text of texts(value)) expect(text).not.toContain(apiKey)
}

/** Runs `body` against a scripted server with a recording tracer; checks the spans and that the key was really sent. */
const echoing = <A, E>(
  setup: (server: ScriptedServer) => void,
  body: (provider: TaskProvider.Service) => Effect.Effect<A, E>
) => {
  const { spans, tracer } = recordingTracer()
  return Effect.gen(function* () {
    const server = yield* makeServer
    setup(server)
    const result = yield* Effect.flatMap(TaskProvider.TaskProvider, body).pipe(
      Effect.provide(
        ApixoModel.layer(model).pipe(
          Layer.provide(Apixo.layer({ apiKey: redactedKey, baseUrl: server.baseUrl })),
          Layer.provide(NodeHttpClient.layerUndici)
        )
      ),
      Effect.withTracer(tracer)
    )
    // The key really went out, so a leak had every chance to happen.
    expect(server.requests().length).toBeGreaterThan(0)
    for (const request of server.requests()) expect(request.headers.authorization).toBe(`Bearer ${apiKey}`)
    expect(spans.length).toBeGreaterThan(0)
    expect(spanText(spans)).not.toContain(apiKey)
    return { result, spans }
  })
}

const submitOnce = (provider: TaskProvider.Service) =>
  Effect.flatMap(provider.prepare({ input }), (prepared) => provider.submit({ taskKey: "tk_1", wire: prepared.wire }))

describe("ApixoModel redaction (real HTTP)", () => {
  it.scoped("a failed status echoing the key in failMsg and failCode keeps its text, without the key", () =>
    Effect.gen(function* () {
      const { result } = yield* echoing(
        (server) =>
          server.script(
            statusRoute,
            status({ state: "failed", failCode: `KEY_${apiKey}`, failMsg: `bad request for key ${apiKey}` }),
            // Raw text, so the \u escapes reach the client as written.
            {
              status: 200,
              body: `{"code":200,"message":"success","data":{"taskId":"task_1","state":"failed","failMsg":"escaped ${unicodeEscapedKey}!"}}`
            }
          ),
        (provider) => Effect.all([provider.status("task_1"), provider.status("task_1")])
      )
      const [echoed, escaped] = result
      expect(echoed).toMatchObject({
        _tag: "Failed",
        code: "KEY_[redacted]",
        message: "bad request for key [redacted]"
      })
      expect(escaped).toMatchObject({ _tag: "Failed", message: "escaped [redacted]!" })
      expectClean(echoed)
      expectClean(escaped)
    })
  )

  it.scoped("a 400 echoing the key in data.error, and a 401 in message, are typed errors without the key", () =>
    Effect.gen(function* () {
      const { result, spans } = yield* echoing(
        (server) =>
          server.script(
            submitRoute,
            { status: 400, body: envelope(400, "invalid request", { error: `prompt rejected for ${apiKey}` }) },
            { status: 401, body: envelope(401, `Invalid API key ${apiKey}`, null) }
          ),
        (provider) => Effect.all([Effect.flip(submitOnce(provider)), Effect.flip(submitOnce(provider))])
      )
      const [badRequest, unauthorized] = result
      expect(badRequest).toMatchObject({ _tag: "InvalidInput", path: "input" })
      expect(badRequest.message).toBe("Invalid input at input: rejected by apixo: prompt rejected for [redacted]")
      expect(unauthorized._tag).toBe("Unauthorized")
      expect(unauthorized.message).toContain("Invalid API key [redacted]")
      expectClean(badRequest)
      expectClean(unauthorized)
      // The failed submit spans recorded the error, redacted.
      expect(spans.some((span) => span.failure?.includes("prompt rejected for [redacted]"))).toBe(true)
    })
  )

  it.scoped("a 500 echoing the key, as JSON or as plain text, is a ServerError without the key", () =>
    Effect.gen(function* () {
      const { result } = yield* echoing(
        (server) =>
          server.script(
            submitRoute,
            { status: 500, body: envelope(500, `upstream failed with key ${apiKey}`, null) },
            { status: 502, body: `<html>bad gateway ${apiKey}</html>` }
          ),
        (provider) => Effect.all([Effect.flip(submitOnce(provider)), Effect.flip(submitOnce(provider))])
      )
      const [json, html] = result
      expect(json).toMatchObject({ _tag: "ServerError", status: 500 })
      expect(json.message).toContain("upstream failed with key [redacted]")
      expect(html).toMatchObject({ _tag: "ServerError", status: 502 })
      expect(html.message).toContain("bad gateway [redacted]")
      expectClean(json)
      expectClean(html)
    })
  )

  it.scoped("malformed answers echoing the key are DecodeErrors without the key", () =>
    Effect.gen(function* () {
      const { result } = yield* echoing(
        (server) => {
          server.script(
            submitRoute,
            { status: 200, body: `not json ${apiKey}` },
            { status: 200, body: envelope(200, "success", `task ${apiKey}`) }
          )
          server.script(
            statusRoute,
            status({ state: "pending", createTime: `at ${apiKey}` }),
            status({ state: "success", resultJson: `{"resultUrls": "${apiKey}"` }),
            status({ state: `weird-${apiKey}` }),
            { status: 200, body: envelope(200, "success", { taskId: `task_${apiKey}`, state: "pending" }) }
          )
        },
        (provider) =>
          Effect.all([
            Effect.flip(submitOnce(provider)),
            Effect.flip(submitOnce(provider)),
            Effect.flip(provider.status("task_1")),
            Effect.flip(provider.status("task_1")),
            Effect.flip(provider.status("task_1")),
            Effect.flip(provider.status("task_1"))
          ])
      )
      expect(result.map((error) => error._tag)).toEqual([
        "DecodeError",
        "DecodeError",
        "DecodeError",
        "DecodeError",
        "UnknownRemoteState",
        "DecodeError"
      ])
      // Each message quotes what the server sent: proof the echoed text was read, then cut.
      for (const error of result) {
        expect(error.message).toContain("[redacted]")
        expectClean(error)
      }
    })
  )

  it.scoped("a callback body echoing the key gives a hint or a DecodeError without the key; redact cuts it too", () =>
    Effect.gen(function* () {
      const { result } = yield* echoing(
        (server) => server.script(statusRoute, status({ state: "pending" })),
        (provider) =>
          Effect.gen(function* () {
            const parse = provider.parseCallback!
            const hint = yield* parse(
              JSON.stringify(envelope(200, "success", { taskId: "task_1", state: "failed", failMsg: `key ${apiKey}` }))
            )
            const unreadable = yield* Effect.flip(parse({ code: 200, message: apiKey, data: { taskId: apiKey } }))
            yield* provider.status("task_1")
            return { hint, unreadable, redacted: provider.redact?.(`echo ${apiKey} echo ${apiKey}`) }
          })
      )
      expect(result.hint).toMatchObject({
        remoteTaskId: "task_1",
        status: { _tag: "Failed", message: "key [redacted]" }
      })
      expectClean(result.hint)
      expect(result.unreadable._tag).toBe("DecodeError")
      expectClean(result.unreadable)
      expect(result.redacted).toBe("echo [redacted] echo [redacted]")
    })
  )
})
