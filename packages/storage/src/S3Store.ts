/**
 * The `ArtifactStore` on S3-compatible storage (AWS S3, Cloudflare R2, MinIO). Content streams up
 * with `@aws-sdk/lib-storage`'s `Upload` (one PutObject for small bodies, a multipart upload above
 * the part size) to a temporary key; once its size and sha256 are known, a server-side CopyObject
 * gives it its final key with the metadata (content type, sha256, source URL, stored-at) in the
 * object's own metadata, and the temporary object is deleted. Readers of the final key therefore
 * only ever see a whole artifact with its checksum.
 *
 * @since 0.1.0
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
  S3ServiceException
} from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import { ArtifactStore } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { createHash, randomBytes } from "node:crypto"
import type { Readable } from "node:stream"
import { toReadable } from "./internal/nodeReadable.js"

/** Credentials for the bucket. Secrets stay `Redacted` until the client is built. */
export interface Credentials {
  readonly accessKeyId: string
  readonly secretAccessKey: Redacted.Redacted<string>
  readonly sessionToken?: Redacted.Redacted<string> | undefined
}

/** Options of the S3 store. */
export interface Options {
  readonly bucket: string
  /** Prepended to every key, e.g. `"reelkit/outputs"` (a `/` is added between). Default none. */
  readonly prefix?: string | undefined
  /** The S3-compatible endpoint, e.g. `https://<account>.r2.cloudflarestorage.com` or `http://127.0.0.1:9000`. */
  readonly endpoint?: string | undefined
  /** Default `us-east-1` (R2 accepts `auto`). */
  readonly region?: string | undefined
  /** Default: the AWS SDK's provider chain (environment, profile, instance role). */
  readonly credentials?: Credentials | undefined
  /** Path-style URLs (`endpoint/bucket/key`), which MinIO and most local servers need. */
  readonly forcePathStyle?: boolean | undefined
  /** Size of each multipart part, in bytes (min 5 MiB, default 8 MiB); smaller bodies use one PutObject. */
  readonly partSizeBytes?: number | undefined
  /** Parts uploaded at once (default 4). Memory held is about `partSizeBytes * queueSize`. */
  readonly queueSize?: number | undefined
  /** Extra S3 client settings (timeouts, retries, a custom request handler). */
  readonly clientConfig?: S3ClientConfig | undefined
}

/** The largest object a single CopyObject can copy (5 GiB). Larger puts are refused. */
export const maxObjectBytes = 5 * 1024 * 1024 * 1024

// Temporary uploads live under `~uploads/`: `~` is never valid in a key, so they never list.
const uploadsFolder = "~uploads"

/** Builds the S3 client these options describe. */
export const makeClient = (options: Options): S3Client =>
  new S3Client({
    region: options.region ?? "us-east-1",
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
    ...(options.credentials !== undefined
      ? {
          credentials: {
            accessKeyId: options.credentials.accessKeyId,
            secretAccessKey: Redacted.value(options.credentials.secretAccessKey),
            ...(options.credentials.sessionToken !== undefined
              ? { sessionToken: Redacted.value(options.credentials.sessionToken) }
              : {})
          }
        }
      : {}),
    // Many S3-compatible servers do not accept the SDK's default flexible checksums (aws-chunked
    // trailers); integrity is checked by our own sha256 instead.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...options.clientConfig
  })

const isNotFound = (cause: unknown): boolean =>
  cause instanceof S3ServiceException
    ? cause.name === "NotFound" || cause.name === "NoSuchKey" || cause.$metadata.httpStatusCode === 404
    : false

const describe = (cause: unknown): string =>
  cause instanceof S3ServiceException
    ? `${cause.name}: ${cause.message}`
    : cause instanceof Error
      ? cause.message
      : String(cause)

/** Builds a store on `client` (or on one built from the options). */
export const make = (options: Options, client: S3Client = makeClient(options)): Effect.Effect<ArtifactStore.Service> =>
  Effect.sync(() => makeService(options, client))

