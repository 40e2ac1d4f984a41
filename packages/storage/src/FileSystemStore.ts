/**
 * The `ArtifactStore` on a local directory. Content streams to a temporary file in the target's
 * directory, is fsynced and renamed into place; its metadata (content type, size, sha256, source URL,
 * stored-at, and the content file's identity) is a JSON sidecar beside it (`<key>~meta.json`), written
 * the same way. The sidecar's rename is the commit point: an artifact exists when its sidecar does.
 *
 * @since 0.1.0
 */
import { ArtifactStore } from "@reelkit/core"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Duration from "effect/Duration"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { createHash, randomBytes } from "node:crypto"
import type { Dirent } from "node:fs"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import * as DirectorySync from "./internal/directorySync.js"
import * as FileWriter from "./internal/fileWriter.js"
import * as WriterIdentity from "./internal/writerIdentity.js"

/** Options of the file-system store. */
export interface Options {
  /** The directory holding every artifact; created if missing. Keys are paths below it. */
  readonly root: string
  /**
   * Whether to fsync files and directories before a put returns (default true). Without it a put is
   * still atomic for readers, but a power loss may lose a put that had returned.
   */
  readonly fsync?: boolean | undefined
  /** Read chunk size for `get`, in bytes (default 256 KiB). */
  readonly readChunkBytes?: number | undefined
  /**
   * When the store is made, the temporary files (`.<name>~tmp-*`) a process killed mid-put left are
   * removed: at once when their name shows their writer is dead (this host, and an earlier boot or
   * a process that no longer runs), never while it still runs, and otherwise (another host, or a
   * name without a writer) when last modified longer ago than this. Default 1 hour; it must exceed
   * the longest pause of a live download on another host. `Duration.infinity` turns off this age
   * rule only.
   */
  readonly sweepTemporaryOlderThan?: Duration.DurationInput | undefined
}

/** Suffix of the metadata sidecar. `~` cannot appear in a valid key, so no key collides with it. */
export const sidecarSuffix = "~meta.json"

const temporaryMarker = "~tmp-"
// The content and sidecar temporary files of a put, `.<name>~tmp-<writer>-<random>[~meta.json]`
// (earlier versions wrote no writer); `~` never appears in keys, so no artifact matches.
const temporaryName = new RegExp(`^\\..*~tmp-(?:(${WriterIdentity.pattern})-)?[0-9a-f]+(?:~meta\\.json)?$`)

// Content is written in blocks of this size, from a ring of three staging buffers (12 MiB a put).
const writeBatchBytes = 4 * 1024 * 1024
// With fsync on and no direct I/O, the disk is flushed every this many bytes during the put, not all at the end.
const syncEveryBytes = 32 * 1024 * 1024

// The sidecar is the artifact's metadata plus the identity of the content file it was written
// with (inode and nanosecond mtime, which a rename keeps), so that `get` pairs them exactly.
const FileIdentity = Schema.Struct({ inode: Schema.String, mtimeNs: Schema.String })
type FileIdentity = typeof FileIdentity.Type
const Sidecar = Schema.Struct({
  ...ArtifactStore.ArtifactMetadata.fields,
  file: Schema.optional(FileIdentity)
})
const encodeSidecar = Schema.encodeSync(Schema.parseJson(Sidecar))
const decodeSidecar = Schema.decodeUnknown(Schema.parseJson(Sidecar))

const errorCode = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null ? (cause as { code?: string }).code : undefined

/** A directory's entries; none when it (or a parent) does not exist, as when nothing was stored there yet. */
const readDirectoryIfPresent = async (directory: string): Promise<Array<Dirent>> => {
  try {
    return await Fs.readdir(directory, { withFileTypes: true })
  } catch (cause) {
    if (errorCode(cause) === "ENOENT" || errorCode(cause) === "ENOTDIR") return []
    throw cause
  }
}

