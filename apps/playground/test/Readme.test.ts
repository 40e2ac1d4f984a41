// Runs the root README's fenced shell blocks in a scratch clone of the repository (its committed
// state), with a PATH holding no pnpm and no node_modules/.bin: what a fresh machine with only Node
// and npm has. Each block is tagged in the README by the comment before it:
// - `install` and `cli` run, in order, as `bash -e` scripts (the install takes about 20 s with a
//   warm pnpm store, much longer on a cold one);
// - `long-running` lines each start, must print the line saying where they listen, and are then
//   stopped with SIGINT;
// - `long` blocks (the whole verify gate, benchmarks) run only with REELKIT_README_LONG=1.
import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { afterAll } from "vitest"
import { appDir, childEnv } from "./utils.js"

const repoDir = join(appDir, "..", "..")

/** The README's tagged shell blocks, in order. */
const blocks = (clone: string): ReadonlyArray<{ readonly tag: string; readonly body: string }> =>
  [...readFileSync(join(clone, "README.md"), "utf8").matchAll(/<!-- readme-test: (\S+) -->\n```sh\n(.*?)```/gs)].map(
    (match) => ({ tag: match[1]!, body: match[2]! })
  )

const scratch = mkdtempSync(join(tmpdir(), "reelkit-readme-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

// A fresh machine: the system's PATH without any pnpm or node_modules/.bin, and no reelkit settings.
const freshPath = (process.env.PATH ?? "")
  .split(delimiter)
  .filter((entry) => !entry.includes("node_modules") && !entry.includes("pnpm"))
  .join(delimiter)

const env = (clone: string) => childEnv({ PATH: freshPath, REELKIT_HOME: join(clone, ".reelkit"), NO_COLOR: "1" })

const runBlock = (clone: string, body: string) =>
  new Promise<{ readonly code: number | null; readonly output: string }>((resolve, reject) => {
    const child = spawn("bash", ["-e", "-c", body], { cwd: clone, env: env(clone), stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, output }))
  })

// Starts a long-running line in its own process group, waits for it to say where it listens, then
// sends SIGINT to the whole group, as Ctrl-C in a terminal does (npm itself does not pass it on).
const runUntilListening = (clone: string, line: string) =>
  new Promise<{
    readonly listening: boolean
    readonly code: number | null
    readonly signal: NodeJS.Signals | null
    readonly output: string
  }>((resolve, reject) => {
    const child = spawn("bash", ["-c", `exec ${line}`], {
      cwd: clone,
      env: env(clone),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    })
    let output = ""
    let listening = false
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      if (!listening && /(serving|listening on) http:\/\//.test(output)) {
        listening = true
        process.kill(-child.pid!, "SIGINT")
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ listening, code, signal, output }))
  })

describe("the root README", () => {
  it("every fenced shell command works in a fresh clone with only Node and npm", { timeout: 900_000 }, async () => {
    const clone = join(scratch, "reelkit")
    execFileSync("git", ["clone", "--quiet", repoDir, clone])
    const all = blocks(clone)
    // Every shell block carries a tag, so none is left out of this test by accident.
    const shellBlocks = readFileSync(join(clone, "README.md"), "utf8").match(/^```(sh|bash|shell)$/gm) ?? []
    expect(all).toHaveLength(shellBlocks.length)
    expect(all.map((block) => block.tag)).toEqual(expect.arrayContaining(["install", "cli", "long-running"]))
    for (const block of all) {
      if (block.tag === "long" && process.env.REELKIT_README_LONG !== "1") continue
      if (block.tag === "long-running") {
        for (const line of block.body.split("\n").filter((text) => text.trim() !== "")) {
          const run = await runUntilListening(clone, line)
          expect(run.listening, `${line}\n${run.output}`).toBe(true)
          // Stopped by the SIGINT: npm itself dies of it, the CLI exits 130 (or 0 for a clean stop).
          expect(run.signal === "SIGINT" || run.code === 0 || run.code === 130, `${line}\n${run.output}`).toBe(true)
        }
        continue
      }
      const run = await runBlock(clone, block.body)
      expect(run.code, `${block.tag} block:\n${block.body}\n${run.output}`).toBe(0)
      if (block.tag === "install") expect(run.output).toMatch(/tk_\S+\s+completed/)
      if (block.tag === "cli") expect(run.output).toContain("0.8 USD (8 s at 0.1 USD per second, standard 720p)")
    }
  })
})
