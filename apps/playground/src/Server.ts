/**
 * `reelkit serve`: the web app on @effect/platform's HttpRouter, served by Node. A form per Vidu Q3
 * mode, a task list kept live with server-sent events, task pages playing the stored video from
 * the artifact store (with HTTP Range, which browsers use to seek), and, when a public URL and a
 * secret are configured, core's verified callback endpoint.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as UrlParams from "@effect/platform/UrlParams"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ArtifactStore, Callbacks, TaskClient, type TaskHandle, TaskLedger } from "@reelkit/core"
import { ViduQ3Input, ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { describe } from "./Failure.js"
import * as Fields from "./Fields.js"
import * as Pages from "./Pages.js"
import { Playground, type Services } from "./Playground.js"

/** A fresh nonce for one rendering of the form. */
const newSubmission = Effect.sync(() => randomUUID())

/** Tasks the list shows. */
const listLimit = 50

const htmlResponse = (body: string, status = 200) =>
  HttpServerResponse.text(body, { status, contentType: "text/html; charset=utf-8" })

const backendLine = Effect.map(Playground, ({ backend }) =>
  backend._tag === "Fake"
    ? `No APIXO_API_KEY is set: tasks go to a fake apixo server in this process (${backend.baseUrl}); nothing is billed and every video is a sample clip.`
    : `Tasks go to apixo at ${backend.baseUrl}, billed to the key in APIXO_API_KEY.`
)

const listViews = Effect.flatMap(TaskLedger.TaskLedger, (ledger) => ledger.list({ limit: listLimit })).pipe(
  Effect.map((records) => records.map(Pages.viewOf))
)

/** The form's fields, as the browser sent them: repeated names (the two image URLs) become lists. */
const formValues = (params: UrlParams.UrlParams): Record<string, string | ReadonlyArray<string>> => {
  const values: Record<string, string | Array<string>> = {}
  for (const [name, value] of params) {
    if (name === "image_urls") values[name] = [...((values[name] as Array<string> | undefined) ?? []), value]
    else values[name] = value
  }
  return values
}

const rawInputOf = (values: Record<string, string | ReadonlyArray<string>>): Fields.RawInput => {
  const raw: Record<string, string | boolean | ReadonlyArray<string> | undefined> = {}
  for (const field of Fields.fields) {
    const value = values[field.name]
    if (field.kind === "boolean") raw[field.name] = value === "true" ? true : value === "false" ? false : undefined
    else raw[field.name] = value
  }
  return { mode: typeof values.mode === "string" ? values.mode : "", values: raw }
}

const decodeInput = Schema.decodeUnknownOption(ViduQ3Input.ViduQ3Input)

/** Parses `Range: bytes=a-b` against a size; undefined for no (or an unusable) range. */
export const parseRange = (
  header: string | undefined,
  size: number
): { readonly start: number; readonly end: number } | "unsatisfiable" | undefined => {
  if (header === undefined) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (match === null || (match[1] === "" && match[2] === "")) return undefined
  if (match[1] === "") {
    // A suffix range: the last N bytes.
    const length = Number(match[2])
    if (length === 0) return "unsatisfiable"
    return { start: Math.max(0, size - length), end: size - 1 }
  }
  const start = Number(match[1])
  const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1)
  return start >= size || end < start ? "unsatisfiable" : { start, end }
}

/** The bytes `start..end` (inclusive) of a stream, stopping as soon as they have passed. */
const sliceBytes = <E>(body: Stream.Stream<Uint8Array, E>, start: number, end: number): Stream.Stream<Uint8Array, E> =>
  body.pipe(
    Stream.mapAccum(0, (offset, chunk): readonly [number, { slice: Uint8Array; done: boolean }] => {
      const next = offset + chunk.byteLength
      const from = Math.max(start - offset, 0)
      const to = Math.min(end + 1 - offset, chunk.byteLength)
      return [next, { slice: from < to ? chunk.subarray(from, to) : new Uint8Array(0), done: next > end }]
    }),
    Stream.takeUntil((part) => part.done),
    Stream.map((part) => part.slice),
    Stream.filter((slice) => slice.byteLength > 0)
  )

