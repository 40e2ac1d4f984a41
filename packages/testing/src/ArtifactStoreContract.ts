/**
 * The contract every `ArtifactStore` adapter must pass: streaming round trips with checksums, the
 * size cap keeping nothing, key validation, head/list/delete, overwrites. Register it in a vitest
 * file with `ArtifactStoreContract.suite("MyStore", myLayer, EffectVitest)`, or run `cases` with any
 * runner. Assertions use `node:assert`, so only the registration needs `@effect/vitest`.
 *
 * @since 0.1.0
 */
import { ArtifactStore } from "@reelkit/core"
import type * as EffectVitest from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { strict as assert } from "node:assert"
import { createHash, randomBytes } from "node:crypto"

/** Options of the suite. */
export interface Options {
  /**
   * Size of the large multi-chunk round trip, in bytes (default 3 MiB). Set it above an adapter's
   * multipart threshold to exercise multipart uploads.
   */
  readonly largeBytes?: number | undefined
}

/**
 * One contract case. `prefix` is unique per case and run (`c<hex>/`): cases store under it, so they
 * can share one store without seeing each other's artifacts.
 */
export interface Case {
  readonly name: string
  readonly run: (prefix: string, options: Options) => Effect.Effect<void, unknown, ArtifactStore.ArtifactStore>
}

/** The part of `@effect/vitest` the suite registers tests with. */
export interface Vitest {
  readonly layer: typeof EffectVitest.layer
}

/** The error a failing test body raises. */
export class BodyFailed extends Data.TaggedError("BodyFailed")<{ readonly reason: string }> {}

/** Deterministic bytes of a given length, from a seed. */
export const bytesOf = (length: number, seed = 1): Uint8Array => {
  const bytes = new Uint8Array(length)
  let state = seed >>> 0 || 1
  for (let index = 0; index < length; index++) {
    // xorshift32: cheap, and not a repeating pattern a store could dedupe or compress away.
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    bytes[index] = state & 0xff
  }
  return bytes
}

