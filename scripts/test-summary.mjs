#!/usr/bin/env node
// Runs every vitest project once and prints the closing line CI reads: "N passed, N failed"
// (", N skipped" when some were). Fails when a test failed, when vitest failed, or when no test ran.
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, rmSync } from "node:fs"

const reportFile = ".tmp/vitest-report.json"
mkdirSync(".tmp", { recursive: true })
rmSync(reportFile, { force: true })

const run = spawnSync(
  "vitest",
  ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${reportFile}`, ...process.argv.slice(2)],
  { stdio: "inherit", shell: false }
)

let report
try {
  report = JSON.parse(readFileSync(reportFile, "utf8"))
} catch (error) {
  console.error(`No vitest report was written (${error.message}).`)
  console.log("0 passed, 1 failed")
  process.exit(1)
}

const passed = report.numPassedTests ?? 0
const failed = (report.numFailedTests ?? 0) + (report.numRuntimeErrorTestSuites ?? 0)
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`)

if (passed === 0) {
  console.error("No test ran.")
  process.exit(1)
}
process.exit(failed > 0 || run.status !== 0 ? 1 : 0)