/** Builds the web app's routes. Waits started from the form run in `waits` until the server stops. */
export const makeRouter: Effect.Effect<HttpRouter.HttpRouter<unknown>, never, Services | Scope.Scope> = Effect.gen(
  function* () {
    const client = yield* TaskClient.TaskClient
    const store = yield* ArtifactStore.ArtifactStore
    const playground = yield* Playground
    const waits = yield* FiberSet.make()
    const context = yield* Effect.context<Services>()

    // Tasks this server is already waiting for: a repeated submit gets the same task, not a second wait.
    const waiting = new Set<string>()
    const waitInBackground = (handle: TaskHandle.TaskHandle) =>
      Effect.suspend(() => {
        if (waiting.has(handle.taskKey)) return Effect.void
        waiting.add(handle.taskKey)
        // Forked from an uninterruptible region: the wait itself must stay interruptible, so the server can stop.
        const wait = Effect.interruptible(Effect.ignore(client.wait(handle))).pipe(
          Effect.ensuring(Effect.sync(() => waiting.delete(handle.taskKey)))
        )
        return Effect.asVoid(FiberSet.run(waits, wait))
      })

    const home = Effect.gen(function* () {
      return htmlResponse(
        Pages.home({ tasks: yield* listViews, backend: yield* backendLine, submission: yield* newSubmission })
      )
    }).pipe(Effect.provide(context))

    const submit = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const values = formValues(yield* request.urlParamsBody)
      const input = Fields.toInput(rawInputOf(values))
      // A refused form is shown with a new nonce: the refused submit may have recorded the old one.
      const refused = (form: Pages.FormState, status: number) =>
        Effect.map(Effect.all([listViews, backendLine, newSubmission]), ([tasks, backend, submission]) =>
          htmlResponse(Pages.home({ tasks, backend, form, submission }), status)
        )
      // The form's nonce is the idempotency key: a double submit (or a re-sent POST) finds the first
      // task instead of paying for a second one.
      const nonce = values[Pages.submissionField]
      const idempotencyKey = typeof nonce === "string" && nonce.trim() !== "" ? `web-${nonce.trim()}` : undefined
      // Start and the background wait as one step: a browser giving up on the request must not
      // leave a submitted task that nothing waits for.
      const started = yield* Effect.uninterruptible(
        client.start(input, { idempotencyKey }).pipe(Effect.tap(waitInBackground), Effect.either)
      )
      if (started._tag === "Right") {
        return HttpServerResponse.redirect(`/tasks/${encodeURIComponent(started.right.taskKey)}`, { status: 303 })
      }
      const error = started.left
      if (error._tag === "InvalidInput") {
        return yield* refused({ values, errors: { [Fields.fieldOf(error)]: error.rule } }, 400)
      }
      return yield* refused({ values, errors: {}, banner: describe(error) }, 502)
    }).pipe(
      Effect.catchTag("RequestError", () => Effect.succeed(htmlResponse("The form could not be read.", 400))),
      Effect.provide(context)
    )

    const taskPage = Effect.gen(function* () {
      const { taskKey } = yield* HttpRouter.params
      const reference = taskKey ?? ""
      const record = yield* Effect.either(client.lookup(reference))
      if (record._tag === "Left") return htmlResponse(Pages.notFound(reference), 404)
      const pricing = playground.settings.pricing
      const cost = Option.flatMap(Option.all([decodeInput(record.right.input), pricing]), ([input, table]) =>
        ViduQ3Pricing.estimateCost(input, table)
      )
      return htmlResponse(
        Pages.taskPage({
          record: record.right,
          now: yield* Clock.currentTimeMillis,
          cost: Option.getOrUndefined(cost),
          pricingConfigured: Option.isSome(pricing)
        })
      )
    })

    // The list, every second, sent only when something changed; the browser ticks elapsed time itself.
    const events = Effect.sync(() => {
      const encoder = new TextEncoder()
      const body = Stream.repeatEffectWithSchedule(
        Effect.either(listViews.pipe(Effect.provide(context))),
        Schedule.spaced("1 second")
      ).pipe(
        Stream.filterMap((result) => (result._tag === "Right" ? Option.some(result.right) : Option.none())),
        Stream.map((tasks) => JSON.stringify(tasks)),
        Stream.changes,
        Stream.mapEffect((tasks) =>
          Effect.map(Clock.currentTimeMillis, (now) =>
            encoder.encode(`event: tasks\ndata: {"now":${now},"tasks":${tasks}}\n\n`)
          )
        )
      )
      return HttpServerResponse.stream(body, {
        contentType: "text/event-stream",
        headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
      })
    })

    const artifact = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const url = new URL(request.url, "http://localhost")
      const key = decodeURIComponent(url.pathname.replace(/^\/artifacts\//, ""))
      const metadata = yield* Effect.orElseSucceed(store.head(key), () => Option.none())
      if (Option.isNone(metadata)) return HttpServerResponse.text("Not found", { status: 404 })
      const { bytes, contentType } = metadata.value
      const body = store.get(key)
      const range = parseRange(request.headers.range, bytes)
      const common = { "accept-ranges": "bytes", "cache-control": "private, max-age=3600" }
      if (range === "unsatisfiable") {
        return HttpServerResponse.empty({ status: 416, headers: { ...common, "content-range": `bytes */${bytes}` } })
      }
      if (range === undefined) {
        return HttpServerResponse.stream(body, { contentType, contentLength: bytes, headers: common })
      }
      return HttpServerResponse.stream(sliceBytes(body, range.start, range.end), {
        status: 206,
        contentType,
        contentLength: range.end - range.start + 1,
        headers: { ...common, "content-range": `bytes ${range.start}-${range.end}/${bytes}` }
      })
    })

    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/", home),
      HttpRouter.post("/tasks", submit),
      HttpRouter.get("/tasks/:taskKey", taskPage),
      HttpRouter.get("/events", events),
      HttpRouter.get("/artifacts/*", artifact)
    )
    // Core's verified callback endpoint, only when a public URL and a secret say where it is reachable.
    const callbackConfig = yield* Effect.serviceOption(Callbacks.CallbackConfig)
    if (Option.isNone(callbackConfig)) return app
    const callbacks = yield* Callbacks.makeRouter().pipe(
      Effect.provideService(Callbacks.CallbackConfig, callbackConfig.value)
    )
    return HttpRouter.concat(app, callbacks)
  }
)

/** Options of `serve`. */
export interface ServeOptions {
  readonly port: number
  readonly host: string
  /** Called with the server's URL once it listens. */
  readonly onListening?: ((url: string) => void) | undefined
}

/** Serves the web app until interrupted; resumes unfinished tasks of the ledger in the background first. */
export const serve = (options: ServeOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const router = yield* makeRouter
      const server = yield* HttpServer.HttpServer
      yield* server.serve(
        router.pipe(
          HttpRouter.catchAll((error) => Effect.succeed(HttpServerResponse.text(describe(error), { status: 500 })))
        )
      )
      const address = server.address
      const url = address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}` : address.path
      options.onListening?.(url)
      // Tasks another run left unfinished are picked up again, as a restart should.
      const client = yield* TaskClient.TaskClient
      yield* Effect.forkScoped(Effect.ignore(client.reconcile()))
      return yield* Effect.never
    })
  ).pipe(Effect.provide(NodeHttpServer.layer(createServer, { port: options.port, host: options.host })))
