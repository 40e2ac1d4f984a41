// S3Store against s3rver, an S3-compatible server from npm, on a loopback port of its own.
import * as EffectVitest from "@effect/vitest"
import { describe, expect, it } from "@effect/vitest"
import { HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from "@aws-sdk/client-s3"
import * as S3Store from "@reelkit/storage/S3Store"
import { ArtifactStoreContract } from "@reelkit/testing"
import { Effect, Either, Option, Redacted, Stream } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import S3rver from "s3rver"
import { Upload } from "@aws-sdk/lib-storage"
import { afterAll } from "vitest"

const directory = mkdtempSync(join(tmpdir(), "reelkit-s3rver-"))
const s3rver = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: "artifacts" }]
})
const { port } = await s3rver.run()
afterAll(async () => {
  await s3rver.close()
  rmSync(directory, { recursive: true, force: true })
})

const options: S3Store.Options = {
  bucket: "artifacts",
  prefix: "reelkit/outputs",
  endpoint: `http://127.0.0.1:${port}`,
  region: "us-east-1",
  forcePathStyle: true,
  // s3rver's fixed development credentials.
  credentials: { accessKeyId: "S3RVER", secretAccessKey: Redacted.make("S3RVER") },
  partSizeBytes: 5 * 1024 * 1024,
  queueSize: 2
}

// 12 MiB with 5 MiB parts: three parts, so the contract's large round trip is a multipart upload.
ArtifactStoreContract.suite("S3Store", S3Store.layer(options), EffectVitest, { largeBytes: 12 * 1024 * 1024 })

const raw = new S3Client({
  region: "us-east-1",
  endpoint: options.endpoint!,
  forcePathStyle: true,
  credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }
})

const allObjectKeys = () =>
  Effect.promise(() => raw.send(new ListObjectsV2Command({ Bucket: "artifacts" }))).pipe(
    Effect.map((page) => (page.Contents ?? []).map((object) => object.Key!).sort())
  )

// A client that records the name of every command it sends.
const recordingClient = () => {
  const commands: Array<string> = []
  const client = S3Store.makeClient(options)
  client.middlewareStack.add(
    (next, context) => (args) => {
      commands.push(String(context.commandName))
      return next(args)
    },
    { step: "initialize" }
  )
  return { client, commands }
}

