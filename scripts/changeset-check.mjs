#!/usr/bin/env node
// Proves the release flow on a scratch copy of the workspace's manifests and pending changesets:
// `changeset version` must bump every published package that has a changeset, bump the dependents
// of bumped packages, write changelogs, and leave the private playground alone.
import { execFileSync } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

const root = resolve(import.meta.dirname, "..")
const scratch = mkdtempSync(join(tmpdir(), "reelkit-changeset-"))
const manifestDirs = ["packages", "apps", "tooling"].flatMap((group) =>
  readdirSync(join(root, group))
    .map((name) => join(group, name))
    .filter((dir) => existsSync(join(root, dir, "package.json")))
)
const read = (base, dir) => JSON.parse(readFileSync(join(base, dir, "package.json"), "utf8"))

try {
  for (const file of ["package.json", "pnpm-workspace.yaml", ".changeset"]) {
    cpSync(join(root, file), join(scratch, file), { recursive: true })
  }
  for (const dir of manifestDirs) cpSync(join(root, dir, "package.json"), join(scratch, dir, "package.json"))
  execFileSync("git", ["init", "-q"], { cwd: scratch })
  execFileSync(join(root, "node_modules/.bin/changeset"), ["version"], { cwd: scratch, stdio: "inherit" })

  const problems = []
  for (const dir of manifestDirs) {
    const before = read(root, dir)
    const after = read(scratch, dir)
    if (before.private === true) {
      if (before.version !== after.version) problems.push(`${before.name} is private but was bumped`)
      continue
    }
    if (after.version === before.version) problems.push(`${before.name} was not bumped (${before.version})`)
    else console.log(`${before.name}: ${before.version} -> ${after.version}`)
    if (!existsSync(join(scratch, dir, "CHANGELOG.md"))) problems.push(`${before.name} has no CHANGELOG.md`)
  }
  const pending = readdirSync(join(scratch, ".changeset")).filter(
    (file) => file.endsWith(".md") && file !== "README.md"
  )
  if (pending.length > 0) problems.push(`changesets left unconsumed: ${pending.join(", ")}`)

  // Second round: a minor change of core alone must bump the packages that depend on it.
  const firstRound = Object.fromEntries(manifestDirs.map((dir) => [read(scratch, dir).name, read(scratch, dir)]))
  writeFileSync(
    join(scratch, ".changeset/core-only.md"),
    '---\n"@reelkit/core": minor\n---\n\nA change of core alone.\n'
  )
  execFileSync(join(root, "node_modules/.bin/changeset"), ["version"], { cwd: scratch, stdio: "ignore" })
  for (const dir of manifestDirs) {
    const before = firstRound[read(root, dir).name]
    const after = read(scratch, dir)
    const dependsOnCore = Object.keys({ ...before.dependencies, ...before.peerDependencies }).includes("@reelkit/core")
    if (before.private === true || (!dependsOnCore && after.name !== "@reelkit/core")) continue
    if (after.version === before.version) problems.push(`${after.name} was not bumped after a minor change of core`)
    else console.log(`after a minor change of core: ${after.name} ${before.version} -> ${after.version}`)
  }
  if (problems.length > 0) {
    console.error(problems.join("\n"))
    process.exit(1)
  }
  console.log(
    "changeset version bumps every published package and their dependents, writes changelogs, ignores the playground"
  )
} finally {
  rmSync(scratch, { recursive: true, force: true })
}
