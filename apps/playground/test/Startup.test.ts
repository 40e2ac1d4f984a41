// Start-up: `list` and `--help` load only the bundle's chunks they need. The chunks a command
// reaches by static imports (from the entry, plus the command's own lazily imported module) must
// hold neither the fake apixo server, nor the apixo client, nor the web server: those are what made
// every command take seconds. Wall-clock time is measured by bench/startup.mjs, not asserted here.
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { readFileSync, readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { appDir } from "./utils.js"

// The current bundle's entry (the global setup built it).
const entry = (): string =>
  execFileSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const m = await import(${JSON.stringify(join(appDir, "bin", "bundle.mjs"))}); console.log(await m.ensureBundle())`
    ],
    { encoding: "utf8" }
  ).trim()

// Every file `file` loads through static imports, itself included.
const staticClosure = (file: string, seen = new Set<string>()): Set<string> => {
  if (seen.has(file)) return seen
  seen.add(file)
  const text = readFileSync(file, "utf8")
  for (const match of text.matchAll(/(?:from|import)\s*"(\.\/[^"]+\.js)"/g)) {
    staticClosure(join(dirname(file), match[1]!), seen)
  }
  return seen
}

// Every file `file` can load, its dynamic imports (`import("./chunk.js")`) followed too.
const fullClosure = (file: string, seen = new Set<string>()): Set<string> => {
  if (seen.has(file)) return seen
  seen.add(file)
  const text = readFileSync(file, "utf8")
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*"(\.\/[^"]+\.js)"/g)) {
    fullClosure(join(dirname(file), match[1]!), seen)
  }
  return seen
}

// Markers of the heavy parts, as they appear in the bundled code.
const markers = {
  "the fake apixo server": "Cannot read the sample video fixture",
  "the apixo client": "apixo accepted the submit but sent no taskId",
  "the web server": "text/event-stream"
}

const loaded = (files: Set<string>) =>
  Object.entries(markers)
    .filter(([, marker]) => [...files].some((file) => readFileSync(file, "utf8").includes(marker)))
    .map(([name]) => name)

describe("start-up", () => {
  it("--help and list load neither the fake, nor the apixo client, nor the web server; generate does", () => {
    const main = entry()
    const directory = dirname(main)
    const chunkOf = (module: string) => {
      const name = readdirSync(directory).find((file) => file.startsWith(`${module}-`) && file.endsWith(".js"))
      expect(name, module).toBeDefined()
      return join(directory, name!)
    }
    expect(loaded(staticClosure(main))).toEqual([])
    expect(loaded(staticClosure(chunkOf("ListCommand"), staticClosure(main)))).toEqual([])
    // The check can fail: the commands that do talk to apixo reach these parts (through the
    // registry's lazy load of a pair's provider and fake, when a command runs).
    expect(loaded(fullClosure(chunkOf("Commands")))).toEqual(
      expect.arrayContaining(["the fake apixo server", "the apixo client"])
    )
  })
})
