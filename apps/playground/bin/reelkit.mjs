#!/usr/bin/env node
// Runs the CLI from its TypeScript sources through tsx, with every @reelkit package resolved to
// its sources as well (tsconfig.run.json's `paths`), so it works right after install, with no build.
import { register } from "tsx/esm/api"

register({ tsconfig: new URL("../tsconfig.run.json", import.meta.url).pathname })
await import("../src/main.ts")
