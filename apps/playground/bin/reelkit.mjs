#!/usr/bin/env node
// Runs the CLI from a prebuilt bundle (bin/bundle.mjs), rebuilt on the spot whenever a source moved,
// so it works right after install, with no build, and starts fast. When the bundle cannot be built
// (esbuild missing, a build error), it falls back to the sources through tsx, as before.
// REELKIT_FROM_SOURCES=1 forces the tsx path (to compare start-up, or to debug).
import { pathToFileURL } from "node:url"
import { ensureBundle } from "./bundle.mjs"
import { stopWithLauncher } from "./launcher.mjs"

stopWithLauncher()

const fromSources = async (reason) => {
  if (reason !== undefined) process.stderr.write(`reelkit: running from the sources (${reason}).\n`)
  const { register } = await import("tsx/esm/api")
  register({ tsconfig: new URL("../tsconfig.run.json", import.meta.url).pathname })
  await import("../src/main.ts")
}

if (process.env.REELKIT_FROM_SOURCES === "1") await fromSources(undefined)
else {
  let entry
  try {
    entry = await ensureBundle()
  } catch (error) {
    await fromSources(`the bundle could not be built: ${error instanceof Error ? error.message.split("\n")[0] : error}`)
  }
  if (entry !== undefined) {
    try {
      await import(pathToFileURL(entry).href)
    } catch (error) {
      // Node would print the failing line of a minified chunk: one sentence says more.
      const message = error instanceof Error ? error.message.split("\n")[0] : String(error)
      process.stderr.write(
        `reelkit: the CLI failed to start (${message}); REELKIT_FROM_SOURCES=1 runs it from the sources, with a stack trace.\n`
      )
      process.exitCode = 1
    }
  }
}
