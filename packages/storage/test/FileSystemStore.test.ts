import * as EffectVitest from "@effect/vitest"
import { describe, expect, it } from "@effect/vitest"
import { ArtifactStore } from "@reelkit/core"
import * as FileSystemStore from "@reelkit/storage/FileSystemStore"
import { ArtifactStoreContract } from "@reelkit/testing"
import { Duration, Effect, Either, Fiber, Option, Stream, TestClock } from "effect"
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import * as DirectorySync from "../src/internal/directorySync.js"
import * as WriterIdentity from "../src/internal/writerIdentity.js"
import { type HeldBodyServer, lines, spawnFixture, startHeldBodyServer } from "./utils.js"

const root = mkdtempSync(join(tmpdir(), "reelkit-fs-store-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

ArtifactStoreContract.suite("FileSystemStore", FileSystemStore.layer({ root: join(root, "contract") }), EffectVitest)

// Every file under a directory, relative, sorted.
const filesUnder = (directory: string): Array<string> =>
  readdirSync(directory, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(directory.length + 1))
    .sort()

describe("FileSystemStore", () => {
  it.effect("keeps the content at the key's path and its metadata in a JSON sidecar beside it", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "layout-"))
      const store = yield* FileSystemStore.make({ root: dir })
      const metadata = yield* store.put("jobs/42/video.mp4", Stream.make(new TextEncoder().encode("hello")), {
        contentType: "video/mp4",
        sourceUrl: "https://cdn.example/v.mp4"
      })
      expect(filesUnder(dir)).toEqual(["jobs/42/video.mp4", "jobs/42/video.mp4~meta.json"])
      expect(readFileSync(join(dir, "jobs/42/video.mp4"), "utf8")).toBe("hello")
      const sidecar = JSON.parse(readFileSync(join(dir, "jobs/42/video.mp4~meta.json"), "utf8"))
      expect(sidecar).toEqual({
        key: "jobs/42/video.mp4",
        bytes: 5,
        sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        contentType: "video/mp4",
        sourceUrl: "https://cdn.example/v.mp4",
        storedAt: metadata.storedAt,
        // The content file's identity, which a rename keeps.
        file: {
          inode: String(statSync(join(dir, "jobs/42/video.mp4"), { bigint: true }).ino),
          mtimeNs: String(statSync(join(dir, "jobs/42/video.mp4"), { bigint: true }).mtimeNs)
        }
      })
    })
  )

  it.effect("leaves no file behind when a put fails or is too large", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "leftovers-"))
      const store = yield* FileSystemStore.make({ root: dir })
      const body = Stream.concat(
        Stream.make(new Uint8Array(1000)),
        Stream.fail(new ArtifactStoreContract.BodyFailed({ reason: "reset" }))
      )
      expect(Either.isLeft(yield* Effect.either(store.put("a/b.mp4", body, { contentType: "video/mp4" })))).toBe(true)
      const tooLarge = yield* Effect.either(
        store.put("a/c.mp4", Stream.make(new Uint8Array(600), new Uint8Array(600)), {
          contentType: "video/mp4",
          maxBytes: 1000
        })
      )
      expect(Either.isLeft(tooLarge) && tooLarge.left._tag).toBe("ArtifactTooLarge")
      expect(filesUnder(dir)).toEqual([])
    })
  )

  it.effect("leaves no file behind when the put is interrupted mid-stream", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "interrupted-"))
      const store = yield* FileSystemStore.make({ root: dir })
      const body = Stream.concat(Stream.make(new Uint8Array(1000)), Stream.never)
      const fiber = yield* Effect.fork(store.put("a/b.mp4", body, { contentType: "video/mp4" }))
      // Let the put open its temporary file and write the first chunk.
      while (filesUnder(dir).length === 0) yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      // The temporary file's name carries its writer: this process.
      expect(filesUnder(dir)[0]).toMatch(
        new RegExp(`^a/\\.b\\.mp4~tmp-[0-9a-f]{8}\\.(?:[0-9a-f]{8}|x)\\.${process.pid}\\.(?:[0-9]+|x)-[0-9a-f]{12}$`)
      )
      yield* Fiber.interrupt(fiber)
      expect(filesUnder(dir)).toEqual([])
    })
  )

  it.effect("ignores content without a sidecar and refuses content whose size disagrees with it", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "torn-"))
      const store = yield* FileSystemStore.make({ root: dir })
      // A crash between the content rename and the sidecar rename of a first put.
      writeFileSync(join(dir, "orphan.mp4"), "partial")
      expect(Option.isNone(yield* store.head("orphan.mp4"))).toBe(true)
      expect(yield* store.list()).toEqual([])
      // A crash between the two renames of an overwrite: new content, old sidecar.
      yield* store.put("torn.mp4", Stream.make(new Uint8Array(10)), { contentType: "video/mp4" })
      writeFileSync(join(dir, "torn.mp4"), "a different length")
      const read = yield* Effect.either(Stream.runDrain(store.get("torn.mp4")))
      expect(Either.isLeft(read) && read.left._tag).toBe("ArtifactStoreError")
    })
  )

  it.effect("streams a file out in chunks of the configured size", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "chunks-"))
      const store = yield* FileSystemStore.make({ root: dir, readChunkBytes: 64 * 1024 })
      yield* store.put("big.bin", ArtifactStoreContract.chunked(ArtifactStoreContract.bytesOf(1_000_000)), {
        contentType: "application/octet-stream"
      })
      const sizes: Array<number> = []
      yield* Stream.runForEach(store.get("big.bin"), (chunk) => Effect.sync(() => sizes.push(chunk.length)))
      expect(sizes.length).toBe(Math.ceil(1_000_000 / 65_536))
      expect(Math.max(...sizes)).toBe(65_536)
    })
  )

  it.effect("a put into a path whose parent is a file fails as a store error", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "clash-"))
      const store = yield* FileSystemStore.make({ root: dir })
      yield* store.put("a", Stream.make(new Uint8Array(1)), { contentType: "x/y" })
      const clash = yield* Effect.either(store.put("a/b", Stream.make(new Uint8Array(1)), { contentType: "x/y" }))
      expect(Either.isLeft(clash) && clash.left._tag).toBe("ArtifactStoreError")
      expect(Option.isSome(yield* store.head("a"))).toBe(true)
      expect(Option.isNone(yield* store.head("a/b"))).toBe(true)
      yield* store.delete("a/b")
    })
  )

  it.effect("rejects keys before touching the disk", () =>
    Effect.gen(function* () {
      const store = yield* FileSystemStore.make({ root: join(root, "keys") })
      const result = yield* Effect.either(store.head("../x"))
      expect(Either.isLeft(result) && result.left).toBeInstanceOf(ArtifactStore.InvalidArtifactKey)
    })
  )
  it.effect("fsyncs every directory from the put's directory up to the root, and a root it created", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "durable-"))
      const synced: Array<string> = []
      const recording = (directory: string) => {
        synced.push(directory.slice(dir.length) || "/")
        return DirectorySync.fsyncDirectory(directory)
      }
      yield* Effect.gen(function* () {
        const store = yield* FileSystemStore.make({ root: join(dir, "new/store") })
        // The root's own new directories and the existing one holding them.
        expect(synced).toEqual(["/new/store", "/new", "/"])
        synced.length = 0
        yield* store.put("vidu/q3/task-1/0.mp4", Stream.make(new Uint8Array(3)), { contentType: "video/mp4" })
        expect(synced).toEqual(["/new/store/vidu/q3/task-1", "/new/store/vidu/q3", "/new/store/vidu", "/new/store"])
        synced.length = 0
        const unsynced = yield* FileSystemStore.make({ root: join(dir, "new/store"), fsync: false })
        yield* unsynced.put("vidu/q3/task-2/0.mp4", Stream.make(new Uint8Array(3)), { contentType: "video/mp4" })
        expect(synced).toEqual([])
      }).pipe(Effect.locally(DirectorySync.currentSyncDirectory, recording))
    })
  )
  it.effect("removes temporary files older than the sweep age when made, and nothing else", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "sweep-"))
      const now = 2_000_000_000_000
      yield* TestClock.setTime(now)
      const seeded = yield* FileSystemStore.make({ root: dir })
      yield* seeded.put("p/m/t1/0.mp4", Stream.make(new Uint8Array(3)), { contentType: "video/mp4" })
      // What a process killed mid-put leaves: content and sidecar temporaries, old and recent.
      const files = {
        "p/m/t1/.0.mp4~tmp-0a1b2c3d4e5f": 2 * 3600,
        "p/m/t1/.0.mp4~tmp-0a1b2c3d4e5f~meta.json": 2 * 3600,
        "p/m/t2/.1.mp4~tmp-aaaaaaaaaaaa": 61 * 60,
        "p/m/t2/.1.mp4~tmp-bbbbbbbbbbbb": 59 * 60,
        "p/m/t2/.hidden": 2 * 3600
      }
      mkdirSync(join(dir, "p/m/t2"))
      for (const [file, ageSeconds] of Object.entries(files)) {
        writeFileSync(join(dir, file), "partial")
        utimesSync(join(dir, file), now / 1000 - ageSeconds, now / 1000 - ageSeconds)
      }
      // Committed files as old as the oldest temporary stay.
      for (const file of ["p/m/t1/0.mp4", "p/m/t1/0.mp4~meta.json"]) {
        utimesSync(join(dir, file), now / 1000 - 3 * 3600, now / 1000 - 3 * 3600)
      }
      yield* FileSystemStore.make({ root: dir, sweepTemporaryOlderThan: Duration.infinity })
      expect(filesUnder(dir).length).toBe(7)
      yield* FileSystemStore.make({ root: dir })
      expect(filesUnder(dir)).toEqual([
        "p/m/t1/0.mp4",
        "p/m/t1/0.mp4~meta.json",
        "p/m/t2/.1.mp4~tmp-bbbbbbbbbbbb",
        "p/m/t2/.hidden"
      ])
      yield* FileSystemStore.make({ root: dir, sweepTemporaryOlderThan: "30 minutes" })
      expect(filesUnder(dir)).toEqual(["p/m/t1/0.mp4", "p/m/t1/0.mp4~meta.json", "p/m/t2/.hidden"])
      expect(Option.isSome(yield* seeded.head("p/m/t1/0.mp4"))).toBe(true)
    })
  )
  it.effect("serves content only with its own sidecar, even when another put's has the same size", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "pairing-"))
      const store = yield* FileSystemStore.make({ root: dir })
      const first = new Uint8Array(10).fill(1)
      yield* store.put("same.mp4", Stream.make(first), { contentType: "video/mp4" })
      // A crash between the two renames of a same-size overwrite (or a racing put's rename):
      // the content file is another put's, the sidecar still the first's.
      const replace = (bytes: Uint8Array) => {
        writeFileSync(join(dir, ".same.mp4~tmp-0123456789ab"), bytes)
        renameSync(join(dir, ".same.mp4~tmp-0123456789ab"), join(dir, "same.mp4"))
      }
      replace(new Uint8Array(10).fill(2))
      const read = yield* Effect.either(Stream.runCollect(store.get("same.mp4")))
      expect(Either.isLeft(read) && read.left._tag).toBe("ArtifactStoreError")
      expect(Either.isLeft(read) && read.left.message).toContain("hashes to")
      // The same bytes in another file (a copy restored from a backup) are still served.
      replace(first)
      const bytes = yield* Stream.runCollect(store.get("same.mp4"))
      expect(Array.from(bytes).flatMap((chunk) => Array.from(chunk))).toEqual(Array.from(first))
    })
  )
})

