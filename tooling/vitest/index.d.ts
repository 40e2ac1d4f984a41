import type { UserWorkspaceConfig } from "vitest/config"
/** Builds a package's vitest project config, merged with package-specific overrides. */
export declare const reelkitProject: (overrides?: UserWorkspaceConfig) => UserWorkspaceConfig
