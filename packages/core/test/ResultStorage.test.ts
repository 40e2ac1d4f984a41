// Result storage's bounds over real HTTP: a scripted server on 127.0.0.1 serves the result URLs
// and counts the requests it received; outputs go to the memory ArtifactStore.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { ScriptedHttpServer } from "@reelkit/testing"
import { Effect, Either, Layer, Schedule } from "effect"
import * as ArtifactStore from "../src/ArtifactStore.js"
import * as ResultStorage from "../src/ResultStorage.js"
import * as TaskLedger from "../src/TaskLedger.js"

const downloads = Layer.merge(ArtifactStore.layerMemory, NodeHttpClient.layerUndici)

// Never wait between attempts: a test that needed a retry would show it in the request count.
const noRetry = Schedule.stop

/** A succeeded row listing `count` result URLs on `server`, `/results/<index>.mp4`. */
const succeededTask = (baseUrl: string, count: number): TaskLedger.TaskRecord =>
  new TaskLedger.TaskRecord({
    ...TaskLedger.newRecord({ taskKey: "bounded", providerId: "p", modelId: "m", input: {} }, 0),
    state: "succeeded",
    resultUrls: Array.from({ length: count }, (_, index) => `${baseUrl}/results/${index}.mp4?sig=secret`)
  })

/** Scripts `GET /results/<index>.mp4` for `count` outputs of `bytes` bytes each. */
const serveOutputs = (
  server: ScriptedHttpServer.ScriptedServer,
  count: number,
  bytes: number,
  announceLength: boolean | undefined = true
) => {
  for (let index = 0; index < count; index++) {
    server.script(`GET /results/${index}.mp4`, {
      status: 200,
      headers: { "content-type": "video/mp4", ...(announceLength ? { "content-length": String(bytes) } : {}) },
      body: String(index % 10).repeat(bytes)
    })
  }
}

const downloadedPaths = (server: ScriptedHttpServer.ScriptedServer) =>
  server.requests().map((request) => request.pathname)

/**
 * Serves `count` outputs of `bytes` bytes, stores the task's results with `options`, and returns
 * the outcome, the keys in the store and the paths the server was asked for.
 */
const storeFromServer = (
  serve: { readonly count: number; readonly bytes: number; readonly announceLength?: boolean },
  options: ResultStorage.Options
) =>
  Effect.gen(function* () {
    const server = yield* ScriptedHttpServer.make
    serveOutputs(server, serve.count, serve.bytes, serve.announceLength)
    const result = yield* Effect.either(
      ResultStorage.storeResults(succeededTask(server.baseUrl, serve.count), { retry: noRetry, ...options })
    )
    const kept = yield* Effect.flatMap(ArtifactStore.ArtifactStore, (store) => store.list())
    return { result, kept: kept.map((artifact) => artifact.key), fetched: downloadedPaths(server) }
  }).pipe(Effect.provide(downloads))

const outputKeys = (count: number) => Array.from({ length: count }, (_, index) => `p/m/bounded/${index}.mp4`)
const outputPaths = (count: number) => Array.from({ length: count }, (_, index) => `/results/${index}.mp4`)

describe("ResultStorage bounds", () => {
  it.scoped("a task listing 200 result URLs stores the first 8 and fetches only those 8", () =>
    Effect.gen(function* () {
      const server = yield* ScriptedHttpServer.make
      serveOutputs(server, 200, 16)
      const storage = yield* ResultStorage.ResultStorage
      expect(storage.maxOutputs).toBe(8)
      const stored = yield* storage.store(succeededTask(server.baseUrl, 200))
      expect(stored.map((artifact) => artifact.key)).toEqual(outputKeys(8))
      const kept = yield* Effect.flatMap(ArtifactStore.ArtifactStore, (store) => store.list())
      expect(kept).toHaveLength(8)
      expect(downloadedPaths(server)).toEqual(outputPaths(8))
    }).pipe(Effect.provide(ResultStorage.layer({ retry: noRetry }).pipe(Layer.provideMerge(downloads))))
  )

  it.scoped("maxOutputs sets how many outputs are fetched and stored", () =>
    Effect.gen(function* () {
      const { result, kept, fetched } = yield* storeFromServer({ count: 200, bytes: 16 }, { maxOutputs: 3 })
      expect(Either.isRight(result) && result.right).toHaveLength(3)
      expect(kept).toEqual(outputKeys(3))
      expect(fetched).toEqual(outputPaths(3))
    })
  )

  it.scoped("an output past what is left of maxTotalBytes is ArtifactTooLarge, refused on its announced length", () =>
    Effect.gen(function* () {
      const { result, kept, fetched } = yield* storeFromServer({ count: 5, bytes: 1000 }, { maxTotalBytes: 2500 })
      // 1000 + 1000 fit; the third may have only the 500 bytes left of the total.
      expect(Either.isLeft(result) && result.left).toMatchObject({
        _tag: "ArtifactTooLarge",
        key: "p/m/bounded/2.mp4",
        maxBytes: 500
      })
      expect(kept).toEqual(outputKeys(2))
      expect(fetched).toEqual(outputPaths(3))
    })
  )

  it.scoped("without an announced length, the store's cap stops the body at what is left of the total", () =>
    Effect.gen(function* () {
      const { result, kept, fetched } = yield* storeFromServer(
        { count: 3, bytes: 1000, announceLength: false },
        { maxTotalBytes: 1999 }
      )
      expect(Either.isLeft(result) && result.left).toMatchObject({
        _tag: "ArtifactTooLarge",
        key: "p/m/bounded/1.mp4",
        maxBytes: 999
      })
      expect(kept).toEqual(outputKeys(1))
      expect(fetched).toEqual(outputPaths(2))
    })
  )

  it.scoped("each output's cap is maxBytes when that is smaller than what is left of the total", () =>
    Effect.gen(function* () {
      const { result, kept, fetched } = yield* storeFromServer({ count: 2, bytes: 1000 }, { maxBytes: 999 })
      expect(Either.isLeft(result) && result.left).toMatchObject({
        _tag: "ArtifactTooLarge",
        key: "p/m/bounded/0.mp4",
        maxBytes: 999
      })
      expect(kept).toEqual([])
      expect(fetched).toEqual(outputPaths(1))
    })
  )

  it.scoped("outputs that fit both bounds exactly are all stored", () =>
    Effect.gen(function* () {
      const { result, fetched } = yield* storeFromServer(
        { count: 4, bytes: 1000 },
        { maxBytes: 1000, maxTotalBytes: 4000 }
      )
      expect(Either.isRight(result) && result.right.map((artifact) => artifact.bytes)).toEqual([1000, 1000, 1000, 1000])
      expect(fetched).toEqual(outputPaths(4))
    })
  )

  it.effect("a bound that is not a whole positive number is a defect naming the option, before any download", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(ResultStorage.make({ maxOutputs: 0 }))
      expect(exit._tag).toBe("Failure")
      expect(String(exit._tag === "Failure" && exit.cause)).toContain("maxOutputs must be a whole number of at least 1")
      const total = yield* Effect.exit(
        ResultStorage.storeResults(succeededTask("http://127.0.0.1:9", 1), { maxTotalBytes: 1.5 })
      )
      expect(String(total._tag === "Failure" && total.cause)).toContain("maxTotalBytes must be a whole number")
    }).pipe(Effect.provide(downloads))
  )
})
