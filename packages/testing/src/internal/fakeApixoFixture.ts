/**
 * Locates the package's MP4 fixture at run time, wherever this module runs from: `src/internal`
 * under vitest, `dist/esm/internal` or `dist/cjs/internal` once installed.
 */
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** The fixture's file name inside `fixtures/`. */
export const sampleVideoFile = "sample.mp4"

// The CJS build is derived from the ESM output by esbuild, where `import.meta` is empty; CJS has
// `__dirname` instead, and ESM never defines it, so checking it first is safe in both.
const moduleDir = (): string => (typeof __dirname === "string" ? __dirname : dirname(fileURLToPath(import.meta.url)))

/** Absolute path of the sample MP4, found by searching upward for `fixtures/sample.mp4`. */
export const findSampleVideo = (): string => {
  let dir = moduleDir()
  for (let depth = 0; depth < 6; depth++) {
    const candidate = join(dir, "fixtures", sampleVideoFile)
    if (existsSync(candidate)) return candidate
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  throw new Error(`@reelkit/testing: fixtures/${sampleVideoFile} not found above ${moduleDir()}`)
}
