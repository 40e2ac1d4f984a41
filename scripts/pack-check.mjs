#!/usr/bin/env node
// Packs every published package the way `pnpm publish` would, then checks the tarballs:
// publint (package.json and files), @arethetypeswrong/cli (types for import and require under
// node16 resolution), and a consumer project: an empty directory where npm installs the tarballs
// and runs each package's `consumer/smoke.mjs` and `consumer/smoke.cjs` against them.
import { execFileSync } from "node:child_process"
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

const root = resolve(import.meta.dirname, "..")
const packDir = join(root, ".tmp/packs")
rmSync(packDir, { recursive: true, force: true })
mkdirSync(packDir, { recursive: true })

const run = (command, args, options = {}) => execFileSync(command, args, { stdio: "inherit", ...options })

const packages = readdirSync(join(root, "packages"))
  .map((name) => join(root, "packages", name))
  .filter((dir) => existsSync(join(dir, "package.json")))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
  .filter(({ manifest }) => manifest.private !== true)

const tarballs = []
for (const { dir, manifest } of packages) {
  console.log(`\n--- ${manifest.name}`)
  const output = execFileSync("pnpm", ["pack", "--pack-destination", packDir], { cwd: dir, encoding: "utf8" })
  const tarball = output.trim().split("\n").pop().trim()
  tarballs.push({ dir, manifest, tarball })
  run("publint", ["run", "--strict", tarball], { cwd: dir })
  run("attw", [tarball, "--profile", "node16", "--format", "table-flipped"], { cwd: dir })
}

// The consumer: a fresh npm project outside the workspace, so nothing resolves from it.
const consumerDir = mkdtempSync(join(tmpdir(), "reelkit-consumer-"))
try {
  writeFileSync(join(consumerDir, "package.json"), JSON.stringify({ name: "consumer", private: true }, null, 2))
  const peers = new Set()
  for (const { manifest } of tarballs) {
    for (const [name, range] of Object.entries(manifest.peerDependencies ?? {})) {
      const pinned = manifest.devDependencies?.[name]
      if (!manifest.peerDependenciesMeta?.[name]?.optional) peers.add(`${name}@${pinned ?? range}`)
    }
  }
  console.log(`\n--- consumer project in ${consumerDir}`)
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs.map((t) => t.tarball), ...peers], {
    cwd: consumerDir
  })
  let smokes = 0
  for (const { dir, manifest } of tarballs) {
    for (const file of ["smoke.mjs", "smoke.cjs"]) {
      const source = join(dir, "consumer", file)
      if (!existsSync(source)) continue
      const target = join(consumerDir, `${manifest.name.replace("@reelkit/", "")}-${file}`)
      copyFileSync(source, target)
      console.log(`node ${target}`)
      run("node", [target], { cwd: consumerDir })
      smokes++
    }
  }
  if (smokes === 0) throw new Error("No consumer smoke test ran")
  console.log(`\n${smokes} consumer smoke files passed against the packed tarballs`)
} finally {
  rmSync(consumerDir, { recursive: true, force: true })
}
