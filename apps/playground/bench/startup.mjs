// Start-up of `reelkit list --json`, `status <unknown task>` and `--help`: wall time per run, from
// the prebuilt bundle (bin/reelkit.mjs as users run it) beside the same commands from the sources
// through tsx (REELKIT_FROM_SOURCES=1, how every run started before) and beside `node -e 0`, all
// measured in this run. Prints figures and asserts nothing.
//   node apps/playground/bench/startup.mjs [runs]   (default 10)
import { spawnSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const runs = Number(process.argv[2] ?? 10)
const binary = fileURLToPath(new URL("../bin/reelkit.mjs", import.meta.url))
const { ensureBundle, currentBundle } = await import("../bin/bundle.mjs")
await ensureBundle()

const home = mkdtempSync(join(tmpdir(), "reelkit-bench-"))
// No key: `status` of an unknown task builds the whole wiring (with the in-process fake as the
// backend) and fails at the ledger lookup; `list` opens only the ledger.
const env = { ...process.env, REELKIT_HOME: home, APIXO_API_KEY: "", NO_COLOR: "1" }

const time = (args, extraEnv = {}) => {
  const samples = []
  for (let run = 0; run < runs; run++) {
    const started = process.hrtime.bigint()
    spawnSync(process.execPath, args, { env: { ...env, ...extraEnv }, stdio: "ignore" })
    samples.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  samples.sort((left, right) => left - right)
  return { median: samples[Math.floor(samples.length / 2)], min: samples[0], max: samples.at(-1) }
}

const format = ({ max, median, min }) =>
  `median ${(median / 1000).toFixed(3)} s  (min ${(min / 1000).toFixed(3)}, max ${(max / 1000).toFixed(3)})`

const commands = [["list", "--json"], ["status", "tk_unknown"], ["--help"]]
console.log(`runs per figure: ${runs}`)
console.log(`node -e 0                      ${format(time(["-e", "0"]))}`)
for (const command of commands) {
  const label = `reelkit ${command.join(" ")}`.padEnd(30)
  console.log(`${label} bundle  ${format(time([binary, ...command]))}`)
  console.log(`${"".padEnd(30)} tsx     ${format(time([binary, ...command], { REELKIT_FROM_SOURCES: "1" }))}`)
}
if (currentBundle() === undefined) console.log("(the sources moved during the run: some bundle runs rebuilt it)")
