// Builds the CLI's bundle once before the suites spawn it, so concurrent tests do not each build it.
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export default function setup(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL("../bin/bundle.mjs", import.meta.url))], { stdio: "ignore" })
}
