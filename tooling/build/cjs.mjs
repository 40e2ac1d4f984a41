#!/usr/bin/env node
// Derives the CommonJS build from tsc's ESM output: every dist/esm/**/*.js becomes dist/cjs/**/*.js
// (esbuild, per file, no bundling) and every .d.ts is copied beside it, so `require` consumers get
// declarations that TypeScript reads as CommonJS (dist/cjs/package.json says so).
import { transform } from "esbuild"
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { dirname, join, relative } from "node:path"

const packageDir = process.cwd()
const esmDir = join(packageDir, "dist/esm")
const cjsDir = join(packageDir, "dist/cjs")

const walk = async (dir) => {
  const entries = await readdir(dir, { withFileTypes: true })
  const files = await Promise.all(
    entries.map((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)]))
  )
  return files.flat()
}

await rm(cjsDir, { recursive: true, force: true })
for (const file of await walk(esmDir)) {
  const target = join(cjsDir, relative(esmDir, file))
  await mkdir(dirname(target), { recursive: true })
  if (file.endsWith(".js")) {
    const source = await readFile(file, "utf8")
    const result = await transform(source, { format: "cjs", platform: "node", target: "node20", sourcefile: file })
    await writeFile(target, result.code)
  } else if (file.endsWith(".d.ts") || file.endsWith(".d.ts.map")) {
    await copyFile(file, target)
  }
}
await writeFile(join(cjsDir, "package.json"), `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`)
await writeFile(join(esmDir, "package.json"), `${JSON.stringify({ type: "module" }, null, 2)}\n`)