const makeService = (options: Options, client: S3Client): ArtifactStore.Service => {
  const bucket = options.bucket
  const trimmed = (options.prefix ?? "").replace(/^\/+|\/+$/g, "")
  const objectPrefix = trimmed === "" ? "" : `${trimmed}/`
  const partSize = Math.max(5 * 1024 * 1024, options.partSizeBytes ?? 8 * 1024 * 1024)
  const queueSize = options.queueSize ?? 4

  const fail = (operation: string, key: string, cause: unknown) =>
    new ArtifactStore.ArtifactStoreError({ operation, key, message: describe(cause), cause })
  const send = <A>(operation: string, key: string, run: (signal: AbortSignal) => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (cause) => fail(operation, key, cause) })

  const objectKey = (key: string) => Effect.map(ArtifactStore.validateKey(key), (valid) => `${objectPrefix}${valid}`)
  const copySource = (key: string) =>
    `${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`

  // Object metadata is ASCII only: the source URL is percent-encoded.
  const toMetadata = (metadata: ArtifactStore.ArtifactMetadata): Record<string, string> => ({
    sha256: metadata.sha256,
    "stored-at": String(metadata.storedAt),
    bytes: String(metadata.bytes),
    ...(metadata.sourceUrl !== undefined ? { "source-url": encodeURIComponent(metadata.sourceUrl) } : {})
  })

  // Only NotFound means absent: any other failure (403, 5xx, timeout) is an error, never a gap.
  const headRaw = (
    operation: string,
    key: string,
    target: string
  ): Effect.Effect<Option.Option<HeadObjectCommandOutput>, ArtifactStore.ArtifactStoreError> =>
    send(operation, key, (abortSignal) =>
      client.send(new HeadObjectCommand({ Bucket: bucket, Key: target }), { abortSignal })
    ).pipe(
      Effect.map((head) => Option.some(head)),
      Effect.catchIf(
        (error) => isNotFound(error.cause),
        () => Effect.succeed(Option.none<HeadObjectCommandOutput>())
      )
    )

  // `None` when the object carries no reelkit metadata (sha256, stored-at).
  const toArtifactMetadata = (
    key: string,
    head: HeadObjectCommandOutput
  ): Option.Option<ArtifactStore.ArtifactMetadata> => {
    const metadata = head.Metadata ?? {}
    if (metadata.sha256 === undefined || metadata["stored-at"] === undefined) return Option.none()
    return Option.some(
      new ArtifactStore.ArtifactMetadata({
        key,
        bytes: head.ContentLength ?? Number(metadata.bytes),
        sha256: metadata.sha256,
        contentType: head.ContentType ?? "application/octet-stream",
        sourceUrl: metadata["source-url"] === undefined ? undefined : decodeURIComponent(metadata["source-url"]),
        storedAt: Number(metadata["stored-at"])
      })
    )
  }

  const headObject = (
    operation: string,
    key: string,
    target: string
  ): Effect.Effect<Option.Option<ArtifactStore.ArtifactMetadata>, ArtifactStore.ArtifactStoreError> =>
    Effect.flatMap(
      headRaw(operation, key, target),
      Option.match({
        onNone: () => Effect.succeed(Option.none<ArtifactStore.ArtifactMetadata>()),
        onSome: (found) =>
          Option.match(toArtifactMetadata(key, found), {
            onNone: () => Effect.fail(fail(operation, key, "the object has no reelkit metadata (sha256, stored-at)")),
            onSome: (metadata) => Effect.succeed(Option.some(metadata))
          })
      })
    )

  const put: ArtifactStore.Service["put"] = (key, body, putOptions) =>
    Effect.scoped(
      Effect.gen(function* () {
        const target = yield* objectKey(key)
        const temporary = `${objectPrefix}${uploadsFolder}/${randomBytes(12).toString("hex")}`
        const hash = createHash("sha256")
        let bytes = 0
        const limit = Math.min(putOptions.maxBytes ?? maxObjectBytes, maxObjectBytes)
        const tooLarge = new ArtifactStore.ArtifactTooLarge({ key, maxBytes: limit })
        const measured = Stream.mapChunksEffect(body, (chunk) => {
          for (const part of chunk) {
            bytes += part.byteLength
            if (bytes > limit) return Effect.fail(tooLarge)
            hash.update(part)
          }
          return Effect.succeed(chunk)
        })
        const bridged = yield* toReadable(measured)
        // Whatever happens, the temporary object does not outlive the put.
        yield* Effect.addFinalizer(() =>
          Effect.ignore(
            send("put", key, (abortSignal) =>
              client.send(new DeleteObjectCommand({ Bucket: bucket, Key: temporary }), { abortSignal })
            )
          )
        )
        const upload = new Upload({
          client,
          params: {
            Bucket: bucket,
            Key: temporary,
            Body: bridged.readable as Readable,
            ContentType: putOptions.contentType
          },
          partSize,
          queueSize,
          leavePartsOnError: false
        })
        const uploaded = yield* Effect.either(
          Effect.tryPromise({
            try: (signal) => {
              signal.addEventListener("abort", () => void upload.abort())
              return upload.done()
            },
            catch: (cause) => cause
          })
        )
        // The body's own failure (or ArtifactTooLarge) wins over the SDK's report of it.
        const bodyFailure = bridged.failure()
        if (Option.isSome(bodyFailure)) return yield* Effect.failCause(bodyFailure.value)
        if (Either.isLeft(uploaded)) return yield* fail("put", key, uploaded.left)
        const metadata = new ArtifactStore.ArtifactMetadata({
          key,
          bytes,
          sha256: hash.digest("hex"),
          contentType: putOptions.contentType,
          sourceUrl: putOptions.sourceUrl,
          storedAt: yield* Clock.currentTimeMillis
        })
        yield* send("put", key, (abortSignal) =>
          client.send(
            new CopyObjectCommand({
              Bucket: bucket,
              Key: target,
              CopySource: copySource(temporary),
              MetadataDirective: "REPLACE",
              ContentType: putOptions.contentType,
              Metadata: toMetadata(metadata)
            }),
            { abortSignal }
          )
        )
        return metadata
      })
    )

  const get: ArtifactStore.Service["get"] = (key) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const target = yield* objectKey(key)
        const controller = new AbortController()
        yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
        const response = yield* Effect.tryPromise({
          try: () =>
            client.send(new GetObjectCommand({ Bucket: bucket, Key: target }), { abortSignal: controller.signal }),
          catch: (cause) => (isNotFound(cause) ? new ArtifactStore.ArtifactNotFound({ key }) : fail("get", key, cause))
        })
        if (response.Body === undefined) return Stream.empty
        return Stream.fromAsyncIterable(response.Body as AsyncIterable<Uint8Array>, (cause) => fail("get", key, cause))
      })
    )

  const head: ArtifactStore.Service["head"] = (key) =>
    Effect.flatMap(objectKey(key), (target) => headObject("head", key, target))

  const list: ArtifactStore.Service["list"] = (prefix = "") =>
    Effect.gen(function* () {
      const keys: Array<string> = []
      let continuationToken: string | undefined
      do {
        const page = yield* send("list", prefix, (abortSignal) =>
          client.send(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: `${objectPrefix}${prefix}`,
              ...(continuationToken !== undefined ? { ContinuationToken: continuationToken } : {})
            }),
            { abortSignal }
          )
        )
        for (const object of page.Contents ?? []) {
          const key = object.Key?.slice(objectPrefix.length) ?? ""
          // Skips temporary uploads and objects whose names are not reelkit keys.
          if (Either.isRight(yield* Effect.either(ArtifactStore.validateKey(key)))) keys.push(key)
        }
        continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
      } while (continuationToken !== undefined)
      // Listings carry no user metadata: one HEAD per object, a few at a time. An object deleted
      // in between is left out, and so is one without reelkit metadata; any other HEAD failure
      // fails the listing rather than silently hiding an artifact.
      const found = yield* Effect.forEach(
        keys,
        (key) =>
          Effect.map(headRaw("list", key, `${objectPrefix}${key}`), (found) =>
            Option.flatMap(found, (head) => toArtifactMetadata(key, head))
          ),
        { concurrency: 8 }
      )
      return found
        .flatMap((metadata) => (Option.isSome(metadata) ? [metadata.value] : []))
        .sort((left, right) => (left.key < right.key ? -1 : left.key > right.key ? 1 : 0))
    })

  const remove: ArtifactStore.Service["delete"] = (key) =>
    Effect.flatMap(objectKey(key), (target) =>
      Effect.asVoid(
        send("delete", key, (abortSignal) =>
          client.send(new DeleteObjectCommand({ Bucket: bucket, Key: target }), { abortSignal })
        )
      )
    )

  return ArtifactStore.ArtifactStore.of({ put, get, head, list, delete: remove })
}

