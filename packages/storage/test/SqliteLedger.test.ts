import * as EffectVitest from "@effect/vitest"
import { describe, expect, it } from "@effect/vitest"
import { TaskLedger } from "@reelkit/core"
import * as SqliteLedger from "@reelkit/storage/SqliteLedger"
import { TaskLedgerContract } from "@reelkit/testing"
import { Effect, Option } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import { lines, spawnFixture } from "./utils.js"

const dir = mkdtempSync(join(tmpdir(), "reelkit-sqlite-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

TaskLedgerContract.suite("SqliteLedger", SqliteLedger.layer({ filename: join(dir, "contract.db") }), EffectVitest)

describe("SqliteLedger", () => {
  it.effect("keeps every row across reopening the file", () =>
    Effect.gen(function* () {
      // In a directory that does not exist yet: the layer creates it.
      const filename = join(dir, "nested", "deeper", "reopen.db")
      yield* Effect.flatMap(TaskLedger.TaskLedger, (ledger) =>
        Effect.zipRight(
          ledger.create({ taskKey: "tk_1", providerId: "p", modelId: "m", idempotencyKey: "k", input: { a: 1 } }),
          ledger.transition("tk_1", ["submitting"], { state: "submitted", remoteTaskId: "r1" })
        )
      ).pipe(Effect.provide(SqliteLedger.layer({ filename })))
      const reopened = yield* Effect.flatMap(TaskLedger.TaskLedger, (ledger) => ledger.findByRemoteId("r1")).pipe(
        Effect.provide(SqliteLedger.layer({ filename }))
      )
      expect(Option.getOrThrow(reopened).taskKey).toBe("tk_1")
      expect(Option.getOrThrow(reopened).version).toBe(2)
    })
  )

  it.effect(
    "two processes on one file: one create per idempotency key, one winner per transition, no lost update, disjoint claims",
    () =>
      Effect.gen(function* () {
        const filename = join(dir, "shared.db")
        const rounds = 10
        // Tasks for the claim race, written before the children start.
        yield* Effect.flatMap(TaskLedger.TaskLedger, (ledger) =>
          Effect.forEach(
            Array.from({ length: 40 }, (_, index) => index),
            (index) => ledger.create({ taskKey: `claim-${index}`, providerId: "claims", modelId: "m", input: {} })
          )
        ).pipe(Effect.provide(SqliteLedger.layer({ filename })))
        const children = ["worker-a", "worker-b"].map((worker) => {
          const child = spawnFixture("sqliteHammer", [filename, worker, String(rounds)])
          return { worker, child, output: lines(child) }
        })
        // Start each phase in both children at once, when both are ready for it.
        for (const phase of ["create", "hammer", "claim"]) {
          yield* Effect.promise(() =>
            Promise.all(children.map(({ output }) => output.waitFor((line) => line === `${phase}?`)))
          )
          for (const { child } of children) child.stdin!.write(`${phase}\n`)
        }
        const results = yield* Effect.promise(() =>
          Promise.all(
            children.map(async ({ worker, output }) => {
              const line = await output.waitFor((text) => text.startsWith("{"))
              expect(await output.exited).toBe(0)
              return {
                worker,
                ...(JSON.parse(line) as { created: number; won: Array<string>; claimed: Array<string> })
              }
            })
          )
        )
        // Thirty idempotency keys, raced by two processes: exactly thirty rows.
        expect(results.reduce((sum, result) => sum + result.created, 0)).toBe(30)
        const winners = results.flatMap((result) => result.won.map((taskKey) => ({ taskKey, worker: result.worker })))
        expect(winners.length).toBe(30)
        const claimed = results.flatMap((result) => result.claimed)
        expect(new Set(claimed).size).toBe(claimed.length)
        expect(claimed.length).toBe(40)
        const rows = yield* Effect.flatMap(TaskLedger.TaskLedger, (ledger) =>
          ledger.list({ providerId: "hammer" })
        ).pipe(Effect.provide(SqliteLedger.layer({ filename })))
        expect(rows.length).toBe(30)
        for (const row of rows) {
          // create (1) + the one winning transition (1) + every unconditional transition of both.
          expect(row.version).toBe(2 + 2 * rounds)
          expect(row.remoteTaskId).toBe(winners.find((winner) => winner.taskKey === row.taskKey)!.worker)
        }
      }),
    60_000
  )
})
