import { reelkitProject } from "@reelkit/vitest-config"

export default reelkitProject()
