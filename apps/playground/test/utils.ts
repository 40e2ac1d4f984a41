// Helpers for tests that run the real `reelkit` binary as a child process.
import { type ChildProcess, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The app's directory. */
export const appDir = fileURLToPath(new URL("..", import.meta.url))

/** The binary `pnpm reelkit` runs. */
export const binary = join(appDir, "bin", "reelkit.mjs")

/** A fresh `REELKIT_HOME`. */
export const tempHome = (): string => mkdtempSync(join(tmpdir(), "reelkit-playground-"))

/** The environment of a child: this process's, without any apixo, Vidu or reelkit settings, plus `extra`. */
export const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("APIXO_") && !name.startsWith("VIDU_") && !name.startsWith("REELKIT_")) env[name] = value
  }
  return { ...env, ...extra }
}

/** What a finished child left. */
export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Starts the CLI; `output` collects what it printed so far. */
export const startCli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv) => {
  const child = spawn(process.execPath, [binary, ...args], { cwd: appDir, env, stdio: ["ignore", "pipe", "pipe"] })
  const output = { stdout: "", stderr: "" }
  child.stdout!.on("data", (chunk: Buffer) => {
    output.stdout += chunk.toString("utf8")
  })
  child.stderr!.on("data", (chunk: Buffer) => {
    output.stderr += chunk.toString("utf8")
  })
  const finished = new Promise<Finished>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, ...output }))
  })
  return { child, output, finished }
}

/** Runs the CLI to its end. */
export const runCli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Promise<Finished> =>
  startCli(args, env).finished

/** Resolves once `predicate` holds for the child's output (checked on every chunk), or rejects when it exits. */
export const waitForOutput = (
  child: ChildProcess,
  output: { readonly stdout: string; readonly stderr: string },
  predicate: (output: { readonly stdout: string; readonly stderr: string }) => boolean
): Promise<void> =>
  new Promise((resolve, reject) => {
    const check = () => {
      if (predicate(output)) {
        child.stdout?.off("data", check)
        child.stderr?.off("data", check)
        child.off("close", closed)
        resolve()
      }
    }
    const closed = () => reject(new Error(`the child exited first; stderr: ${output.stderr}`))
    child.stdout?.on("data", check)
    child.stderr?.on("data", check)
    child.on("close", closed)
    check()
  })

/** The hex SHA-256 of a file. */
export const sha256OfFile = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex")