/** A store on an S3-compatible bucket; the client is closed with the layer. */
export const layer = (options: Options): Layer.Layer<ArtifactStore.ArtifactStore> =>
  Layer.scoped(
    ArtifactStore.ArtifactStore,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => makeClient(options)),
        (client) => Effect.sync(() => client.destroy())
      ),
      (client) => makeService(options, client)
    )
  )

/**
 * A store configured by `Config`: by default `REELKIT_S3_BUCKET`, `REELKIT_S3_PREFIX`,
 * `REELKIT_S3_ENDPOINT`, `REELKIT_S3_REGION`, `REELKIT_S3_FORCE_PATH_STYLE`, and credentials from
 * `REELKIT_S3_ACCESS_KEY_ID`/`REELKIT_S3_SECRET_ACCESS_KEY` (else the AWS SDK's own chain).
 */
export const layerConfig = (
  config: {
    readonly bucket?: Config.Config<string>
    readonly prefix?: Config.Config<string>
    readonly endpoint?: Config.Config<string>
    readonly region?: Config.Config<string>
    readonly forcePathStyle?: Config.Config<boolean>
    readonly accessKeyId?: Config.Config<string>
    readonly secretAccessKey?: Config.Config<Redacted.Redacted<string>>
  } = {}
): Layer.Layer<ArtifactStore.ArtifactStore, ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(
      Config.all({
        bucket: config.bucket ?? Config.string("REELKIT_S3_BUCKET"),
        prefix: Config.option(config.prefix ?? Config.string("REELKIT_S3_PREFIX")),
        endpoint: Config.option(config.endpoint ?? Config.string("REELKIT_S3_ENDPOINT")),
        region: Config.option(config.region ?? Config.string("REELKIT_S3_REGION")),
        forcePathStyle: Config.option(config.forcePathStyle ?? Config.boolean("REELKIT_S3_FORCE_PATH_STYLE")),
        accessKeyId: Config.option(config.accessKeyId ?? Config.string("REELKIT_S3_ACCESS_KEY_ID")),
        secretAccessKey: Config.option(config.secretAccessKey ?? Config.redacted("REELKIT_S3_SECRET_ACCESS_KEY"))
      }),
      (values) =>
        layer({
          bucket: values.bucket,
          prefix: Option.getOrUndefined(values.prefix),
          endpoint: Option.getOrUndefined(values.endpoint),
          region: Option.getOrUndefined(values.region),
          forcePathStyle: Option.getOrUndefined(values.forcePathStyle),
          credentials:
            Option.isSome(values.accessKeyId) && Option.isSome(values.secretAccessKey)
              ? { accessKeyId: values.accessKeyId.value, secretAccessKey: values.secretAccessKey.value }
              : undefined
        })
    )
  )