/** Builds a store rooted at `options.root`, creating the directory if needed. */
export const make = (options: Options): Effect.Effect<ArtifactStore.Service, ArtifactStore.ArtifactStoreError> =>
  Effect.gen(function* () {
    const root = Path.resolve(options.root)
    const fsync = options.fsync ?? true
    const readChunkBytes = options.readChunkBytes ?? 256 * 1024

    const fail = (operation: string, key: string, cause: unknown) =>
      new ArtifactStore.ArtifactStoreError({
        operation,
        key,
        message: cause instanceof Error ? cause.message : String(cause),
        cause
      })
    const attempt = <A>(operation: string, key: string, run: () => Promise<A>) =>
      Effect.tryPromise({ try: run, catch: (cause) => fail(operation, key, cause) })

    const createdRoot = yield* attempt("open", "", () => Fs.mkdir(root, { recursive: true }))
    // A root created here is made durable in its parents, like any directory a put creates.
    if (fsync && createdRoot !== undefined) {
      const syncDirectory = yield* FiberRef.get(DirectorySync.currentSyncDirectory)
      yield* attempt("open", "", async () => {
        for (let directory = root; ; directory = Path.dirname(directory)) {
          await syncDirectory(directory)
          if (directory === Path.dirname(createdRoot)) return
        }
      })
    }

    const identity = yield* Effect.promise(WriterIdentity.current)
    yield* sweepTemporary(root, Duration.decode(options.sweepTemporaryOlderThan ?? Duration.hours(1)), identity)

    // validateKey already refuses `..`, absolute paths and backslashes; the resolved path is checked
    // again so that no key can ever address a file outside the root.
    const contentPath = (key: string) =>
      Effect.flatMap(ArtifactStore.validateKey(key), (valid) => {
        const path = Path.resolve(root, ...valid.split("/"))
        return path.startsWith(root + Path.sep)
          ? Effect.succeed(path)
          : Effect.fail(new ArtifactStore.InvalidArtifactKey({ key, rule: "must stay inside the store's root" }))
      })

    // A directory's entry lives in its parent: after a put, the leaf and every directory above it
    // up to the root are synced, so directories created by this put (or by a concurrent one that
    // has not synced them yet) are as durable as the files in them.
    const syncDirectories = (operation: string, key: string, leaf: string) =>
      fsync
        ? Effect.flatMap(FiberRef.get(DirectorySync.currentSyncDirectory), (syncDirectory) =>
            attempt(operation, key, async () => {
              for (let directory = leaf; ; directory = Path.dirname(directory)) {
                await syncDirectory(directory)
                if (directory === root || !directory.startsWith(root)) return
              }
            })
          )
        : Effect.void

    const readMetadata = (operation: string, key: string, path: string) =>
      Effect.map(
        readSidecar(operation, key, path),
        Option.map((sidecar) => sidecar.metadata)
      )

    const readSidecar = (operation: string, key: string, path: string) =>
      Effect.tryPromise({
        try: () => Fs.readFile(path + sidecarSuffix, "utf8"),
        catch: (cause) => cause
      }).pipe(
        Effect.map(Option.some),
        Effect.catchAll((cause) =>
          errorCode(cause) === "ENOENT" || errorCode(cause) === "ENOTDIR"
            ? Effect.succeed(Option.none<string>())
            : Effect.fail(fail(operation, key, cause))
        ),
        Effect.flatMap(
          Option.match({
            onNone: () =>
              Effect.succeed(
                Option.none<{ metadata: ArtifactStore.ArtifactMetadata; file: FileIdentity | undefined }>()
              ),
            onSome: (text) =>
              decodeSidecar(text).pipe(
                Effect.map(({ file, ...fields }) =>
                  Option.some({ metadata: new ArtifactStore.ArtifactMetadata(fields), file })
                ),
                Effect.mapError((cause) => fail(operation, key, cause))
              )
          })
        )
      )

    const put: ArtifactStore.Service["put"] = (key, body, putOptions) =>
      Effect.gen(function* () {
        const target = yield* contentPath(key)
        const directory = Path.dirname(target)
        yield* attempt("put", key, () => Fs.mkdir(directory, { recursive: true }))
        // The writer's identity lets a store opened later tell whether this put may still be running.
        const suffix = `${WriterIdentity.format(identity)}-${randomBytes(6).toString("hex")}`
        const temporary = Path.join(directory, `.${Path.basename(target)}${temporaryMarker}${suffix}`)
        const temporaryMetadata = `${temporary}${sidecarSuffix}`
        let closed = false
        return yield* Effect.acquireUseRelease(
          // Content is written around the page cache (see fileWriter.ts): fsyncing a large buffered
          // file is what made durable puts slow, and without fsync the kernel's dirty-page
          // throttling slowed the rest.
          attempt("put", key, () =>
            FileWriter.create(temporary, {
              batchBytes: writeBatchBytes,
              direct: true,
              syncEveryBytes: fsync ? syncEveryBytes : undefined
            })
          ),
          (writer) =>
            Effect.gen(function* () {
              const hash = createHash("sha256")
              let bytes = 0
              yield* Stream.runForEachChunk(
                body,
                (chunk): Effect.Effect<void, ArtifactStore.ArtifactTooLarge | ArtifactStore.ArtifactStoreError> => {
                  // Parts after one that must wait for a free buffer are copied in after it, in order.
                  let wait: Promise<void> | undefined
                  for (const part of chunk) {
                    bytes += part.byteLength
                    // Checked before queueing: no byte past the cap reaches the disk.
                    if (putOptions.maxBytes !== undefined && bytes > putOptions.maxBytes) {
                      return Effect.fail(new ArtifactStore.ArtifactTooLarge({ key, maxBytes: putOptions.maxBytes }))
                    }
                    hash.update(part)
                    wait = wait === undefined ? writer.write(part) : wait.then(() => writer.write(part))
                  }
                  return wait === undefined ? Effect.void : attempt("put", key, () => wait)
                }
              )
              yield* attempt("put", key, () => writer.flush())
              if (fsync) yield* attempt("put", key, () => writer.sync())
              const written = yield* attempt("put", key, () => writer.stat())
              const file: FileIdentity = { inode: String(written.ino), mtimeNs: String(written.mtimeNs) }
              closed = true
              yield* attempt("put", key, () => writer.close())
              const metadata = new ArtifactStore.ArtifactMetadata({
                key,
                bytes,
                sha256: hash.digest("hex"),
                contentType: putOptions.contentType,
                sourceUrl: putOptions.sourceUrl,
                storedAt: yield* Clock.currentTimeMillis
              })
              yield* attempt("put", key, async () => {
                const sidecar = await Fs.open(temporaryMetadata, "wx", 0o644)
                try {
                  await sidecar.writeFile(encodeSidecar({ ...metadata, file }), "utf8")
                  if (fsync) await sidecar.sync()
                } finally {
                  await sidecar.close()
                }
              })
              // Content first, then the sidecar: the sidecar's rename commits the put.
              yield* attempt("put", key, () => Fs.rename(temporary, target))
              yield* attempt("put", key, () => Fs.rename(temporaryMetadata, target + sidecarSuffix))
              yield* syncDirectories("put", key, directory)
              return metadata
            }),
          (writer, exit) =>
            Exit.isSuccess(exit)
              ? Effect.void
              : Effect.promise(async () => {
                  if (!closed) {
                    await writer.settle()
                    await writer.close().catch(() => undefined)
                  }
                  await Fs.rm(temporary, { force: true }).catch(() => undefined)
                  await Fs.rm(temporaryMetadata, { force: true }).catch(() => undefined)
                })
        )
      })

    const get: ArtifactStore.Service["get"] = (key) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const path = yield* contentPath(key)
          const sidecar = yield* readSidecar("get", key, path)
          if (Option.isNone(sidecar)) return yield* new ArtifactStore.ArtifactNotFound({ key })
          const { file, metadata } = sidecar.value
          const handle = yield* Effect.acquireRelease(
            Effect.tryPromise({
              try: () => Fs.open(path, "r"),
              catch: (cause): ArtifactStore.ArtifactNotFound | ArtifactStore.ArtifactStoreError =>
                errorCode(cause) === "ENOENT" ? new ArtifactStore.ArtifactNotFound({ key }) : fail("get", key, cause)
            }),
            (handle) => Effect.promise(() => handle.close().catch(() => undefined))
          )
          // Content and sidecar are renamed one after the other, so a crash between the two renames
          // of an overwrite, or two puts racing on one key, can leave content beside another put's
          // sidecar. Such content is refused rather than served with a sha256 that is not its own.
          const stat = yield* attempt("get", key, () => handle.stat({ bigint: true }))
          if (stat.size !== BigInt(metadata.bytes)) {
            return yield* fail(
              "get",
              key,
              `content is ${stat.size} bytes but its metadata says ${metadata.bytes} (interrupted overwrite)`
            )
          }
          const content = Stream.fromAsyncIterable(
            handle.createReadStream({ autoClose: false, highWaterMark: readChunkBytes }) as AsyncIterable<Uint8Array>,
            (cause) => fail("get", key, cause)
          )
          // The very file the sidecar was written with: served as is.
          if (file !== undefined && String(stat.ino) === file.inode && String(stat.mtimeNs) === file.mtimeNs) {
            return content
          }
          // Another file (a torn or racing overwrite, or a copy restored from a backup): served only
          // if its bytes hash to the sidecar's sha256; otherwise the stream fails at its end.
          const hash = createHash("sha256")
          return Stream.concat(
            Stream.mapChunks(content, (chunk) => {
              for (const part of chunk) hash.update(part)
              return chunk
            }),
            Stream.execute(
              Effect.suspend(() => {
                const sha256 = hash.digest("hex")
                return sha256 === metadata.sha256
                  ? Effect.void
                  : Effect.fail(
                      fail("get", key, `content hashes to ${sha256} but its metadata says ${metadata.sha256}`)
                    )
              })
            )
          )
        })
      )

    const head: ArtifactStore.Service["head"] = (key) =>
      Effect.flatMap(contentPath(key), (path) => readMetadata("head", key, path))

    const list: ArtifactStore.Service["list"] = (prefix = "") =>
      Effect.gen(function* () {
        // Walk only below the deepest directory the prefix names.
        const slash = prefix.lastIndexOf("/")
        const base = slash < 0 ? "" : prefix.slice(0, slash)
        if (base !== "" && Either.isLeft(yield* Effect.either(ArtifactStore.validateKey(base)))) return []
        const start = base === "" ? root : Path.join(root, ...base.split("/"))
        const sidecars: Array<string> = []
        const walk = async (directory: string, relative: string): Promise<void> => {
          const entries = await readDirectoryIfPresent(directory)
          for (const entry of entries) {
            const name = relative === "" ? entry.name : `${relative}/${entry.name}`
            if (entry.isDirectory()) {
              if (name.startsWith(prefix) || prefix.startsWith(`${name}/`))
                await walk(Path.join(directory, entry.name), name)
            } else if (
              entry.isFile() &&
              entry.name.endsWith(sidecarSuffix) &&
              !entry.name.includes(temporaryMarker) &&
              name.startsWith(prefix)
            ) {
              sidecars.push(name.slice(0, -sidecarSuffix.length))
            }
          }
        }
        yield* attempt("list", prefix, () => walk(start, base))
        const found = yield* Effect.forEach(
          sidecars.sort(),
          (key) => readMetadata("list", key, Path.join(root, ...key.split("/"))),
          { concurrency: 16 }
        )
        return found
          .flatMap((metadata) => (Option.isSome(metadata) ? [metadata.value] : []))
          .sort((left, right) => (left.key < right.key ? -1 : left.key > right.key ? 1 : 0))
      })

    const remove: ArtifactStore.Service["delete"] = (key) =>
      Effect.gen(function* () {
        const path = yield* contentPath(key)
        // The sidecar goes first: once it is gone the artifact no longer exists for readers.
        yield* attempt("delete", key, () => Fs.rm(path + sidecarSuffix, { force: true }))
        yield* attempt("delete", key, () => Fs.rm(path, { force: true }))
      }).pipe(
        Effect.catchIf(
          (error) => error._tag === "ArtifactStoreError" && errorCode(error.cause) === "ENOTDIR",
          () => Effect.void
        )
      )

    return ArtifactStore.ArtifactStore.of({ put, get, head, list, delete: remove })
  })