/** Splits bytes into a stream of chunks of uneven sizes. */
export const chunked = (bytes: Uint8Array, sizes: ReadonlyArray<number> = [1, 7, 65_536, 1000, 131_072]) => {
  const chunks: Array<Uint8Array> = []
  let offset = 0
  let turn = 0
  while (offset < bytes.length) {
    const size = sizes[turn++ % sizes.length]!
    chunks.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return Stream.fromIterable(chunks)
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

const collect = <E, R>(stream: Stream.Stream<Uint8Array, E, R>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))

const failureTag = <A, E>(either: Either.Either<A, E>): string | undefined =>
  Either.isLeft(either) ? (either.left as { readonly _tag?: string })._tag : undefined

const store = ArtifactStore.ArtifactStore

// Metadata as plain values: an absent source URL compares equal whether the field is missing or undefined.
const plain = (metadata: ArtifactStore.ArtifactMetadata) => ({
  key: metadata.key,
  bytes: metadata.bytes,
  sha256: metadata.sha256,
  contentType: metadata.contentType,
  sourceUrl: metadata.sourceUrl ?? null,
  storedAt: metadata.storedAt
})

/** Keys every operation must reject. */
export const invalidKeys: ReadonlyArray<string> = [
  "",
  "../escape.mp4",
  "a/../../escape.mp4",
  "a/..",
  "/etc/passwd",
  "a\\b.mp4",
  "C:\\video.mp4",
  "a//b.mp4",
  "./a.mp4",
  "a/./b.mp4",
  "a/",
  "with space.mp4",
  "caf\u00e9.mp4",
  "a?b",
  "a*b",
  "a:b",
  "a\u0000b",
  "x".repeat(513)
]

/** Every case of the contract. */
export const cases: ReadonlyArray<Case> = [
  {
    name: "put streams a multi-chunk body and records size, sha256, content type, source URL and time",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        yield* TestClock.adjust("2 seconds")
        const now = yield* Clock.currentTimeMillis
        const content = bytesOf(300_000, 7)
        const key = `${prefix}videos/a-1_B.mp4`
        const metadata = yield* service.put(key, chunked(content), {
          contentType: "video/mp4",
          sourceUrl: "https://cdn.example/v.mp4?X-Sig=a%2Fb&exp=1"
        })
        assert.equal(metadata.key, key)
        assert.equal(metadata.bytes, content.length)
        assert.equal(metadata.sha256, sha256(content))
        assert.equal(metadata.contentType, "video/mp4")
        assert.equal(metadata.sourceUrl, "https://cdn.example/v.mp4?X-Sig=a%2Fb&exp=1")
        assert.equal(metadata.storedAt, now)
        const read = yield* collect(service.get(key))
        assert.equal(read.length, content.length)
        assert.ok(read.equals(content))
        const head = Option.getOrThrow(yield* service.head(key))
        assert.deepEqual(plain(head), plain(metadata))
      })
  },
  {
    name: "an empty body is stored, and a put without source URL has none",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        const key = `${prefix}empty.bin`
        const metadata = yield* service.put(key, Stream.empty, { contentType: "application/octet-stream" })
        assert.equal(metadata.bytes, 0)
        assert.equal(metadata.sha256, sha256(new Uint8Array(0)))
        assert.equal(metadata.sourceUrl, undefined)
        assert.equal((yield* collect(service.get(key))).length, 0)
        const head = Option.getOrThrow(yield* service.head(key))
        assert.equal(head.bytes, 0)
        assert.equal(head.sourceUrl, undefined)
        assert.equal(head.contentType, "application/octet-stream")
      })
  },
  {
    name: "a body over maxBytes fails with ArtifactTooLarge and keeps nothing; exactly maxBytes is accepted",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        const key = `${prefix}big.mp4`
        const content = bytesOf(200_000, 3)
        const tooLarge = yield* Effect.either(
          service.put(key, chunked(content), { contentType: "video/mp4", maxBytes: 199_999 })
        )
        assert.equal(failureTag(tooLarge), "ArtifactTooLarge")
        const error = (tooLarge as Either.Left<ArtifactStore.ArtifactTooLarge, unknown>).left
        assert.equal(error.key, key)
        assert.equal(error.maxBytes, 199_999)
        assert.ok(Option.isNone(yield* service.head(key)))
        assert.equal(failureTag(yield* Effect.either(collect(service.get(key)))), "ArtifactNotFound")
        assert.deepEqual(yield* service.list(prefix), [])
        const exact = yield* service.put(key, chunked(content), { contentType: "video/mp4", maxBytes: 200_000 })
        assert.equal(exact.bytes, 200_000)
      })
  },
  {
    name: "a failed put over an existing artifact leaves the old one intact",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        const key = `${prefix}keep.mp4`
        const original = bytesOf(10_000, 5)
        const metadata = yield* service.put(key, chunked(original), { contentType: "video/mp4" })
        const tooLarge = yield* Effect.either(
          service.put(key, chunked(bytesOf(50_000, 6)), { contentType: "video/webm", maxBytes: 20_000 })
        )
        assert.equal(failureTag(tooLarge), "ArtifactTooLarge")
        const failing = yield* Effect.either(
          service.put(
            key,
            Stream.concat(chunked(bytesOf(5_000, 8)), Stream.fail(new BodyFailed({ reason: "connection reset" }))),
            { contentType: "video/webm" }
          )
        )
        assert.equal(failureTag(failing), "BodyFailed")
        assert.deepEqual(plain(Option.getOrThrow(yield* service.head(key))), plain(metadata))
        assert.ok((yield* collect(service.get(key))).equals(original))
      })
  },
  {
    name: "a body that fails mid-stream fails the put with the body's error and keeps nothing",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        const key = `${prefix}broken.mp4`
        const body = Stream.concat(chunked(bytesOf(100_000, 9)), Stream.fail(new BodyFailed({ reason: "reset" })))
        const result = yield* Effect.either(service.put(key, body, { contentType: "video/mp4" }))
        assert.equal(failureTag(result), "BodyFailed")
        assert.equal((result as Either.Left<BodyFailed, unknown>).left.reason, "reset")
        assert.ok(Option.isNone(yield* service.head(key)))
        assert.deepEqual(yield* service.list(prefix), [])
      })
  },
  {
    name: "invalid keys are rejected by put, get, head and delete",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        for (const key of invalidKeys) {
          const put = yield* Effect.either(service.put(key, Stream.make(new Uint8Array([1])), { contentType: "x/y" }))
          assert.equal(failureTag(put), "InvalidArtifactKey", `put ${JSON.stringify(key)}`)
          assert.equal(
            failureTag(yield* Effect.either(collect(service.get(key)))),
            "InvalidArtifactKey",
            `get ${JSON.stringify(key)}`
          )
          assert.equal(failureTag(yield* Effect.either(service.head(key))), "InvalidArtifactKey", `head ${key}`)
          assert.equal(failureTag(yield* Effect.either(service.delete(key))), "InvalidArtifactKey", `delete ${key}`)
        }
        // A key under this case's prefix that tries to climb out of it is rejected too.
        const climbing = yield* Effect.either(
          service.put(`${prefix}../../outside.mp4`, Stream.make(new Uint8Array([1])), { contentType: "x/y" })
        )
        assert.equal(failureTag(climbing), "InvalidArtifactKey")
        assert.deepEqual(yield* service.list(prefix), [])
      })
  },
  {
    name: "a missing key: head is None, get fails with ArtifactNotFound, delete succeeds",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        const key = `${prefix}nothing-here.mp4`
        assert.ok(Option.isNone(yield* service.head(key)))
        const get = yield* Effect.either(collect(service.get(key)))
        assert.equal(failureTag(get), "ArtifactNotFound")
        assert.equal((get as Either.Left<ArtifactStore.ArtifactNotFound, unknown>).left.key, key)
        yield* service.delete(key)
        yield* service.delete(`${prefix}no/such/dir/file.mp4`)
      })
  },
  {
    name: "putting an existing key replaces its content and metadata",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        const key = `${prefix}again.mp4`
        yield* service.put(key, chunked(bytesOf(70_000, 1)), { contentType: "video/mp4", sourceUrl: "https://a/1" })
        yield* TestClock.adjust("1 minute")
        const second = bytesOf(1_234, 2)
        const metadata = yield* service.put(key, chunked(second), { contentType: "video/webm" })
        assert.equal(metadata.bytes, 1_234)
        assert.equal(metadata.storedAt, yield* Clock.currentTimeMillis)
        const head = Option.getOrThrow(yield* service.head(key))
        assert.equal(head.sha256, sha256(second))
        assert.equal(head.contentType, "video/webm")
        assert.equal(head.sourceUrl, undefined)
        assert.equal(head.bytes, 1_234)
        assert.ok((yield* collect(service.get(key))).equals(second))
        assert.equal((yield* service.list(prefix)).length, 1)
      })
  },
  {
    name: "list returns the artifacts under a prefix, sorted by key, with their metadata",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        const names = ["p/b.mp4", "p/a.mp4", "p/sub/c.mp4", "q/x.mp4", "p.mp4"]
        for (const [index, name] of names.entries()) {
          yield* service.put(`${prefix}${name}`, Stream.make(bytesOf(10 + index, index + 1)), {
            contentType: "video/mp4"
          })
        }
        const listed = (items: ReadonlyArray<ArtifactStore.ArtifactMetadata>) =>
          items.map((item) => item.key.slice(prefix.length))
        assert.deepEqual(listed(yield* service.list(prefix)), ["p.mp4", "p/a.mp4", "p/b.mp4", "p/sub/c.mp4", "q/x.mp4"])
        assert.deepEqual(listed(yield* service.list(`${prefix}p/`)), ["p/a.mp4", "p/b.mp4", "p/sub/c.mp4"])
        // A prefix need not end at a segment boundary.
        assert.deepEqual(listed(yield* service.list(`${prefix}p/s`)), ["p/sub/c.mp4"])
        assert.deepEqual(listed(yield* service.list(`${prefix}p`)), ["p.mp4", "p/a.mp4", "p/b.mp4", "p/sub/c.mp4"])
        assert.deepEqual(yield* service.list(`${prefix}zzz`), [])
        const [first] = yield* service.list(`${prefix}p/a`)
        assert.equal(first!.bytes, 11)
        assert.equal(first!.sha256, sha256(bytesOf(11, 2)))
        assert.equal(first!.contentType, "video/mp4")
        // Without a prefix, this case's artifacts are there among any others.
        const all = (yield* service.list()).map((item) => item.key)
        for (const name of names) assert.ok(all.includes(`${prefix}${name}`))
      })
  },
  {
    name: "delete removes the content and the metadata",
    run: (prefix) =>
      Effect.gen(function* () {
        const service = yield* store
        const key = `${prefix}gone.mp4`
        const kept = `${prefix}kept.mp4`
        yield* service.put(key, Stream.make(bytesOf(100)), { contentType: "video/mp4" })
        yield* service.put(kept, Stream.make(bytesOf(100)), { contentType: "video/mp4" })
        yield* service.delete(key)
        assert.ok(Option.isNone(yield* service.head(key)))
        assert.equal(failureTag(yield* Effect.either(collect(service.get(key)))), "ArtifactNotFound")
        assert.deepEqual(
          (yield* service.list(prefix)).map((item) => item.key),
          [kept]
        )
        yield* service.delete(key)
      })
  },
  {
    name: "a large body in many chunks round trips with its checksum",
    run: (prefix, options) =>
      Effect.gen(function* () {
        const service = yield* store
        const size = options.largeBytes ?? 3 * 1024 * 1024
        const content = bytesOf(size, 11)
        const key = `${prefix}large.mp4`
        const metadata = yield* service.put(key, chunked(content, [65_536, 16_384, 100_003]), {
          contentType: "video/mp4",
          maxBytes: size
        })
        assert.equal(metadata.bytes, size)
        assert.equal(metadata.sha256, sha256(content))
        // Read back incrementally: hash the stream without collecting it.
        const hash = createHash("sha256")
        let bytes = 0
        yield* Stream.runForEach(service.get(key), (chunk) =>
          Effect.sync(() => {
            bytes += chunk.length
            hash.update(chunk)
          })
        )
        assert.equal(bytes, size)
        assert.equal(hash.digest("hex"), metadata.sha256)
      })
  }
]

/** A fresh key prefix for one case. */
export const newPrefix = (): string => `c${randomBytes(6).toString("hex")}/`

/**
 * Registers every case as an `@effect/vitest` test sharing one instance of `layer` (and the
 * `TestClock`). Pass the `@effect/vitest` module: `suite("FileSystemStore", layer, EffectVitest)`.
 */
export const suite = <E>(
  name: string,
  layer: Layer.Layer<ArtifactStore.ArtifactStore, E>,
  vitest: Vitest,
  options: Options = {}
): void =>
  vitest.layer(layer, { timeout: "60 seconds" })(`ArtifactStore contract: ${name}`, (it) => {
    for (const testCase of cases) {
      it.effect(testCase.name, () => Effect.suspend(() => testCase.run(newPrefix(), options)))
    }
  })
