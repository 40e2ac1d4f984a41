import { reelkitProject } from "@reelkit/vitest-config"

// The CLI tests spawn the real binary, and the browser test drives chromium: give them time. The
// binary's bundle is built once first (test/globalSetup.ts).
export default reelkitProject({ test: { testTimeout: 120_000, globalSetup: ["./test/globalSetup.ts"] } })
