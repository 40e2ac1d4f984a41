// Core's result storage on a real FileSystemStore: a status listing 200 result URLs (served by a
// scripted server on 127.0.0.1, which counts what it received) leaves 8 files on disk.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { ResultStorage, TaskLedger } from "@reelkit/core"
import * as FileSystemStore from "@reelkit/storage/FileSystemStore"
import { ScriptedHttpServer } from "@reelkit/testing"
import { Effect, Layer, Schedule } from "effect"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"

const root = mkdtempSync(join(tmpdir(), "reelkit-results-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe("ResultStorage on the file-system store", () => {
  it.scoped("a status listing 200 result URLs stores 8 files and fetches only 8", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      for (let index = 0; index < 200; index++) {
        server.script(`GET /results/${index}.mp4`, {
          status: 200,
          headers: { "content-type": "video/mp4", "content-length": "64" },
          body: String(index % 10).repeat(64)
        })
      }
      const record = new TaskLedger.TaskRecord({
        ...TaskLedger.newRecord({ taskKey: "t200", providerId: "p", modelId: "m", input: {} }, 0),
        state: "succeeded",
        resultUrls: Array.from({ length: 200 }, (_, index) => `${server.baseUrl}/results/${index}.mp4`)
      })
      const stored = yield* Effect.flatMap(ResultStorage.ResultStorage, (storage) => storage.store(record))
      expect(stored).toHaveLength(8)
      expect(server.requests()).toHaveLength(8)
      const names = readdirSync(join(root, "p/m/t200")).sort()
      expect(names).toEqual(
        Array.from({ length: 8 }, (_, index) => [`${index}.mp4`, `${index}.mp4~meta.json`])
          .flat()
          .sort()
      )
    }).pipe(
      Effect.provide(
        ResultStorage.layer({ retry: Schedule.stop }).pipe(
          Layer.provide(Layer.merge(FileSystemStore.layer({ root, fsync: false }), NodeHttpClient.layerUndici))
        )
      )
    )
  )
})
