// The file-system store's writer on a real file: content copied through the staging ring, with
// O_DIRECT (page-aligned blocks, a padded tail cut back) and without, in chunk sizes that straddle
// the buffers, comes out byte for byte, with the exact length.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import * as FileWriter from "../src/internal/fileWriter.js"

const root = mkdtempSync(join(tmpdir(), "reelkit-file-writer-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const writeThrough = (name: string, content: Uint8Array, chunkBytes: number, options: FileWriter.Options) =>
  Effect.promise(async () => {
    const path = join(root, name)
    const writer = await FileWriter.create(path, options)
    for (let offset = 0; offset < content.byteLength; offset += chunkBytes) {
      await writer.write(content.subarray(offset, offset + chunkBytes))
    }
    await writer.flush()
    await writer.sync()
    const size = (await writer.stat()).size
    const direct = writer.direct()
    await writer.close()
    return { size, direct, written: readFileSync(path) }
  })

describe("FileWriter", () => {
  // 64 KiB buffers (the smallest: one WebAssembly page), so a few hundred KiB wrap the ring.
  const content = randomBytes(5 * 65536 + 4097)
  for (const direct of [true, false]) {
    it.effect(`writes every byte in order and nothing more (direct: ${direct})`, () =>
      Effect.gen(function* () {
        for (const chunkBytes of [1000, 65536, 200_000, content.byteLength]) {
          const result = yield* writeThrough(`out-${direct}-${chunkBytes}`, content, chunkBytes, {
            batchBytes: 65536,
            buffers: 2,
            direct
          })
          expect(result.size).toBe(BigInt(content.byteLength))
          expect(Buffer.compare(result.written, content)).toBe(0)
          if (!direct) expect(result.direct).toBe(false)
        }
      })
    )
  }

  it.effect("refuses a second write while the first still waits for a free buffer", () =>
    Effect.promise(async () => {
      const writer = await FileWriter.create(join(root, "overlap"), { batchBytes: 65536, buffers: 2 })
      const wait = writer.write(new Uint8Array(3 * 65536))
      expect(wait).toBeDefined()
      await expect(writer.write(new Uint8Array(1))).rejects.toThrow("previous wait")
      await wait
      await writer.flush()
      await writer.close()
      await expect(writer.write(new Uint8Array(1))).rejects.toThrow("after close")
    })
  )
})
