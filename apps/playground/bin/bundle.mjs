// The prebuilt CLI: esbuild bundles src/main.ts (every @reelkit package from its sources, through
// tsconfig.run.json's `paths`, and every library) into ESM chunks under dist/cli/, split at the
// CLI's dynamic imports so a command loads only what it uses. Running that bundle starts in a
// fraction of the time tsx needs to compile the sources on every run.
//
// `ensureBundle()` returns the entry of a bundle that matches the sources: it compares the size and
// modification time of every workspace file of the last build (and of the lockfile and the install
// record) with what the manifest recorded, and builds again when anything moved. So the CLI works
// right after install and after any edit, with no build step to remember.
import { createRequire } from "node:module"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const appDir = fileURLToPath(new URL("..", import.meta.url))
const rootDir = Path.resolve(appDir, "../..")
const distDir = Path.join(appDir, "dist", "cli")
const manifestFile = Path.join(distDir, "manifest.json")

// Dependencies change only through an install, which rewrites these.
const installRecords = [Path.join(rootDir, "pnpm-lock.yaml"), Path.join(rootDir, "node_modules", ".modules.yaml")]

const stampOf = (files) =>
  files
    .map((file) => {
      try {
        const stat = Fs.statSync(file)
        return `${file}:${stat.size}:${stat.mtimeMs}`
      } catch {
        return `${file}:missing`
      }
    })
    .join("\n")

const readManifest = () => {
  try {
    return JSON.parse(Fs.readFileSync(manifestFile, "utf8"))
  } catch {
    return undefined
  }
}

/** The entry file of the current bundle, or undefined when the sources moved since it was built. */
export const currentBundle = () => {
  const manifest = readManifest()
  if (manifest === undefined) return undefined
  const entry = Path.join(distDir, manifest.dir, "main.js")
  if (!Fs.existsSync(entry) || stampOf(manifest.files) !== manifest.stamp) return undefined
  return entry
}

// better-sqlite3 is a native addon: it stays a plain import, resolved where @effect/sql-sqlite-node finds it.
const nativeAddon = () => {
  const sqlite = createRequire(
    createRequire(Path.join(appDir, "package.json")).resolve("@effect/sql-sqlite-node/package.json")
  )
  const resolved = sqlite.resolve("better-sqlite3")
  return {
    name: "reelkit-native-addons",
    setup(build) {
      build.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: resolved, external: true }))
    }
  }
}

// Every @reelkit barrel is a list of `export * as Module from "./Module.js"`. esbuild keeps a
// barrel's namespaces together, so `import { TaskError } from "@reelkit/core"` would load all of
// core (and its client, scheduler, callbacks) into whatever chunk needs TaskError. This rewrites
// such imports to the modules themselves (`import * as TaskError from "@reelkit/core/TaskError"`),
// the same module objects, so each chunk holds only what it uses.
const barrelNamespaces = (pkg) => {
  try {
    const index = Fs.readFileSync(Path.join(rootDir, "packages", pkg, "src", "index.ts"), "utf8")
    return new Set(
      [...index.matchAll(/export \* as (\w+) from "\.\/(\w+)\.js"/g)]
        .filter((match) => match[1] === match[2])
        .map((match) => match[1])
    )
  } catch {
    return new Set()
  }
}

const directImports = () => {
  const cache = new Map()
  const namespacesOf = (pkg) => {
    if (!cache.has(pkg)) cache.set(pkg, barrelNamespaces(pkg))
    return cache.get(pkg)
  }
  return {
    name: "reelkit-direct-imports",
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.includes("node_modules")) return undefined
        const source = Fs.readFileSync(args.path, "utf8")
        const contents = source.replace(/^import \{([^}]*)\} from "@reelkit\/([\w-]+)"$/gm, (statement, list, pkg) => {
          const names = namespacesOf(pkg)
          const specifiers = list
            .split(",")
            .map((part) => part.trim())
            .filter((part) => part !== "")
          const parsed = specifiers.map((part) => ({
            type: part.startsWith("type "),
            name: part.replace(/^type\s+/, "")
          }))
          if (parsed.some((specifier) => !names.has(specifier.name))) return statement
          return parsed
            .filter((specifier) => !specifier.type)
            .map((specifier) => `import * as ${specifier.name} from "@reelkit/${pkg}/${specifier.name}"`)
            .join("\n")
        })
        return { contents, loader: "ts" }
      })
    }
  }
}

/** Builds the bundle into a fresh directory and points the manifest at it (atomically, by rename). */
export const build = async () => {
  const esbuild = await import("esbuild")
  Fs.mkdirSync(distDir, { recursive: true })
  const dir = `build-${Date.now().toString(36)}-${process.pid}`
  const outdir = Path.join(distDir, dir)
  const result = await esbuild.build({
    entryPoints: { main: Path.join(appDir, "src", "main.ts") },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outdir,
    tsconfig: Path.join(appDir, "tsconfig.run.json"),
    metafile: true,
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: "warning",
    // Some CommonJS libraries call `require`: give ESM chunks one.
    banner: {
      js: "import { createRequire as __reelkitCreateRequire } from 'node:module'; const require = __reelkitCreateRequire(import.meta.url);"
    },
    // OpenTelemetry's packages are CommonJS, imported dynamically by name: left to Node, whose
    // ESM loader gives them their named exports (a bundled CommonJS chunk has only `default`).
    external: ["@opentelemetry/*"],
    plugins: [nativeAddon(), directImports()]
  })
  // FakeApixo finds its sample clip by searching upward from its module for fixtures/sample.mp4.
  Fs.mkdirSync(Path.join(outdir, "fixtures"))
  Fs.copyFileSync(
    Path.join(rootDir, "packages", "testing", "fixtures", "sample.mp4"),
    Path.join(outdir, "fixtures", "sample.mp4")
  )
  const files = [
    ...Object.keys(result.metafile.inputs)
      .filter((input) => !input.includes("node_modules"))
      .map((input) => Path.resolve(process.cwd(), input)),
    ...installRecords
  ]
  const manifest = { dir, files, stamp: stampOf(files) }
  const temporary = `${manifestFile}.${process.pid}`
  Fs.writeFileSync(temporary, JSON.stringify(manifest))
  Fs.renameSync(temporary, manifestFile)
  removeOldBuilds(dir)
  return Path.join(outdir, "main.js")
}

// Removes builds older than an hour: a process started from one may still load its chunks lazily
// (a concurrent run, a `serve` left running), and an hour-old build has long been superseded.
const removeOldBuilds = (keep) => {
  const cutoff = Date.now() - 60 * 60 * 1000
  for (const name of Fs.readdirSync(distDir)) {
    if (!name.startsWith("build-") || name === keep) continue
    const path = Path.join(distDir, name)
    if (Fs.statSync(path).mtimeMs < cutoff) Fs.rmSync(path, { recursive: true, force: true })
  }
}

/** The entry of a bundle matching the sources, built first when needed. */
export const ensureBundle = async () => currentBundle() ?? (await build())

// `node bin/bundle.mjs` builds the bundle now (the package's `build` script).
if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${Path.relative(process.cwd(), await build())}\n`)
}
