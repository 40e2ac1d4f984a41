// Sequential writes of a put's content to a raw file descriptor. Incoming chunks are copied into a
// small ring of fixed staging buffers; a full buffer is written in one call while the caller keeps
// pulling, hashing and copying into the next, so network and disk overlap. Memory held: the ring,
// whatever the chunk sizes (the chunks themselves are released as soon as they are copied).
//
// Durable puts write with O_DIRECT where the file system allows it. fsyncing a large file written
// through the page cache is slow on many (virtual) disks: on the machine this was measured on,
// 512 MiB took ~100 MB/s buffered + fsync against ~500 MB/s direct, because the kernel's writeback
// only starts at the fsync. Direct writes reach the device as they are made, the final fsync has
// only the device cache and the metadata left to flush, and a just-downloaded video does not evict
// the page cache. Direct I/O needs page-aligned memory, offsets and lengths: the ring lives in a
// WebAssembly.Memory (whose base is page-aligned), buffers are whole pages, and the unaligned tail is
// written padded and then truncated. Where O_DIRECT is refused (tmpfs, some network file systems, a
// device with larger blocks), the writer falls back to ordinary writes with a datasync every
// `syncEveryBytes`, so the final fsync has little left to do.
import * as Fs from "node:fs"

/** A file writer over a ring of staging buffers. */
export interface Writer {
  /** Copies a chunk in; returns a promise when the caller must wait for a buffer to be free first. */
  readonly write: (chunk: Uint8Array) => Promise<void> | undefined
  /** Writes what is staged, waits for every write and leaves the file exactly `bytes` long. */
  readonly flush: () => Promise<void>
  /** fsyncs the file (data and metadata). */
  readonly sync: () => Promise<void>
  /** The file's identity after the last write. */
  readonly stat: () => Promise<Fs.BigIntStats>
  /** Closes every descriptor; safe to call more than once. */
  readonly close: () => Promise<void>
  /** Waits for the writes in flight, ignoring their outcome (before closing on failure). */
  readonly settle: () => Promise<void>
  /** Whether the content is being written with O_DIRECT (for benchmarks and tests). */
  readonly direct: () => boolean
}

/** Options of a writer. */
export interface Options {
  /** Size of one staging buffer and of one write, rounded up to whole pages (default 4 MiB). */
  readonly batchBytes?: number | undefined
  /** Staging buffers in the ring (default 3): one being filled, the others being written. */
  readonly buffers?: number | undefined
  /** Try O_DIRECT (default false: ordinary writes through the page cache). */
  readonly direct?: boolean | undefined
  /** With ordinary writes, start a datasync each time this many bytes have been written. */
  readonly syncEveryBytes?: number | undefined
}

// The alignment direct I/O needs on every device of the last decades (logical blocks up to 4 KiB).
const alignment = 4096
// A WebAssembly page: the unit of a WebAssembly.Memory.
const wasmPage = 65536

const open = (path: string, flags: number, mode: number) =>
  new Promise<number>((resolve, reject) =>
    Fs.open(path, flags, mode, (error, fd) => (error ? reject(error) : resolve(fd)))
  )
const close = (fd: number) =>
  new Promise<void>((resolve, reject) => Fs.close(fd, (error) => (error ? reject(error) : resolve())))
const callback =
  (resolve: () => void, reject: (error: unknown) => void) =>
  (error: NodeJS.ErrnoException | null): void =>
    error ? reject(error) : resolve()

/** Writes all of `buffer[0, length)` at `position`, continuing after a short write. */
const writeFully = (fd: number, buffer: Uint8Array, length: number, position: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const step = (done: number) =>
      Fs.write(fd, buffer, done, length - done, position + done, (error, written) => {
        if (error) return reject(error)
        if (done + written >= length) return resolve()
        if (written === 0) return reject(new Error("the file system accepted no bytes"))
        step(done + written)
      })
    step(0)
  })

const errorCode = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null ? (cause as { code?: string }).code : undefined

// Rings given back by finished writers, kept for the next ones: a put then touches no new memory,
// and a WebAssembly.Memory (which the garbage collector frees late) is not made per put.
const spareRings = new Map<number, Array<ArrayBuffer>>()
const maxSpareRings = 4

// The project's TypeScript lib has no WebAssembly types; this is the one constructor used.
const wasm = (
  globalThis as {
    readonly WebAssembly?: {
      readonly Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer }
    }
  }
).WebAssembly

/** Page-aligned staging memory, or none where WebAssembly is unavailable (node --jitless). */
const alignedMemory = (bytes: number): ArrayBuffer | undefined => {
  const spare = spareRings.get(bytes)?.pop()
  if (spare !== undefined) return spare
  if (wasm === undefined) return undefined
  try {
    return new wasm.Memory({ initial: Math.ceil(bytes / wasmPage) }).buffer
  } catch {
    return undefined
  }
}

const giveBack = (memory: ArrayBuffer) => {
  const spares = spareRings.get(memory.byteLength) ?? []
  if (spares.length < maxSpareRings) spares.push(memory)
  spareRings.set(memory.byteLength, spares)
}

/**
 * Creates `path` (which must not exist, mode 0644) and returns a writer appending to it. With
 * `direct`, O_DIRECT is tried first and given up (for ordinary writes on a second descriptor) as
 * soon as the file system refuses it.
 */