describe("FileSystemStore: temporary files of dead and live writers", () => {
  it.effect("removes a dead writer's temporary files whatever their age, keeps a live one's, ages the rest", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(root, "writers-"))
      const now = 2_000_000_000_000
      yield* TestClock.setTime(now)
      const self = yield* Effect.promise(WriterIdentity.current)
      // A PID that ran on this machine and has exited (its child was reaped by spawnSync).
      const exited = spawnSync(process.execPath, ["-e", ""]).pid
      const as = (changes: Partial<WriterIdentity.WriterIdentity>) => WriterIdentity.format({ ...self, ...changes })
      const otherHost = self.host === "00000000" ? "11111111" : "00000000"
      const otherBoot = self.boot === "22222222" ? "33333333" : "22222222"
      const files = {
        // This very process, mid-put: kept, even past the age rule.
        [`p/.0.mp4~tmp-${as({})}-aaaaaaaaaaaa`]: 2 * 3600,
        // A process of this host and boot that no longer runs: removed, though only a second old.
        [`p/.1.mp4~tmp-${as({ pid: exited, start: "1" })}-bbbbbbbbbbbb`]: 1,
        [`p/.1.mp4~tmp-${as({ pid: exited, start: "1" })}-bbbbbbbbbbbb~meta.json`]: 1,
        // This PID, but another process than the one running under it now (the PID was reused).
        [`p/.2.mp4~tmp-${as({ start: "1" })}-cccccccccccc`]: 1,
        // This host, an earlier boot: every writer of that boot is dead.
        [`p/.3.mp4~tmp-${as({ boot: otherBoot })}-dddddddddddd`]: 1,
        // Another host (or PID namespace): cannot be judged, so the age rule decides.
        [`p/.4.mp4~tmp-${as({ host: otherHost, pid: exited })}-eeeeeeeeeeee`]: 59 * 60,
        [`p/.5.mp4~tmp-${as({ host: otherHost, pid: exited })}-ffffffffffff`]: 61 * 60
      }
      mkdirSync(join(dir, "p"))
      for (const [file, ageSeconds] of Object.entries(files)) {
        writeFileSync(join(dir, file), "partial")
        utimesSync(join(dir, file), now / 1000 - ageSeconds, now / 1000 - ageSeconds)
      }
      yield* FileSystemStore.make({ root: dir })
      expect(filesUnder(dir)).toEqual([
        `p/.0.mp4~tmp-${as({})}-aaaaaaaaaaaa`,
        `p/.4.mp4~tmp-${as({ host: otherHost, pid: exited })}-eeeeeeeeeeee`
      ])
      // With the age rule off, names that cannot be judged stay, and the live writer's too.
      writeFileSync(join(dir, "p/.6.mp4~tmp-0a1b2c3d4e5f"), "partial")
      utimesSync(join(dir, "p/.6.mp4~tmp-0a1b2c3d4e5f"), now / 1000 - 10 * 3600, now / 1000 - 10 * 3600)
      yield* FileSystemStore.make({ root: dir, sweepTemporaryOlderThan: Duration.infinity })
      expect(filesUnder(dir)).toHaveLength(3)
    })
  )

  const megabyte = 1024 * 1024
  // A child process downloading a 24 MiB body whose server stops after 20 MiB, into a new store
  // directory; `run` starts once the child says 16 MiB are in its put. The store writes from a ring
  // of three 4 MiB buffers, so copying past 12 MiB waited for the first 4 MiB to be on disk.
  const withWriterMidDownload = (
    prefix: string,
    run: (writer: {
      readonly dir: string
      readonly server: HeldBodyServer
      readonly child: ReturnType<typeof spawnFixture>
      readonly output: ReturnType<typeof lines>
    }) => Promise<void>
  ) =>
    Effect.promise(async () => {
      const dir = mkdtempSync(join(root, prefix))
      const server = await startHeldBodyServer(24 * megabyte, 20 * megabyte)
      const child = spawnFixture("downloadWriter", [dir, server.url, "p/m/t/0.mp4", String(16 * megabyte)])
      try {
        const output = lines(child)
        await output.waitFor((line) => line.startsWith("put-progress p/m/t/0.mp4 "))
        await run({ dir, server, child, output })
      } finally {
        // A failed assertion must not leave the held writer running.
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        await server.close()
      }
    })

  it.live(
    "a writer SIGKILLed mid-download leaves a temporary file that the next store made on the root removes at once",
    () =>
      withWriterMidDownload("killed-", async (writer) => {
        const { dir } = writer
        const [temporary, ...others] = filesUnder(dir)
        expect(others).toEqual([])
        expect(temporary).toMatch(
          new RegExp(`^p/m/t/\\.0\\.mp4~tmp-[0-9a-f.x]+\\.${writer.child.pid}\\.[0-9x]+-[0-9a-f]{12}$`)
        )
        expect(statSync(join(dir, temporary!)).size).toBeGreaterThanOrEqual(4 * megabyte)
        writer.child.kill("SIGKILL")
        expect(await writer.output.exited).toBe(null)
        // Seconds old, far below the 1 hour age rule: removed because its writer is dead.
        await Effect.runPromise(FileSystemStore.make({ root: dir }))
        expect(filesUnder(dir)).toEqual([])
      }),
    60_000
  )

  it.live(
    "a live writer's temporary file survives another store made on the root, and its put then commits",
    () =>
      withWriterMidDownload("live-", async (writer) => {
        const { dir, server } = writer
        const before = filesUnder(dir)
        expect(before).toHaveLength(1)
        expect(before[0]).toContain(`.${writer.child.pid}.`)
        await Effect.runPromise(FileSystemStore.make({ root: dir }))
        expect(filesUnder(dir)).toEqual(before)
        server.release()
        const stored = await writer.output.waitFor((line) => line.startsWith("stored "))
        expect(await writer.output.exited).toBe(0)
        const sha256 = createHash("sha256").update(server.body).digest("hex")
        expect(stored).toBe(`stored ${sha256} ${24 * megabyte}`)
        expect(filesUnder(dir)).toEqual(["p/m/t/0.mp4", "p/m/t/0.mp4~meta.json"])
      }),
    60_000
  )
})
