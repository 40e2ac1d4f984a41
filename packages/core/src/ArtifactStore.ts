/**
 * Where generated outputs are kept after the provider's URLs expire. Content always streams: no
 * adapter holds a whole file in memory. A `put` is atomic: readers see the whole artifact or none.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import { createHash } from "node:crypto"

/** What is known of a stored artifact. */
export class ArtifactMetadata extends Schema.Class<ArtifactMetadata>("@reelkit/core/ArtifactMetadata")({
  key: Schema.String,
  bytes: Schema.Number,
  /** Hex SHA-256 of the content. */
  sha256: Schema.String,
  contentType: Schema.String,
  sourceUrl: Schema.optional(Schema.String),
  /** Epoch milliseconds. */
  storedAt: Schema.Number
}) {}

/** Options of one `put`. */
export interface PutOptions {
  readonly contentType: string
  readonly sourceUrl?: string | undefined
  /** Fails with `ArtifactTooLarge` as soon as more bytes than this arrive; nothing is kept. */
  readonly maxBytes?: number | undefined
}

/** A store operation failed. */
export class ArtifactStoreError extends Schema.TaggedError<ArtifactStoreError>("@reelkit/core/ArtifactStoreError")(
  "ArtifactStoreError",
  { operation: Schema.String, key: Schema.String, message: Schema.String, cause: Schema.optional(Schema.Defect) }
) {}

/** No artifact under this key. */
export class ArtifactNotFound extends Schema.TaggedError<ArtifactNotFound>("@reelkit/core/ArtifactNotFound")(
  "ArtifactNotFound",
  { key: Schema.String }
) {
  override get message(): string {
    return `No artifact is stored under "${this.key}"`
  }
}

/** The key is not allowed (escapes the root, absolute, odd characters). */
export class InvalidArtifactKey extends Schema.TaggedError<InvalidArtifactKey>("@reelkit/core/InvalidArtifactKey")(
  "InvalidArtifactKey",
  { key: Schema.String, rule: Schema.String }
) {
  override get message(): string {
    return `Invalid artifact key "${this.key}": ${this.rule}`
  }
}

/** The content was larger than the `maxBytes` the caller allowed. Nothing was kept. */
export class ArtifactTooLarge extends Schema.TaggedError<ArtifactTooLarge>("@reelkit/core/ArtifactTooLarge")(
  "ArtifactTooLarge",
  { key: Schema.String, maxBytes: Schema.Number }
) {
  override get message(): string {
    return `The artifact "${this.key}" is larger than the allowed ${this.maxBytes} bytes`
  }
}

/** The artifact store service. */
export interface Service {
  /** Streams `body` into the store under `key`, atomically, computing size and checksum. */
  readonly put: <E>(
    key: string,
    body: Stream.Stream<Uint8Array, E>,
    options: PutOptions
  ) => Effect.Effect<ArtifactMetadata, ArtifactStoreError | ArtifactTooLarge | InvalidArtifactKey | E>
  /** Streams an artifact's content. */
  readonly get: (key: string) => Stream.Stream<Uint8Array, ArtifactStoreError | ArtifactNotFound | InvalidArtifactKey>
  /** Reads an artifact's metadata, if it exists. */
  readonly head: (
    key: string
  ) => Effect.Effect<Option.Option<ArtifactMetadata>, ArtifactStoreError | InvalidArtifactKey>
  /** Lists artifacts whose key starts with `prefix`, sorted by key. */
  readonly list: (prefix?: string) => Effect.Effect<ReadonlyArray<ArtifactMetadata>, ArtifactStoreError>
  /** Deletes an artifact; deleting a missing key succeeds. */
  readonly delete: (key: string) => Effect.Effect<void, ArtifactStoreError | InvalidArtifactKey>
}

/** The artifact store tag. */
export class ArtifactStore extends Context.Tag("@reelkit/core/ArtifactStore")<ArtifactStore, Service>() {}

/**
 * Checks a key's shape: relative, `/`-separated segments of letters, digits, `.`, `-`, `_`, no
 * empty, `.` or `..` segment. Adapters call this before touching storage.
 */
export const validateKey = (key: string): Effect.Effect<string, InvalidArtifactKey> => {
  const fail = (rule: string) => Effect.fail(new InvalidArtifactKey({ key, rule }))
  if (key.length === 0 || key.length > 512) return fail("must be 1 to 512 characters")
  if (key.startsWith("/") || key.includes("\\")) return fail("must be a relative path with / separators")
  for (const segment of key.split("/")) {
    if (segment === "" || segment === "." || segment === "..") return fail("must not have empty, . or .. segments")
    if (!/^[A-Za-z0-9._-]+$/.test(segment)) return fail("segments may hold only letters, digits, '.', '-' and '_'")
  }
  return Effect.succeed(key)
}

interface MemoryEntry {
  readonly metadata: ArtifactMetadata
  readonly content: Uint8Array
}

/** Builds a store held in memory: for tests and small tools. */
export const makeMemory: Effect.Effect<Service> = Effect.gen(function* () {
  const entries = yield* Ref.make<ReadonlyMap<string, MemoryEntry>>(new Map())

  const put: Service["put"] = (key, body, options) =>
    Effect.gen(function* () {
      yield* validateKey(key)
      const hash = createHash("sha256")
      let bytes = 0
      const chunks = yield* body.pipe(
        Stream.tap((chunk) => {
          bytes += chunk.byteLength
          hash.update(chunk)
          return options.maxBytes !== undefined && bytes > options.maxBytes
            ? Effect.fail(new ArtifactTooLarge({ key, maxBytes: options.maxBytes }))
            : Effect.void
        }),
        Stream.runCollect
      )
      const content = Buffer.concat(Chunk.toReadonlyArray(chunks))
      const metadata = new ArtifactMetadata({
        key,
        bytes,
        sha256: hash.digest("hex"),
        contentType: options.contentType,
        sourceUrl: options.sourceUrl,
        storedAt: yield* Clock.currentTimeMillis
      })
      yield* Ref.update(entries, (map) => new Map(map).set(key, { metadata, content }))
      return metadata
    })

  return ArtifactStore.of({
    put,
    get: (key) =>
      Stream.unwrap(
        validateKey(key).pipe(
          Effect.zipRight(Ref.get(entries)),
          Effect.flatMap((map) => {
            const entry = map.get(key)
            return entry === undefined
              ? Effect.fail(new ArtifactNotFound({ key }))
              : Effect.succeed(Stream.make(entry.content))
          })
        )
      ),
    head: (key) =>
      validateKey(key).pipe(
        Effect.zipRight(Ref.get(entries)),
        Effect.map((map) => Option.map(Option.fromNullable(map.get(key)), (entry) => entry.metadata))
      ),
    list: (prefix = "") =>
      Ref.get(entries).pipe(
        Effect.map((map) =>
          [...map.values()]
            .map((entry) => entry.metadata)
            .filter((metadata) => metadata.key.startsWith(prefix))
            .sort((left, right) => (left.key < right.key ? -1 : left.key > right.key ? 1 : 0))
        )
      ),
    delete: (key) =>
      validateKey(key).pipe(
        Effect.zipRight(
          Ref.update(entries, (map) => {
            const next = new Map(map)
            next.delete(key)
            return next
          })
        )
      )
  })
})

/** A store held in memory. */
export const layerMemory: Layer.Layer<ArtifactStore> = Layer.effect(ArtifactStore, makeMemory)