describe("S3Store", () => {
  it.effect("uploads a body above the part size in parts, and a small one with one PutObject", () =>
    Effect.gen(function* () {
      const { client, commands } = recordingClient()
      const store = yield* S3Store.make(options, client)
      const content = ArtifactStoreContract.bytesOf(11 * 1024 * 1024, 3)
      const metadata = yield* store.put("parts/big.mp4", ArtifactStoreContract.chunked(content), {
        contentType: "video/mp4"
      })
      expect(metadata.bytes).toBe(content.length)
      expect(commands).toEqual([
        "CreateMultipartUploadCommand",
        "UploadPartCommand",
        "UploadPartCommand",
        "UploadPartCommand",
        "CompleteMultipartUploadCommand",
        "CopyObjectCommand",
        "DeleteObjectCommand"
      ])
      commands.length = 0
      yield* store.put("parts/small.mp4", Stream.make(new Uint8Array(1000)), { contentType: "video/mp4" })
      expect(commands).toEqual(["PutObjectCommand", "CopyObjectCommand", "DeleteObjectCommand"])
      client.destroy()
    })
  )

  it.effect("stores under the prefix with sha256, source URL and stored-at in the object metadata", () =>
    Effect.gen(function* () {
      const store = yield* S3Store.make(options)
      const metadata = yield* store.put("meta/video.mp4", Stream.make(new TextEncoder().encode("hello")), {
        contentType: "video/mp4",
        sourceUrl: "https://cdn.example/v.mp4?sig=a b&é"
      })
      const head = yield* Effect.promise(() =>
        raw.send(new HeadObjectCommand({ Bucket: "artifacts", Key: "reelkit/outputs/meta/video.mp4" }))
      )
      expect(head.ContentType).toBe("video/mp4")
      expect(head.ContentLength).toBe(5)
      expect(head.Metadata?.sha256).toBe("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
      expect(head.Metadata?.["stored-at"]).toBe(String(metadata.storedAt))
      expect(decodeURIComponent(head.Metadata?.["source-url"] ?? "")).toBe("https://cdn.example/v.mp4?sig=a b&é")
      expect(Option.getOrThrow(yield* store.head("meta/video.mp4")).sourceUrl).toBe(
        "https://cdn.example/v.mp4?sig=a b&é"
      )
    })
  )

  it.effect("leaves no object behind, temporary or final, when a multipart put is too large or fails", () =>
    Effect.gen(function* () {
      const store = yield* S3Store.make(options)
      const before = yield* allObjectKeys()
      const big = ArtifactStoreContract.chunked(ArtifactStoreContract.bytesOf(11 * 1024 * 1024))
      const tooLarge = yield* Effect.either(
        store.put("fail/big.mp4", big, { contentType: "video/mp4", maxBytes: 10 * 1024 * 1024 })
      )
      expect(Either.isLeft(tooLarge) && tooLarge.left._tag).toBe("ArtifactTooLarge")
      const failing = yield* Effect.either(
        store.put(
          "fail/broken.mp4",
          Stream.concat(
            ArtifactStoreContract.chunked(ArtifactStoreContract.bytesOf(6 * 1024 * 1024)),
            Stream.fail(new ArtifactStoreContract.BodyFailed({ reason: "reset" }))
          ),
          { contentType: "video/mp4" }
        )
      )
      expect(Either.isLeft(failing) && failing.left._tag).toBe("BodyFailed")
      expect(yield* allObjectKeys()).toEqual(before)
    })
  )

  it.effect("list skips objects in the prefix that reelkit did not write", () =>
    Effect.gen(function* () {
      const store = yield* S3Store.make({ ...options, prefix: "foreign" })
      yield* Effect.promise(() =>
        new Upload({ client: raw, params: { Bucket: "artifacts", Key: "foreign/x.mp4", Body: "x" } }).done()
      )
      yield* store.put("y.mp4", Stream.make(new Uint8Array(3)), { contentType: "video/mp4" })
      expect((yield* store.list()).map((item) => item.key)).toEqual(["y.mp4"])
      const head = yield* Effect.either(store.head("x.mp4"))
      expect(Either.isLeft(head) && head.left._tag).toBe("ArtifactStoreError")
    })
  )
  it.effect("list fails when a HEAD fails with anything but NotFound, instead of leaving the object out", () =>
    Effect.gen(function* () {
      const client = S3Store.makeClient(options)
      // The server's answer to the HEAD of one object, as a bucket policy, an outage or a delete
      // racing the listing would produce it.
      let refusal: S3ServiceException | undefined
      client.middlewareStack.add(
        (next, context) => (args) => {
          const input = args.input as { Key?: string }
          if (context.commandName === "HeadObjectCommand" && input.Key === "denied/b.mp4" && refusal !== undefined) {
            throw refusal
          }
          return next(args)
        },
        { step: "initialize" }
      )
      const store = yield* S3Store.make({ ...options, prefix: "denied" }, client)
      yield* store.put("a.mp4", Stream.make(new Uint8Array(3)), { contentType: "video/mp4" })
      yield* store.put("b.mp4", Stream.make(new Uint8Array(3)), { contentType: "video/mp4" })
      expect((yield* store.list()).map((item) => item.key)).toEqual(["a.mp4", "b.mp4"])
      refusal = new S3ServiceException({
        name: "AccessDenied",
        $fault: "client",
        $metadata: { httpStatusCode: 403 },
        message: "Access Denied"
      })
      const listed = yield* Effect.either(store.list())
      expect(Either.isLeft(listed) && listed.left._tag).toBe("ArtifactStoreError")
      expect(Either.isLeft(listed) && listed.left.key).toBe("b.mp4")
      expect(Either.isLeft(listed) && listed.left.message).toContain("AccessDenied")
      // NotFound still means absent: an object deleted between the listing and its HEAD is left out.
      refusal = new S3ServiceException({
        name: "NotFound",
        $fault: "client",
        $metadata: { httpStatusCode: 404 },
        message: "Not Found"
      })
      expect((yield* store.list()).map((item) => item.key)).toEqual(["a.mp4"])
      client.destroy()
    })
  )
})
