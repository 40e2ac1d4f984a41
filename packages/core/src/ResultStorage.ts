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
        const body = response.stream.pipe(
          Stream.mapError((error) => failed(`the connection broke while downloading: ${error.message}`, true, error))
        )
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
