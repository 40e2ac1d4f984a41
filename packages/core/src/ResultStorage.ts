/**
 * Keeps a succeeded task's outputs before their URLs expire: each result URL is streamed into the
 * `ArtifactStore` (never held whole in memory) with a size cap, a content-type check and a
 * length check, and committed atomically by the store, which also computes the checksum.
 * A failed download is retried on its own; the generation is never re-run. Result hosts get no
 * credentials: downloads use the plain `HttpClient`, never the provider's authenticated one.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Headers from "@effect/platform/Headers"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { ArtifactStore, type ArtifactStoreError, ArtifactTooLarge, type InvalidArtifactKey } from "./ArtifactStore.js"
import { StoredArtifact, type TaskRecord } from "./TaskLedger.js"

/** A result URL's validity has passed: the output can no longer be fetched. */
export class ResultExpired extends Schema.TaggedError<ResultExpired>("@reelkit/core/ResultExpired")("ResultExpired", {
  taskKey: Schema.String,
  url: Schema.String,
  expiredAt: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `The result URL ${this.url} of task ${this.taskKey} has expired`
  }
}

/** A result download failed. `retryable` tells whether trying the download again may help. */
export class DownloadFailed extends Schema.TaggedError<DownloadFailed>("@reelkit/core/DownloadFailed")(
  "DownloadFailed",
  {
    taskKey: Schema.String,
    url: Schema.String,
    reason: Schema.String,
    retryable: Schema.Boolean,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return `Downloading ${this.url} for task ${this.taskKey} failed: ${this.reason}`
  }
}

/** The result host answered with a content type that is not allowed. */
export class UnexpectedContentType extends Schema.TaggedError<UnexpectedContentType>(
  "@reelkit/core/UnexpectedContentType"
)("UnexpectedContentType", { taskKey: Schema.String, url: Schema.String, contentType: Schema.String }) {
  override get message(): string {
    return `The result ${this.url} of task ${this.taskKey} is "${this.contentType}", not an allowed media type`
  }
}

/** Errors of storing results. */
export type ResultStorageError =
  | ResultExpired
  | DownloadFailed
  | UnexpectedContentType
  | ArtifactStoreError
  | ArtifactTooLarge
  | InvalidArtifactKey

/** How results are stored. */
export interface Options {
  /** Largest accepted output, in bytes (default 4 GiB). */
  readonly maxBytes?: number | undefined
  /** Largest total of one task's outputs, in bytes (default 8 GiB): each output may use only what is left of it. */
  readonly maxTotalBytes?: number | undefined
  /** At most this many outputs of one task are stored; the rest are never fetched (default 8). */
  readonly maxOutputs?: number | undefined
  /** Accepted content types, as prefixes (default video/, image/, audio/, application/octet-stream). */
  readonly allowedContentTypes?: ReadonlyArray<string> | undefined
  /** Retry of one download (default: jittered exponential from 1 s, 5 retries). */
  readonly retry?: Schedule.Schedule<unknown, ResultStorageError> | undefined
  /**
   * Range requests one download may make after its connection dropped (default 5; 0 turns resuming
   * off). Used only when the result host announced `Accept-Ranges: bytes`, a length and a validator.
   */
  readonly maxResumes?: number | undefined
  /** The store key of output `index` (default `<provider>/<model>/<taskKey>/<index>.<ext>`). */
  readonly keyFor?: ((record: TaskRecord, index: number, contentType: string) => string) | undefined
}

const defaultAllowed = ["video/", "image/", "audio/", "application/octet-stream"]

const defaultRetry: Schedule.Schedule<unknown, ResultStorageError> = Schedule.exponential(Duration.seconds(1), 2).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(5)),
  Schedule.whileInput((error: ResultStorageError) => error._tag === "DownloadFailed" && error.retryable)
)

const extensions: Record<string, string> = {
  "video/mp4": "mp4",
  "video/webm": "webm",
  "video/quicktime": "mov",
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "audio/mpeg": "mp3",
  "audio/wav": "wav"
}

/** The default store key of an output. */
export const defaultKeyFor = (record: TaskRecord, index: number, contentType: string): string =>
  `${record.providerId}/${record.modelId}/${record.taskKey}/${index}.${extensions[contentType] ?? "bin"}`

/**
 * A URL fit for messages and logs: result URLs are often signed, and their query strings are
 * credentials, so only origin and path are shown.
 */