export const create = async (path: string, options: Options = {}): Promise<Writer> => {
  const batchBytes = Math.ceil((options.batchBytes ?? 4 * 1024 * 1024) / wasmPage) * wasmPage
  const count = Math.max(2, options.buffers ?? 3)
  const syncEveryBytes = options.syncEveryBytes
  const exclusive = Fs.constants.O_WRONLY | Fs.constants.O_CREAT | Fs.constants.O_EXCL
  const directFlag = Fs.constants.O_DIRECT
  const memory = options.direct === true && directFlag !== undefined ? alignedMemory(batchBytes * count) : undefined

  let fd: number
  let direct = false
  const descriptors: Array<number> = []
  if (memory !== undefined) {
    try {
      fd = await open(path, exclusive | directFlag!, 0o644)
      direct = true
    } catch (cause) {
      if (errorCode(cause) !== "EINVAL") throw cause
      fd = await open(path, exclusive, 0o644)
    }
  } else {
    fd = await open(path, exclusive, 0o644)
  }
  descriptors.push(fd)

  const backing = memory ?? new ArrayBuffer(batchBytes * count)
  const ring = Array.from({ length: count }, (_, index) => new Uint8Array(backing, index * batchBytes, batchBytes))
  const inFlight: Array<Promise<void>> = ring.map(() => Promise.resolve())
  let current = 0
  let filled = 0
  let position = 0
  let failure: { readonly error: unknown } | undefined
  let unsynced = 0
  let syncing: Promise<void> | undefined

  // Direct I/O refused at write time (EINVAL: a device whose blocks exceed the alignment): the same
  // file is reopened for ordinary writes, which go on from where the direct ones stopped.
  const fallBack = async () => {
    if (!direct) return
    direct = false
    fd = await open(path, Fs.constants.O_WRONLY, 0o644)
    descriptors.push(fd)
  }
  const writeAt = async (buffer: Uint8Array, length: number, at: number): Promise<void> => {
    if (direct) {
      try {
        return await writeFully(fd, buffer, Math.ceil(length / alignment) * alignment, at)
      } catch (cause) {
        if (errorCode(cause) !== "EINVAL") throw cause
        await fallBack()
      }
    }
    await writeFully(fd, buffer, length, at)
    unsynced += length
    if (syncEveryBytes !== undefined && unsynced >= syncEveryBytes && syncing === undefined) {
      unsynced = 0
      const target = fd
      syncing = new Promise<void>((resolve, reject) => Fs.fdatasync(target, callback(resolve, reject))).then(
        () => {
          syncing = undefined
        },
        (error) => {
          failure ??= { error }
        }
      )
    }
  }
  // Starts writing the current buffer and moves on to the next; the promise is that of the next
  // buffer's previous write, which must end before it is filled again.
  const launch = (length: number): Promise<void> => {
    const at = position
    const index = current
    position += length
    inFlight[index] = writeAt(ring[index]!, length, at).catch((error) => {
      failure ??= { error }
    })
    current = (current + 1) % count
    filled = 0
    return inFlight[current]!
  }
  const rethrow = () => {
    if (failure !== undefined) throw failure.error
  }
  let waiting: Promise<void> | undefined
  let closed = false

  // Copies `chunk` from `offset` on; when a full buffer's successor is still being written, the
  // rest waits for it (one wait at a time: the caller awaits the returned promise).
  const copyIn = (chunk: Uint8Array, offset: number): Promise<void> | undefined => {
    while (offset < chunk.byteLength) {
      const take = Math.min(chunk.byteLength - offset, batchBytes - filled)
      ring[current]!.set(chunk.subarray(offset, offset + take), filled)
      filled += take
      offset += take
      if (filled === batchBytes) {
        const free = launch(batchBytes)
        const rest = offset
        waiting = free.then(() => {
          waiting = undefined
          rethrow()
          if (closed) throw new Error("FileWriter: written after close")
          return copyIn(chunk, rest)
        })
        return waiting
      }
    }
    return undefined
  }

  return {
    write: (chunk) => {
      if (failure !== undefined) return Promise.reject(failure.error)
      // A write after close could reach another file that reused the descriptor's number.
      if (closed) return Promise.reject(new Error("FileWriter: written after close"))
      if (waiting !== undefined) return Promise.reject(new Error("FileWriter: written before the previous wait ended"))
      return copyIn(chunk, 0)
    },
    flush: async () => {
      await waiting
      rethrow()
      const tail = filled
      if (tail > 0) launch(tail)
      await Promise.all(inFlight)
      await syncing
      rethrow()
      // A direct tail is written padded to whole pages: the file is cut back to its content.
      if (direct || position % alignment !== 0) {
        await new Promise<void>((resolve, reject) => Fs.ftruncate(fd, position, callback(resolve, reject)))
      }
    },
    sync: () => new Promise<void>((resolve, reject) => Fs.fsync(fd, callback(resolve, reject))),
    stat: () =>
      new Promise<Fs.BigIntStats>((resolve, reject) =>
        Fs.fstat(fd, { bigint: true }, (error, stats) => (error ? reject(error) : resolve(stats)))
      ),
    close: async () => {
      if (closed) return
      closed = true
      for (const descriptor of descriptors.splice(0)) await close(descriptor)
      // Only after every write ended (close follows flush or settle) and no write can start again.
      if (memory !== undefined) giveBack(memory)
    },
    settle: async () => {
      await waiting?.catch(() => undefined)
      await Promise.all(inFlight)
      await syncing
    },
    direct: () => direct
  }
}
