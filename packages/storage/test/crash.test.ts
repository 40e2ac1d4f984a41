// Crash tests with real processes: a child process starts a Vidu Q3 task through the fake apixo
// (behind a proxy that stops relaying at a chosen point) with the SQLite ledger and the
// file-system store; it is SIGKILLed there; a second process runs `reconcile`; then this process
// reads the ledger, the store and the fake's records.
import { describe, expect, it } from "@effect/vitest"
import { TaskLedger } from "@reelkit/core"
import * as FileSystemStore from "@reelkit/storage/FileSystemStore"
import * as SqliteLedger from "@reelkit/storage/SqliteLedger"
import { FakeApixo } from "@reelkit/testing"
import { Chunk, Duration, Effect, Layer, Option, Stream } from "effect"
import { createHash } from "node:crypto"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type HoldPoint, lines, spawnFixture, startHoldingProxy } from "./utils.js"

// A 4 MiB "video", so a download can be cut mid-body.
const video = new Uint8Array(4 * 1024 * 1024).map((_, index) => (index * 7919) % 251)
const videoSha256 = createHash("sha256").update(video).digest("hex")

interface Outcome {
  readonly record: TaskLedger.TaskRecord
  readonly summary: {
    readonly claimed: number
    readonly completed: ReadonlyArray<string>
    readonly ambiguous: ReadonlyArray<string>
    readonly failed: ReadonlyArray<string>
  }
  readonly fake: FakeApixo.Service
  readonly stored: ReadonlyArray<{ readonly key: string; readonly sha256: string; readonly bytes: number }>
  readonly content: Buffer | undefined
  readonly leftoversBeforeReconcile: ReadonlyArray<string>
  readonly filesAfterReconcile: ReadonlyArray<string>
}

const filesUnder = (directory: string): Array<string> => {
  try {
    return readdirSync(directory, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name).slice(directory.length + 1))
  } catch {
    return []
  }
}

/** The row of the order every scenario starts, read from the ledger file. */
const readOrder = (filename: string) =>
  Effect.flatMap(TaskLedger.TaskLedger, (ledger) => ledger.findByIdempotencyKey("crash-order-1")).pipe(
    Effect.provide(Layer.fresh(SqliteLedger.layer({ filename })))
  )

/**
 * Resolves once the lease of the row `crash-order-1` (if any) has run out. A dead process's lease
 * is free only when it expires, so `reconcile` is started after that instant, never racing it.
 */
const leaseExpired = async (filename: string): Promise<void> => {
  const row = await Effect.runPromise(readOrder(filename))
  const expiresAt = Option.isSome(row) ? (row.value.leaseExpiresAt ?? 0) : 0
  if (expiresAt >= Date.now()) await new Promise((resolve) => setTimeout(resolve, expiresAt - Date.now() + 1))
}

