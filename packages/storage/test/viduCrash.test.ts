// A crash with a real process on the official Vidu transport: a child starts a Vidu Q3 task on
// FakeVidu with the SQLite ledger and the file-system store, says `submitted <id>` and is
// SIGKILLed while it waits; a second process runs `reconcile`; this process then reads the ledger,
// the store and the fake's records. The same promise as on apixo (crash.test.ts): one paid submit,
// and the video stored once.
import { describe, expect, it } from "@effect/vitest"
import { TaskLedger } from "@reelkit/core"
import * as FileSystemStore from "@reelkit/storage/FileSystemStore"
import * as SqliteLedger from "@reelkit/storage/SqliteLedger"
import { FakeVidu } from "@reelkit/testing"
import { Duration, Effect, Layer, Option } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { lines, spawnFixture } from "./utils.js"

/** Resolves once the lease of the row (if any) has run out: a dead process's lease frees only when it expires. */
const leaseExpired = async (filename: string, taskKey: string): Promise<void> => {
  const row = await Effect.runPromise(
    Effect.flatMap(TaskLedger.TaskLedger, (ledger) => ledger.get(taskKey)).pipe(
      Effect.provide(Layer.fresh(SqliteLedger.layer({ filename })))
    )
  )
  const expiresAt = Option.isSome(row) ? (row.value.leaseExpiresAt ?? 0) : 0
  if (expiresAt >= Date.now()) await new Promise((resolve) => setTimeout(resolve, expiresAt - Date.now() + 1))
}

describe("crash and reconcile on the official Vidu transport (SQLite, real processes, SIGKILL)", () => {
  it.live(
    "killed while waiting after Vidu accepted the submit: reconcile finishes it, one paid submit, stored once",
    () =>
      Effect.promise(async () => {
        const dir = mkdtempSync(join(tmpdir(), "reelkit-vidu-crash-"))
        const filename = join(dir, "ledger.sqlite")
        const root = join(dir, "artifacts")
        const fake = await FakeVidu.start({
          timings: { processingAfter: Duration.millis(100), completeAfter: Duration.seconds(2) }
        })
        try {
          const first = spawnFixture("viduCrashClient", ["start", filename, root, fake.url, FakeVidu.defaultApiKey])
          const firstOutput = lines(first)
          const submitted = await firstOutput.waitFor((line) => line.startsWith("submitted "))
          first.kill("SIGKILL")
          await firstOutput.exited
          await leaseExpired(filename, "vidu-crash-task")

          const second = spawnFixture("viduCrashClient", [
            "reconcile",
            filename,
            root,
            fake.url,
            FakeVidu.defaultApiKey
          ])
          const secondOutput = lines(second)
          const summary = JSON.parse(await secondOutput.waitFor((line) => line.startsWith("{")))
          expect(await secondOutput.exited).toBe(0)

          const { record, stored } = await Effect.runPromise(
            Effect.gen(function* () {
              const ledger = yield* TaskLedger.TaskLedger
              const store = yield* FileSystemStore.make({ root })
              return { record: Option.getOrThrow(yield* ledger.get("vidu-crash-task")), stored: yield* store.list() }
            }).pipe(Effect.provide(Layer.fresh(SqliteLedger.layer({ filename }))))
          )
          expect(summary.completed).toEqual(["vidu-crash-task"])
          expect([record.state, record.providerId, record.remoteTaskId]).toEqual([
            "completed",
            "vidu",
            submitted.slice("submitted ".length)
          ])
          expect(
            fake.requests.filter((request) => request.route === "generate").map((request) => request.endpoint)
          ).toEqual(["img2video"])
          expect(fake.tasks).toHaveLength(1)
          expect(fake.bills).toHaveLength(1)
          expect(stored).toHaveLength(1)
          expect(record.artifacts.map((artifact) => artifact.key)).toEqual(stored.map((item) => item.key))
        } finally {
          await fake.close()
          rmSync(dir, { recursive: true, force: true })
        }
      }),
    120_000
  )
})
