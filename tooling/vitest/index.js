// Shared vitest project config: tests run against each package's TypeScript sources, so a test
// never needs a prior build. `@reelkit/<pkg>` maps to `packages/<pkg>/src/index.ts` and
// `@reelkit/<pkg>/<Module>` to `packages/<pkg>/src/<Module>.ts`.
import { fileURLToPath } from "node:url"
import { defineProject, mergeConfig } from "vitest/config"

const packagesDir = fileURLToPath(new URL("../../packages", import.meta.url))

/** Builds a package's vitest project config, merged with package-specific overrides. */
export const reelkitProject = (overrides = {}) =>
  mergeConfig(
    defineProject({
      resolve: {
        alias: [
          { find: /^@reelkit\/([^/]+)$/, replacement: `${packagesDir}/$1/src/index.ts` },
          { find: /^@reelkit\/([^/]+)\/(.+)$/, replacement: `${packagesDir}/$1/src/$2.ts` }
        ]
      },
      test: {
        include: ["test/**/*.test.ts"],
        testTimeout: 30_000,
        hookTimeout: 60_000
      }
    }),
    overrides
  )
