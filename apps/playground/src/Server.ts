/**
 * `reelkit serve`: the web app on @effect/platform's HttpRouter, served by Node. A form per Vidu Q3
 * mode with its cost as the fields change, a task list kept live with server-sent events, task
 * pages playing the stored video from the artifact store (with HTTP Range, which browsers use to
 * seek), Prometheus metrics, and, when a public URL and a secret are configured, core's verified
 * callback endpoint. Every route but the callbacks and the icon needs the access token; the guard
 * in `server/Guard.ts` also caps bodies, checks Host and Origin, and times handlers out.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import type * as UrlParams from "@effect/platform/UrlParams"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import {
  AccountLimits,
  ArtifactStore,
  Callbacks,
  TaskClient,
  type TaskError,
  type TaskHandle,
  TaskLedger
} from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import * as Cost from "./Cost.js"
import { describe } from "./Failure.js"
import * as Fields from "./Fields.js"
import * as Pages from "./Pages.js"
import { type Pair, Pairs, Playground, type Services } from "./Playground.js"
import * as Registry from "./Registry.js"
import * as Access from "./server/Access.js"
import * as FormBody from "./server/FormBody.js"
import * as Guard from "./server/Guard.js"
import * as ServeSettings from "./server/ServeSettings.js"
import * as TaskFeed from "./server/TaskFeed.js"
import * as Telemetry from "./Telemetry.js"

/** A fresh nonce for one rendering of the form. */
const newSubmission = Effect.sync(() => randomUUID())

/** Tasks the list shows. */
const listLimit = 50