export const displayUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.origin}${parsed.pathname}`
  } catch {
    return "(invalid URL)"
  }
}

/** Default bound on the outputs stored per task. */
export const defaultMaxOutputs = 8

/** Default bound on the bytes stored per task. */
export const defaultMaxTotalBytes = 8 * 1024 ** 3

/** Default bound on one output's bytes. */
export const defaultMaxBytes = 4 * 1024 ** 3

/** The bounds of one task's stored outputs, from the options and their defaults. */
interface Bounds {
  readonly maxOutputs: number
  readonly maxBytes: number
  readonly maxTotalBytes: number
}

// Options are code, not user input: a bound that is not a whole positive number is a defect,
// reported at once with the field and the rule rather than turned into "store everything".
const boundsOf = (options: Options): Effect.Effect<Bounds> => {
  const bounds: Bounds = {
    maxOutputs: options.maxOutputs ?? defaultMaxOutputs,
    maxBytes: options.maxBytes ?? defaultMaxBytes,
    maxTotalBytes: options.maxTotalBytes ?? defaultMaxTotalBytes
  }
  for (const [field, value] of Object.entries(bounds)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      return Effect.dieMessage(`ResultStorage option ${field} must be a whole number of at least 1 (got ${value})`)
    }
  }
  return Effect.succeed(bounds)
}

/**
 * Streams the result URLs of a succeeded task into the store and returns what was stored: the
 * first `maxOutputs` URLs only (the others are never fetched), one after the other, each capped
 * at the smaller of `maxBytes` and what is left of `maxTotalBytes` (`ArtifactTooLarge` beyond it).
 */
export const storeResults = (
  record: TaskRecord,
  options: Options = {}
): Effect.Effect<ReadonlyArray<StoredArtifact>, ResultStorageError, ArtifactStore | HttpClient.HttpClient> =>
  Effect.flatMap(boundsOf(options), (bounds) => {
    const kept = record.resultUrls.slice(0, bounds.maxOutputs)
    const dropped = record.resultUrls.length - kept.length
    return Effect.gen(function* () {
      if (dropped > 0) {
        yield* Effect.logWarning(
          `Task ${record.taskKey} lists ${record.resultUrls.length} outputs; only the first ${kept.length} are stored (maxOutputs)`
        )
      }
      const stored: Array<StoredArtifact> = []
      let totalBytes = 0
      for (const [index, url] of kept.entries()) {
        const cap = Math.min(bounds.maxBytes, bounds.maxTotalBytes - totalBytes)
        const artifact = yield* downloadOne(record, url, index, cap, options).pipe(
          Effect.retry(options.retry ?? defaultRetry)
        )
        totalBytes += artifact.bytes
        stored.push(artifact)
      }
      return stored
    }).pipe(
      Effect.withSpan("reelkit.storeResults", {
        attributes: {
          "reelkit.task_key": record.taskKey,
          "reelkit.outputs": kept.length,
          "reelkit.outputs_dropped": dropped
        }
      })
    )
  })

const downloadOne = (
  record: TaskRecord,
  url: string,
  index: number,
  maxBytes: number,
  options: Options
): Effect.Effect<StoredArtifact, ResultStorageError, ArtifactStore | HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const shownUrl = displayUrl(url)
    const now = yield* Clock.currentTimeMillis
    if (record.resultExpiresAt !== undefined && now >= record.resultExpiresAt) {
      return yield* new ResultExpired({ taskKey: record.taskKey, url: shownUrl, expiredAt: record.resultExpiresAt })
    }
    const store = yield* ArtifactStore
    const client = yield* HttpClient.HttpClient
    const failed = (reason: string, retryable: boolean, cause?: unknown) =>
      new DownloadFailed({ taskKey: record.taskKey, url: shownUrl, reason, retryable, cause })

    return yield* Effect.scoped(
      Effect.gen(function* () {
        const response = yield* client
          .get(url)
          .pipe(Effect.mapError((error: HttpClientError.HttpClientError) => failed(error.message, true, error)))
        if (response.status === 404 || response.status === 410) {
          return yield* new ResultExpired({ taskKey: record.taskKey, url: shownUrl, expiredAt: record.resultExpiresAt })
        }
        if (response.status >= 500 || response.status === 429 || response.status === 408) {
          return yield* failed(`HTTP ${response.status}`, true)
        }
        if (response.status !== 200) return yield* failed(`HTTP ${response.status}`, false)
        const contentType = (response.headers["content-type"] ?? "application/octet-stream").split(";")[0]!.trim()
        const allowed = options.allowedContentTypes ?? defaultAllowed
        if (!allowed.some((prefix) => contentType.toLowerCase().startsWith(prefix))) {
          return yield* new UnexpectedContentType({ taskKey: record.taskKey, url: shownUrl, contentType })
        }
        const declaredLength = Number(response.headers["content-length"] ?? Number.NaN)
        const key = (options.keyFor ?? defaultKeyFor)(record, index, contentType)
        // An announced length past the cap is refused before a byte of the body is read.
        if (declaredLength > maxBytes) return yield* new ArtifactTooLarge({ key, maxBytes })
        const body = resumingBody(client, url, response, failed, options.maxResumes ?? defaultMaxResumes)
        const stored = yield* store.put(key, body, { contentType, sourceUrl: shownUrl, maxBytes })
        // A body that ended early is not an error to every HTTP client: compare with what was announced.
        if (Number.isFinite(declaredLength) && stored.bytes !== declaredLength) {
          yield* store.delete(key)
          return yield* failed(`received ${stored.bytes} of ${declaredLength} bytes`, true)
        }
        return new StoredArtifact({
          key: stored.key,
          bytes: stored.bytes,
          sha256: stored.sha256,
          contentType: stored.contentType,
          sourceUrl: shownUrl,
          storedAt: stored.storedAt
        })
      })
    )
  }).pipe(
    Effect.withSpan("reelkit.download", {
      attributes: { "reelkit.task_key": record.taskKey, "reelkit.output_index": index }
    })
  )

/** Default bound on the range requests of one download. */
export const defaultMaxResumes = 5

/** What a first response promised about resuming: its length, and the validator a range request names. */
interface ResumePlan {
  readonly total: number
  readonly etag: string | undefined
  readonly lastModified: string | undefined
  /** Sent as `If-Range`: the content is sent from the offset only if it is still this version. */
  readonly ifRange: string
}

/**
 * A download may resume with a range request only when the host said it serves byte ranges, the
 * length is known, the body is not re-encoded on the way (ranges count encoded bytes) and there is a
 * validator (a strong ETag or a Last-Modified date) by which a changed file restarts the download.
 */
const resumePlanOf = (headers: Headers.Headers): ResumePlan | undefined => {
  const total = Number(headers["content-length"] ?? Number.NaN)
  const ranges = (headers["accept-ranges"] ?? "").toLowerCase().split(",")
  const encoding = (headers["content-encoding"] ?? "identity").toLowerCase()
  if (!Number.isSafeInteger(total) || total <= 0 || !ranges.some((unit) => unit.trim() === "bytes")) return undefined
  if (encoding !== "identity") return undefined
  const etag = headers.etag
  const lastModified = headers["last-modified"]
  // If-Range takes only a strong ETag (a weak one never matches) or a date.
  const ifRange = etag !== undefined && !etag.startsWith("W/") ? etag : lastModified
  return ifRange === undefined ? undefined : { total, etag, lastModified, ifRange }
}

const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/

/**
 * Why a range response cannot continue the download, if it cannot: it must be a 206 for exactly
 * the rest (`Content-Range: bytes <offset>-<total - 1>/<total>`) of the same version of the file.
 */
const resumeRefusal = (response: HttpClientResponse.HttpClientResponse, plan: ResumePlan, offset: number) => {
  // If-Range answers a changed file (or a server that ignores ranges) with the whole of it.
  if (response.status === 200) return "the result changed on its host (or its host ignored the range); starting over"
  if (response.status !== 206) return `HTTP ${response.status} to a range request`
  const range = contentRange.exec(response.headers["content-range"] ?? "")
  if (
    range === null ||
    Number(range[1]) !== offset ||
    Number(range[2]) !== plan.total - 1 ||
    Number(range[3]) !== plan.total
  ) {
    return `a range response for "${response.headers["content-range"] ?? "(none)"}", not bytes ${offset}-${plan.total - 1}/${plan.total}`
  }
  const etag = response.headers.etag
  const lastModified = response.headers["last-modified"]
  if (
    (plan.etag !== undefined && etag !== undefined && etag !== plan.etag) ||
    (plan.lastModified !== undefined && lastModified !== undefined && lastModified !== plan.lastModified)
  ) {
    return "the result changed on its host (ETag or Last-Modified); starting over"
  }
  return undefined
}

/**
 * The body of a download that, when its connection drops (an error, or an end before the announced
 * length), asks for the rest with a range request and goes on from there, up to `maxResumes` times.
 * A host that does not serve ranges, or a file that changed, fails the download (retryable), which
 * then starts over.
 */
const resumingBody = (
  client: HttpClient.HttpClient,
  url: string,
  first: HttpClientResponse.HttpClientResponse,
  failed: (reason: string, retryable: boolean, cause?: unknown) => DownloadFailed,
  maxResumes: number
): Stream.Stream<Uint8Array, DownloadFailed> => {
  const plan = resumePlanOf(first.headers)
  let received = 0
  let resumes = 0
  const resume = (cause: DownloadFailed): Stream.Stream<Uint8Array, DownloadFailed> => {
    if (plan === undefined || resumes >= maxResumes || received === 0) return Stream.fail(cause)
    resumes++
    const offset = received
    return Stream.unwrap(
      Effect.gen(function* () {
        yield* Effect.logDebug(`Resuming a download at byte ${offset} of ${plan.total} (${cause.reason})`)
        const response = yield* client
          .get(url, { headers: { range: `bytes=${offset}-`, "if-range": plan.ifRange } })
          .pipe(Effect.mapError((error) => failed(error.message, true, error)))
        const refusal = resumeRefusal(response, plan, offset)
        // Starting over is the remedy for every refusal (an expired URL then shows as such).
        if (refusal !== undefined) return yield* failed(refusal, true)
        return from(response)
      })
    )
  }
  const from = (response: HttpClientResponse.HttpClientResponse): Stream.Stream<Uint8Array, DownloadFailed> =>
    response.stream.pipe(
      Stream.mapChunks((chunk) => {
        for (const part of chunk) received += part.byteLength
        return chunk
      }),
      Stream.catchAll((error) =>
        resume(failed(`the connection broke while downloading: ${error.message}`, true, error))
      ),
      // Some clients end a body quietly when the connection closes early: that is a drop too.
      Stream.concat(
        Stream.suspend(() =>
          plan !== undefined && received < plan.total
            ? resume(failed(`the connection ended after ${received} of ${plan.total} bytes`, true))
            : Stream.empty
        )
      )
    )
  return from(first)
}

/** The result-storage capability `TaskClient` uses: store a succeeded task's outputs, or do nothing. */
export interface Service {
  /** Stores the outputs of a `succeeded` row and returns what was stored (empty when disabled). */
  readonly store: (record: TaskRecord) => Effect.Effect<ReadonlyArray<StoredArtifact>, ResultStorageError>
  /** Whether outputs are stored at all (`layerNone` stores nothing). */
  readonly enabled: boolean
  /** At most this many result URLs are kept per task. */
  readonly maxOutputs: number
}

/** The result-storage tag. Provide `layer(options)` (needs an `ArtifactStore` and an `HttpClient`) or `layerNone`. */
export class ResultStorage extends Context.Tag("@reelkit/core/ResultStorage")<ResultStorage, Service>() {}

/** Stores outputs in the `ArtifactStore` in context, downloading with the `HttpClient` in context. */
export const make = (options: Options = {}): Effect.Effect<Service, never, ArtifactStore | HttpClient.HttpClient> =>
  Effect.zipWith(boundsOf(options), Effect.context<ArtifactStore | HttpClient.HttpClient>(), (bounds, context) => ({
    enabled: true,
    maxOutputs: bounds.maxOutputs,
    store: (record) => storeResults(record, options).pipe(Effect.provide(context))
  }))

/** Result storage into the `ArtifactStore`, downloading with the `HttpClient` (both required: no silent empty artifacts). */
export const layer = (
  options: Options = {}
): Layer.Layer<ResultStorage, never, ArtifactStore | HttpClient.HttpClient> =>
  Layer.effect(ResultStorage, make(options))

/** No result storage: tasks complete with their result URLs only (explicitly chosen). */
export const layerNone: Layer.Layer<ResultStorage> = Layer.succeed(ResultStorage, {
  enabled: false,
  maxOutputs: defaultMaxOutputs,
  store: () => Effect.succeed([])
})