// Removes the temporary files of puts that died (SIGKILL, power loss) from the whole tree: those
// whose writer is dead at once, those whose writer cannot be judged by age.
// Best effort: the store opens even when some directory cannot be read.
const sweepTemporary = (
  root: string,
  olderThan: Duration.Duration,
  self: WriterIdentity.WriterIdentity
): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const cutoff = Duration.isFinite(olderThan) ? now - Duration.toMillis(olderThan) : Number.NEGATIVE_INFINITY
    const isAbandoned = async (path: string, name: RegExpExecArray): Promise<boolean> => {
      const writer = name[1] === undefined ? undefined : WriterIdentity.parse(name[1])
      const verdict = writer === undefined ? "unknown" : await WriterIdentity.judge(writer, self)
      if (verdict !== "unknown") return verdict === "dead"
      const stat = await Fs.stat(path).catch(() => undefined)
      return stat !== undefined && stat.mtimeMs < cutoff
    }
    const walk = async (directory: string): Promise<void> => {
      const entries = await readDirectoryIfPresent(directory)
      for (const entry of entries) {
        const path = Path.join(directory, entry.name)
        const name = entry.isFile() ? temporaryName.exec(entry.name) : null
        if (entry.isDirectory()) {
          await walk(path)
        } else if (name !== null && (await isAbandoned(path, name))) {
          await Fs.rm(path, { force: true })
        }
      }
    }
    return Effect.tryPromise(() => walk(root)).pipe(
      Effect.catchAll((error) => Effect.logWarning("FileSystemStore: sweeping temporary files failed", error.cause))
    )
  })

/** A store in a local directory. */
export const layer = (options: Options): Layer.Layer<ArtifactStore.ArtifactStore, ArtifactStore.ArtifactStoreError> =>
  Layer.effect(ArtifactStore.ArtifactStore, make(options))

/** A store in a directory named by configuration (default key `REELKIT_STORE_ROOT`). */
export const layerConfig = (
  config: { readonly root?: Config.Config<string> | undefined } = {}
): Layer.Layer<ArtifactStore.ArtifactStore, ArtifactStore.ArtifactStoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(config.root ?? Config.string("REELKIT_STORE_ROOT"), (root) => layer({ root })))
