import { reelkitProject } from "@reelkit/vitest-config"

// The CLI tests spawn the real binary, and the browser test drives chromium: give them time.
export default reelkitProject({ test: { testTimeout: 120_000 } })
