// Runs in an empty npm project against the packed tarball: ESM import of the file-system store
// (a real put/get/head/list/delete in a temp dir) and of the S3 store's layer and key checks.
import * as FileSystemStore from "@reelkit/storage/FileSystemStore"
import * as S3Store from "@reelkit/storage/S3Store"
import { ArtifactStore } from "@reelkit/core"
import { Chunk, Effect, Redacted, Stream } from "effect"
import assert from "node:assert/strict"
import { mkdtempSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"

const root = mkdtempSync(join(tmpdir(), "reelkit-storage-smoke-"))
try {
  const program = Effect.gen(function* () {
    const store = yield* ArtifactStore.ArtifactStore
    const metadata = yield* store.put("smoke/hello.txt", Stream.make(new TextEncoder().encode("hello")), {
      contentType: "text/plain"
    })
    assert.equal(metadata.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    const content = yield* Stream.runCollect(store.get("smoke/hello.txt"))
    assert.equal(Buffer.concat(Chunk.toReadonlyArray(content)).toString(), "hello")
    assert.equal((yield* store.list("smoke/")).length, 1)
    yield* store.delete("smoke/hello.txt")
    assert.equal((yield* store.head("smoke/hello.txt"))._tag, "None")
  })
  await Effect.runPromise(program.pipe(Effect.provide(FileSystemStore.layer({ root }))))

  // No network needed: the key is refused before any request.
  const s3 = await Effect.runPromise(
    S3Store.make({
      bucket: "b",
      endpoint: "http://127.0.0.1:9",
      forcePathStyle: true,
      credentials: { accessKeyId: "a", secretAccessKey: Redacted.make("s") }
    })
  )
  const refused = await Effect.runPromise(Effect.either(s3.head("../escape")))
  assert.equal(refused.left._tag, "InvalidArtifactKey")

  // The ledger subpaths resolve (they need the optional @effect/sql peers to load).
  const require = createRequire(import.meta.url)
  assert.match(require.resolve("@reelkit/storage/SqliteLedger"), /SqliteLedger\.js$/)
  assert.match(require.resolve("@reelkit/storage/PgLedger"), /PgLedger\.js$/)
  // So do the account-budget subpaths (SQL peers, or ioredis for Redis).
  for (const name of ["SqliteAccountLimits", "PgAccountLimits", "RedisAccountLimits"]) {
    assert.match(require.resolve(`@reelkit/storage/${name}`), new RegExp(`${name}\\.js$`))
  }
  console.log("@reelkit/storage ESM ok")
} finally {
  rmSync(root, { recursive: true, force: true })
}
