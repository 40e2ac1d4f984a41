// Sequential writes to a file with one batch in flight: while the thread pool writes one batch,
// the caller keeps pulling, hashing and collecting the next, so disk and network overlap. Small
// chunks are gathered into batches (one writev each), which saves a round trip to the thread pool
// per chunk. Memory held: at most two batches.
import type { FileHandle } from "node:fs/promises"

/** A file writer with one batch in flight. */
export interface Writer {
  /** Queues a chunk; returns a promise when the caller must wait for the previous batch first. */
  readonly write: (chunk: Uint8Array) => Promise<void> | undefined
  /** Writes what is queued and waits for every write. */
  readonly flush: () => Promise<void>
  /** Waits for the write in flight, ignoring its outcome (before closing on failure). */
  readonly settle: () => Promise<void>
}

const writeAll = async (handle: FileHandle, buffers: ReadonlyArray<Uint8Array>): Promise<void> => {
  const total = buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0)
  const { bytesWritten } = await handle.writev(buffers as Array<Uint8Array>)
  if (bytesWritten === total) return
  // writev may write less than asked (rare on regular files): write the rest in order.
  let remaining = Buffer.concat(buffers).subarray(bytesWritten)
  while (remaining.length > 0) {
    const { bytesWritten: more } = await handle.write(remaining)
    remaining = remaining.subarray(more)
  }
}

/**
 * Builds a writer appending to `handle` in batches of about `batchBytes`. With `syncEveryBytes`, a
 * datasync starts (alongside the next writes) each time that many bytes have been written, so the
 * disk drains during the download and the final fsync has little left to do.
 */
export const make = (handle: FileHandle, batchBytes: number, syncEveryBytes?: number): Writer => {
  let pending: Array<Uint8Array> = []
  let pendingBytes = 0
  let inFlight: Promise<void> = Promise.resolve()
  let failure: { readonly error: unknown } | undefined
  // A hand-over waiting for the write in flight; chunks queued meanwhile join the same batch.
  let scheduled: Promise<void> | undefined
  let unsynced = 0
  let syncing: Promise<void> | undefined

  const start = () => {
    const buffers = pending
    const bytes = pendingBytes
    pending = []
    pendingBytes = 0
    inFlight = writeAll(handle, buffers).then(
      () => {
        unsynced += bytes
        if (syncEveryBytes !== undefined && unsynced >= syncEveryBytes && syncing === undefined) {
          unsynced = 0
          syncing = handle.datasync().then(
            () => {
              syncing = undefined
            },
            (error) => {
              failure = { error }
            }
          )
        }
      },
      (error) => {
        failure = { error }
      }
    )
  }
  const rethrow = () => {
    if (failure !== undefined) throw failure.error
  }

  return {
    write: (chunk) => {
      if (failure !== undefined) return Promise.reject(failure.error)
      pending.push(chunk)
      pendingBytes += chunk.byteLength
      if (pendingBytes < batchBytes && pending.length < 1024) return undefined
      if (scheduled === undefined) {
        scheduled = inFlight.then(() => {
          scheduled = undefined
          rethrow()
          start()
        })
      }
      return scheduled
    },
    flush: async () => {
      await scheduled
      await inFlight
      rethrow()
      if (pending.length > 0) {
        start()
        await inFlight
      }
      await syncing
      rethrow()
    },
    settle: async () => {
      await scheduled?.catch(() => undefined)
      await inFlight
      await syncing
    }
  }
}