/** Runs the whole scenario with the kill at `hold`. */
const crashAt = (hold: HoldPoint) =>
  Effect.promise(async (): Promise<Outcome> => {
    const dir = mkdtempSync(join(tmpdir(), "reelkit-crash-"))
    const filename = join(dir, "ledger.sqlite")
    const root = join(dir, "artifacts")
    const fake = await FakeApixo.start({
      video,
      timings: { processingAfter: Duration.millis(100), completeAfter: Duration.millis(600) }
    })
    const proxy = await startHoldingProxy(fake.url, hold)
    try {
      const first = spawnFixture("crashClient", ["start", filename, root, proxy.url, FakeApixo.defaultApiKey])
      const firstOutput = lines(first)
      // The proxy's signal says what it relayed, not what the child has done with it: mid-body,
      // the child may not even have read the headers yet, let alone opened its temporary file. So
      // a download is cut only once the child itself says its put is under way.
      const reached =
        hold === "download-body"
          ? Promise.all([proxy.held, firstOutput.waitFor((text) => text.startsWith("put-progress "))])
          : proxy.held
      await Promise.race([
        reached,
        firstOutput.exited.then((code) => {
          throw new Error(`the first process exited (${code}) before the hold point: ${firstOutput.stderr()}`)
        })
      ])
      const leftoversBeforeReconcile = filesUnder(root)
      first.kill("SIGKILL")
      await firstOutput.exited
      proxy.release()
      await leaseExpired(filename)

      const second = spawnFixture("crashClient", ["reconcile", filename, root, proxy.url, FakeApixo.defaultApiKey])
      const secondOutput = lines(second)
      const line = await secondOutput.waitFor((text) => text.startsWith("{"))
      expect(await secondOutput.exited).toBe(0)

      // This process reads what the two children left, through the same adapters.
      const read = Effect.gen(function* () {
        const ledger = yield* TaskLedger.TaskLedger
        const store = yield* FileSystemStore.make({ root })
        const record = Option.getOrThrow(yield* ledger.findByIdempotencyKey("crash-order-1"))
        const stored = yield* store.list()
        const content =
          stored.length === 1
            ? Buffer.concat(Chunk.toReadonlyArray(yield* Stream.runCollect(store.get(stored[0]!.key))))
            : undefined
        return { record, stored, content }
      }).pipe(Effect.provide(Layer.fresh(SqliteLedger.layer({ filename }))))
      const { record, stored, content } = await Effect.runPromise(read)
      const filesAfterReconcile = filesUnder(root)
      return { record, summary: JSON.parse(line), fake, stored, content, leftoversBeforeReconcile, filesAfterReconcile }
    } finally {
      await proxy.close()
      await fake.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

const generateRequests = (fake: FakeApixo.Service) => fake.requests.filter((request) => request.route === "generate")

// Each scenario starts two or three tsx child processes; on a busy 2-core machine that alone can take
// tens of seconds, so the per-test timeouts are only a guard against hangs, never a crash point.
describe("crash and reconcile (SQLite ledger, file-system store, real processes, SIGKILL)", () => {
  it.live(
    "killed right after the submit was recorded, while waiting: reconcile finishes it, one paid submit",
    () =>
      Effect.gen(function* () {
        const outcome = yield* crashAt("status-request")
        expect(outcome.summary.claimed).toBe(1)
        expect(outcome.summary.completed).toEqual(["crash-task"])
        expect(outcome.record.state).toBe("completed")
        expect(outcome.record.remoteTaskId).toBe(outcome.fake.tasks[0]!.taskId)
        expect(outcome.fake.tasks.length).toBe(1)
        expect(outcome.fake.bills.length).toBe(1)
        expect(generateRequests(outcome.fake).length).toBe(1)
        expect(outcome.record.artifacts.length).toBe(1)
        expect(outcome.record.artifacts[0]!.sha256).toBe(videoSha256)
        expect(outcome.stored.map((item) => item.sha256)).toEqual([videoSha256])
        expect(outcome.content?.equals(video)).toBe(true)
      }),
    120_000
  )

  it.live(
    "killed mid-download: reconcile downloads again and stores the whole video once, one paid submit",
    () =>
      Effect.gen(function* () {
        const outcome = yield* crashAt("download-body")
        // The first process was writing the video when it died: a temporary file, no artifact yet.
        expect(outcome.leftoversBeforeReconcile.some((name) => name.includes("~tmp-"))).toBe(true)
        expect(outcome.leftoversBeforeReconcile.some((name) => name.endsWith("~meta.json"))).toBe(false)
        expect(outcome.summary.completed).toEqual(["crash-task"])
        expect(outcome.record.state).toBe("completed")
        expect(outcome.fake.tasks.length).toBe(1)
        expect(outcome.fake.bills.length).toBe(1)
        expect(generateRequests(outcome.fake).length).toBe(1)
        expect(outcome.fake.requests.filter((request) => request.route === "download").length).toBe(2)
        expect(outcome.stored.length).toBe(1)
        expect(outcome.stored[0]!.bytes).toBe(video.length)
        expect(outcome.stored[0]!.sha256).toBe(videoSha256)
        expect(outcome.content?.equals(video)).toBe(true)
        // The dead writer's temporary file was removed when the reconciling process opened the store.
        expect(outcome.filesAfterReconcile.filter((name) => name.includes("~tmp-"))).toEqual([])
      }),
    120_000
  )

  it.live(
    "killed before the submit reached the server: the task is ambiguous, nothing was paid, nothing is re-sent",
    () =>
      Effect.gen(function* () {
        const outcome = yield* crashAt("generate-request")
        expect(outcome.summary.ambiguous).toEqual(["crash-task"])
        expect(outcome.record.state).toBe("ambiguous")
        expect(outcome.record.failCode).toBe("SubmitOutcomeUnknown")
        expect(generateRequests(outcome.fake).length).toBe(0)
        expect(outcome.fake.tasks.length).toBe(0)
        expect(outcome.stored).toEqual([])
      }),
    120_000
  )

  it.live(
    "killed after the server created the task but before its answer arrived: ambiguous, one paid task, never re-sent",
    () =>
      Effect.gen(function* () {
        const outcome = yield* crashAt("generate-response")
        expect(outcome.summary.ambiguous).toEqual(["crash-task"])
        expect(outcome.record.state).toBe("ambiguous")
        expect(outcome.record.remoteTaskId).toBeUndefined()
        expect(generateRequests(outcome.fake).length).toBe(1)
        expect(outcome.fake.tasks.length).toBe(1)
        expect(outcome.stored).toEqual([])
      }),
    120_000
  )

  it.effect(
    "killed while its submit was still queued for a task slot: reconcile sends it once and stores the video",
    () =>
      Effect.promise(async () => {
        const dir = mkdtempSync(join(tmpdir(), "reelkit-crash-"))
        const filename = join(dir, "ledger.sqlite")
        const root = join(dir, "artifacts")
        const fake = await FakeApixo.start({
          video,
          timings: { processingAfter: Duration.millis(100), completeAfter: Duration.millis(600) }
        })
        const readRow = readOrder(filename)
        try {
          const first = spawnFixture("crashClient", ["start-queued", filename, root, fake.url, FakeApixo.defaultApiKey])
          const firstOutput = lines(first)
          // Kill it once it says the row is written; with every task slot taken it cannot have sent.
          await firstOutput.waitFor((text) => text === "ledger-created crash-task")
          first.kill("SIGKILL")
          await firstOutput.exited
          expect(generateRequests(fake)).toHaveLength(0)
          expect(Option.map(await Effect.runPromise(readRow), (row) => row.state)).toEqual(Option.some("queued"))
          await leaseExpired(filename)

          const second = spawnFixture("crashClient", ["reconcile", filename, root, fake.url, FakeApixo.defaultApiKey])
          const secondOutput = lines(second)
          const summary = JSON.parse(await secondOutput.waitFor((text) => text.startsWith("{")))
          expect(await secondOutput.exited).toBe(0)
          expect(summary.completed).toEqual(["crash-task"])
          const record = Option.getOrThrow(await Effect.runPromise(readRow))
          expect(record.state).toBe("completed")
          expect(record.artifacts.map((artifact) => artifact.sha256)).toEqual([videoSha256])
          expect(generateRequests(fake)).toHaveLength(1)
          expect(fake.bills).toHaveLength(1)
        } finally {
          await fake.close()
          rmSync(dir, { recursive: true, force: true })
        }
      }),
    { timeout: 120_000 }
  )
})
