import * as FiberRef from "effect/FiberRef"
import * as Fs from "node:fs/promises"

/** fsyncs one directory, so that the entries created in it survive a power loss. */
export const fsyncDirectory = async (directory: string): Promise<void> => {
  const handle = await Fs.open(directory, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * How the file-system store fsyncs a directory. A fiber ref so that tests can record which
 * directories were synced, which no file-system observation can tell.
 */
export const currentSyncDirectory: FiberRef.FiberRef<(directory: string) => Promise<void>> =
  FiberRef.unsafeMake(fsyncDirectory)
