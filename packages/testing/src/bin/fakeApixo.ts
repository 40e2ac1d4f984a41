#!/usr/bin/env node
/**
 * `reelkit-fake-apixo --port N`: runs the fake apixo server for manual use until SIGINT/SIGTERM.
 *
 * @since 0.1.0
 */
import { main } from "../internal/fakeApixoCli.js"

main(process.argv.slice(2)).then(
  // Exit at once: idle keep-alive sockets of callback POSTs would otherwise hold the process a while.
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`reelkit-fake-apixo: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
  }
)
