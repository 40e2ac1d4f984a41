// Runs in an empty npm project against the packed tarball: CommonJS require of the stores.
const FileSystemStore = require("@reelkit/storage/FileSystemStore")
const S3Store = require("@reelkit/storage/S3Store")
const { Chunk, Effect, Stream } = require("effect")
const assert = require("node:assert/strict")
const { mkdtempSync, rmSync } = require("node:fs")
const { tmpdir } = require("node:os")
const { join } = require("node:path")

const root = mkdtempSync(join(tmpdir(), "reelkit-storage-smoke-"))
Effect.runPromise(
  Effect.gen(function* () {
    const store = yield* FileSystemStore.make({ root })
    yield* store.put("a/b.bin", Stream.make(new Uint8Array([1, 2, 3])), { contentType: "application/octet-stream" })
    const content = yield* Stream.runCollect(store.get("a/b.bin"))
    assert.deepEqual([...Buffer.concat(Chunk.toReadonlyArray(content))], [1, 2, 3])
    const tooLarge = yield* Effect.either(
      store.put("a/c.bin", Stream.make(new Uint8Array(10)), { contentType: "x/y", maxBytes: 5 })
    )
    assert.equal(tooLarge.left._tag, "ArtifactTooLarge")
    assert.equal(typeof S3Store.layer, "function")
    assert.equal(S3Store.maxObjectBytes, 5 * 1024 * 1024 * 1024)
    // The account-budget subpaths resolve to their CommonJS builds (loading needs the optional peers).
    for (const name of ["SqliteAccountLimits", "PgAccountLimits", "RedisAccountLimits"]) {
      assert.match(require.resolve(`@reelkit/storage/${name}`), new RegExp(`cjs/${name}\\.js$`))
    }
  })
)
  .then(() => console.log("@reelkit/storage CJS ok"))
  .finally(() => rmSync(root, { recursive: true, force: true }))