const htmlResponse = (body: string, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(body, { status, contentType: "text/html; charset=utf-8", headers })

/** Where one pair's tasks go, in one line. */
const backendLine = ({ backend, entry }: Pair): string =>
  backend._tag === "Fake"
    ? `${Registry.nameOf(entry)}: no ${entry.keyVariable} is set, so its tasks go to a ${entry.fakeName} server in this process (${backend.baseUrl}); nothing is billed and every video is a sample clip.`
    : `${Registry.nameOf(entry)}: tasks go to ${entry.serviceName} at ${backend.baseUrl}, billed to the key in ${entry.keyVariable}.`

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

/** What the routes need besides the playground's services. */
export interface RouterOptions {
  readonly keys: Access.Keys
  readonly limits: ServeSettings.Limits
}

const json = (body: unknown, status = 200) =>
  HttpServerResponse.text(JSON.stringify(body), { status, contentType: "application/json" })

/** `duration` as the form sends it: a whole number of seconds, or nothing. */
const durationOf = (text: string | null): number | undefined =>
  text !== null && /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined

/** Builds the web app's routes. Waits started from the form run in `waits` until the server stops. */
export const makeRouter = (
  options: RouterOptions
): Effect.Effect<
  HttpRouter.HttpRouter<TaskError.LedgerError, Telemetry.PrometheusMetrics>,
  never,
  Services | Scope.Scope
> =>
  Effect.gen(function* () {
    const client = yield* TaskClient.TaskClient
    const store = yield* ArtifactStore.ArtifactStore
    // Every pair's client (just the command's own when the wiring was built for one pair).
    const pairs = yield* Pairs
    const pairOf = (id: string | undefined): Pair | undefined =>
      id === undefined || id === "" ? pairs[0] : pairs.find((pair) => Registry.idOf(pair.entry) === id)
    const pairOfRecord = (record: TaskLedger.TaskRecord): Pair =>
      pairs.find((pair) => pair.entry === Registry.ofRecord(record)) ?? pairs[0]!
    const waits = yield* FiberSet.make()
    const context = yield* Effect.context<Services>()
    const { keys, limits } = options
    const feed = yield* TaskFeed.make(listViews.pipe(Effect.provide(context)), { maxStreams: limits.eventStreams })

    // Tasks this server is already waiting for: a repeated submit gets the same task, not a second wait.
    const waiting = new Set<string>()
    const waitInBackground = (client: TaskClient.Service) => (handle: TaskHandle.TaskHandle) =>
      Effect.suspend(() => {
        if (waiting.has(handle.taskKey)) return Effect.void
        waiting.add(handle.taskKey)
        // Forked from an uninterruptible region: the wait itself must stay interruptible, so the server can stop.
        const wait = Effect.interruptible(Effect.ignore(client.wait(handle))).pipe(
          Effect.ensuring(Effect.sync(() => waiting.delete(handle.taskKey)))
        )
        return Effect.asVoid(FiberSet.run(waits, wait))
      })

    const estimateOf = (
      pair: Pair,
      fields: { readonly mode: string; readonly duration?: number; readonly resolution?: string }
    ) => Pages.estimateLine(Cost.estimate(fields, pair.settings.pricing), fields, Option.isSome(pair.settings.pricing))

    // Each rendering of the form gets a new nonce (its idempotency key) and the CSRF token made for it.
    const homePage = (form: Pages.FormState | undefined, status: number) =>
      Effect.gen(function* () {
        const submission = yield* newSubmission
        const values = form?.values ?? {}
        const text = (name: string) => (typeof values[name] === "string" ? (values[name] as string) : "")
        const duration = durationOf(text("duration"))
        const resolution = text("resolution") === "" ? undefined : text("resolution")
        const estimate = estimateOf(pairOf(text("pair")) ?? pairs[0]!, {
          mode: form === undefined ? "text-to-video" : text("mode"),
          ...(duration === undefined ? {} : { duration }),
          ...(resolution === undefined ? {} : { resolution })
        })
        return htmlResponse(
          Pages.home({
            tasks: yield* listViews,
            backend: pairs.map(backendLine),
            pairs: pairs.map((pair) => ({ id: Registry.idOf(pair.entry), name: Registry.nameOf(pair.entry) })),
            form,
            submission,
            csrf: keys.csrfOf(submission),
            estimate
          }),
          status
        )
      }).pipe(Effect.provide(context))

    const home = homePage(undefined, 200)

    const submit = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = yield* FormBody.read(request, limits.formBodyBytes)
      if (Option.isNone(body)) return yield* Guard.tooLarge(request, limits.formBodyBytes)
      const values = formValues(body.value)
      const nonce = values[Pages.submissionField]
      const csrf = values[Access.csrfField]
      // A form this server did not render for this session (another site's, or a script's guess) is refused.
      if (
        !Access.isValidCsrf(
          keys,
          typeof nonce === "string" ? nonce : undefined,
          typeof csrf === "string" ? csrf : undefined
        )
      ) {
        return htmlResponse(
          Pages.formRefused(
            "This form did not come from this server's page (its CSRF token is missing or wrong). Reload the page and submit again."
          ),
          403
        )
      }
      const chosen = pairOf(typeof values.pair === "string" ? values.pair : undefined)
      if (chosen === undefined) {
        return yield* homePage(
          { values, errors: { pair: `is not one of ${pairs.map((pair) => Registry.idOf(pair.entry)).join(", ")}` } },
          400
        )
      }
      const input = Fields.toInput(rawInputOf(values))
      // The form's nonce is the idempotency key: a double submit (or a re-sent POST) finds the first
      // task instead of paying for a second one.
      const idempotencyKey = typeof nonce === "string" && nonce.trim() !== "" ? `web-${nonce.trim()}` : undefined
      // Start and the background wait as one step: a browser giving up on the request must not
      // leave a submitted task that nothing waits for.
      const started = yield* Effect.uninterruptible(
        chosen.client.start(input, { idempotencyKey }).pipe(Effect.tap(waitInBackground(chosen.client)), Effect.either)
      )
      if (started._tag === "Right") {
        return HttpServerResponse.redirect(`/tasks/${encodeURIComponent(started.right.taskKey)}`, { status: 303 })
      }
      // A refused form is shown with a new nonce: the refused submit may have recorded the old one.
      const error = started.left
      if (error._tag === "InvalidInput") {
        return yield* homePage({ values, errors: { [Fields.fieldOf(error)]: error.rule } }, 400)
      }
      return yield* homePage({ values, errors: {}, banner: describe(error) }, 502)
    }).pipe(
      Effect.catchAll(() => Effect.succeed(htmlResponse(Pages.formRefused("The form could not be read."), 400))),
      Effect.provide(context)
    )

    const estimate = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const query = new URL(request.url, "http://placeholder").searchParams
      const duration = durationOf(query.get("duration"))
      const resolution = query.get("resolution") || undefined
      return json({
        html: estimateOf(pairOf(query.get("pair") ?? undefined) ?? pairs[0]!, {
          mode: query.get("mode") ?? "",
          ...(duration === undefined ? {} : { duration }),
          ...(resolution === undefined ? {} : { resolution })
        })
      })
    })

    const taskPage = Effect.gen(function* () {
      const { taskKey } = yield* HttpRouter.params
      const reference = taskKey ?? ""
      const record = yield* Effect.either(client.lookup(reference))
      if (record._tag === "Left") return htmlResponse(Pages.notFound(reference), 404)
      const pair = pairOfRecord(record.right)
      const pricing = pair.settings.pricing
      const wiring = yield* Effect.promise(pair.entry.load)
      const cost = Option.flatMap(pricing, (table) => wiring.priceOf(record.right.input, table))
      return htmlResponse(
        Pages.taskPage({
          record: record.right,
          pair: {
            name: Registry.nameOf(pair.entry),
            transport: pair.entry.transport,
            serviceName: pair.entry.serviceName
          },
          now: yield* Clock.currentTimeMillis,
          cost: Option.getOrUndefined(cost),
          pricingConfigured: Option.isSome(pricing)
        })
      )
    })

    // One shared list behind every stream; past the cap a stream is refused rather than slowing every page.
    // A place is given back when the connection closes, whether or not the stream ever started.
    const events = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const subscription = yield* feed.open
      if (Option.isSome(subscription)) {
        NodeHttpServerRequest.toServerResponse(request).once("close", subscription.value.release)
      }
      return Option.map(subscription, (opened) => opened.stream)
    }).pipe(
      Effect.map((stream) =>
        Option.match(stream, {
          onNone: () =>
            HttpServerResponse.text("reelkit: too many open event streams; close some tabs and reload.\n", {
              status: 503,
              headers: { "retry-after": "30" }
            }),
          onSome: (body) =>
            HttpServerResponse.stream(body, {
              contentType: "text/event-stream",
              headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
            })
        })
      )
    )

    const artifact = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const url = new URL(request.url, "http://localhost")
      const key = decodeURIComponent(url.pathname.replace(/^\/artifacts\//, ""))
      const metadata = yield* Effect.orElseSucceed(store.head(key), () => Option.none())
      if (Option.isNone(metadata)) return htmlResponse(Pages.pageNotFound(url.pathname), 404)
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

    const metrics = Effect.flatMap(Telemetry.PrometheusMetrics, (prometheus) => prometheus.scrape).pipe(
      Effect.map((text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    )

    const favicon = HttpServerResponse.text(Pages.favicon, {
      contentType: "image/svg+xml",
      headers: { "cache-control": "public, max-age=86400" }
    })

    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/", home),
      HttpRouter.post("/tasks", submit),
      HttpRouter.get("/tasks/:taskKey", taskPage),
      HttpRouter.get("/events", events),
      HttpRouter.get("/estimate", estimate),
      HttpRouter.get("/artifacts/*", artifact),
      HttpRouter.get("/metrics", metrics),
      HttpRouter.get("/favicon.svg", Effect.succeed(favicon))
    )
    // Core's verified callback endpoint, only when a public URL and a secret say where it is reachable.
    const callbackConfig = yield* Effect.serviceOption(Callbacks.CallbackConfig)
    if (Option.isNone(callbackConfig)) return app
    const callbacks = yield* Callbacks.makeRouter().pipe(
      Effect.provideService(Callbacks.CallbackConfig, callbackConfig.value)
    )
    // Every other pair's callbacks under its own prefix, each confirmed by that pair's client
    // with its own budget (the tokens are the same secret's).
    let routes = HttpRouter.concat(app, callbacks)
    for (const pair of pairs) {
      if (pair.callbackPrefix === undefined) continue
      const router = yield* Callbacks.makeRouter().pipe(
        Effect.provideService(Callbacks.CallbackConfig, callbackConfig.value),
        Effect.provideService(TaskClient.TaskClient, pair.client),
        Effect.provideService(AccountLimits.AccountLimits, pair.limits)
      )
      routes = HttpRouter.mount(routes, pair.callbackPrefix as `/${string}`, router)
    }
    return routes
  })

/** Options of `serve`. */
export interface ServeOptions {
  readonly port: number
  readonly host: string
  /**
   * Called once the server listens, with the URL to open: carrying the access token as `?token=`
   * when serve made the token (the one place it is ever shown), the bare URL when
   * `REELKIT_SERVE_TOKEN` set it.
   */
  readonly onListening?: ((url: string) => void) | undefined
}

const urlOf = (
  address: HttpServer.Address
): { readonly base: string; readonly host: string; readonly port: number } => {
  if (address._tag === "UnixAddress") return { base: address.path, host: address.path, port: 0 }
  // A wildcard bind is reachable on loopback; that is the address to open on this machine.
  const host = address.hostname === "0.0.0.0" || address.hostname === "::" ? "127.0.0.1" : address.hostname
  const shown = host.includes(":") ? `[${host}]` : host
  return { base: `http://${shown}:${address.port}`, host, port: address.port }
}

/**
 * Serves the web app until interrupted; resumes unfinished tasks of the ledger in the background
 * first. Refuses to start with a callback secret or an access token shorter than 32 bytes.
 */
export const serve = (options: ServeOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* ServeSettings.checkCallbackSecret
      const access = yield* ServeSettings.accessToken
      const keys = Access.keysOf(access.token)
      const limits = ServeSettings.defaultLimits
      const { settings } = yield* Playground
      const router = yield* makeRouter({ keys, limits })
      const server = yield* HttpServer.HttpServer
      const { base, port } = urlOf(server.address)
      const guard = Guard.make({
        keys,
        limits,
        reachable: Guard.reachableAt({
          host: options.host,
          port,
          publicUrl: Option.getOrUndefined(Option.map(settings.callbacks, (config) => config.publicBaseUrl))
        })
      })
      yield* server
        .serve(
          router.pipe(
            Effect.catchTag("RouteNotFound", (error) =>
              Effect.succeed(
                htmlResponse(Pages.pageNotFound(new URL(error.request.url, "http://placeholder").pathname), 404)
              )
            ),
            Effect.catchAll((error) => Effect.succeed(HttpServerResponse.text(describe(error), { status: 500 }))),
            guard
          )
        )
        .pipe(
          // A URL carrying the access token, or a callback's own token, never goes into a span.
          HttpMiddleware.withTracerDisabledWhenEffect(
            (request) => Guard.hasTokenInUrl(request.url) || request.url.startsWith("/callbacks/")
          )
        )
      options.onListening?.(access.source === "generated" ? `${base}/?token=${Redacted.value(access.token)}` : base)
      // Tasks another run left unfinished are picked up again, as a restart should: each pair's
      // client resumes its own rows.
      const pairs = yield* Pairs
      yield* Effect.forEach(pairs, (pair) => Effect.forkScoped(Effect.ignore(pair.client.reconcile())), {
        discard: true
      })
      return yield* Effect.never
    })
  ).pipe(
    Effect.provide(
      Layer.merge(
        NodeHttpServer.layer(() => makeNodeServer(ServeSettings.defaultLimits), {
          port: options.port,
          host: options.host,
          // Room for a burst of connections (tabs reconnecting their event streams after a restart):
          // Node's default of 511 makes the kernel drop the rest, and their retries take seconds.
          backlog: 2048
        }),
        Telemetry.layerPrometheus
      )
    )
  )

// Node's own limits: a client must send its headers, and its whole request, in bounded time
// (checked every second rather than Node's default 30 s, so a slow sender is cut close to the limit).
const makeNodeServer = (limits: ServeSettings.Limits) =>
  createServer({
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    connectionsCheckingInterval: 1000
  })
