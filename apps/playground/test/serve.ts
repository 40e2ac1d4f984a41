// Helpers for tests that run `reelkit serve` as a child process and talk to it as a browser or a
// script would.
import { type AddressInfo, createServer } from "node:net"
import { childEnv, startCli, waitForOutput } from "./utils.js"

/** A free TCP port on loopback (for a server whose URL must be known before it starts). */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })

/** A running `reelkit serve`: its base URL, the token it printed, and how to stop it. */
export interface Served {
  readonly base: string
  readonly token: string
  readonly output: { readonly stdout: string; readonly stderr: string }
  readonly stop: () => Promise<void>
  /** Whether the process is still running. */
  readonly alive: () => boolean
}

/** Starts `reelkit serve` with `extra` settings and waits for its start-up line (the URL with `?token=`). */
export const startServe = async (args: ReadonlyArray<string>, extra: Record<string, string>): Promise<Served> => {
  const served = startCli(["serve", ...args], childEnv(extra))
  await waitForOutput(served.child, served.output, (output) => /serving http:\/\/\S+/.test(output.stderr))
  const url = new URL(/serving (http:\/\/\S+)/.exec(served.output.stderr)![1]!)
  let exited = false
  served.child.once("exit", () => {
    exited = true
  })
  return {
    base: url.origin,
    token: url.searchParams.get("token") ?? extra.REELKIT_SERVE_TOKEN ?? "",
    output: served.output,
    alive: () => !exited,
    stop: async () => {
      served.child.kill("SIGTERM")
      await served.finished
    }
  }
}

/** Headers that authenticate a script. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

/** A fresh rendering of the form: its nonce and the CSRF token made for it. */
export const formTokens = async (served: Served): Promise<{ submission: string; csrf: string }> => {
  const html = await (await fetch(served.base, { headers: bearer(served.token) })).text()
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1]
  return { submission: field("submission")!, csrf: field("csrf")! }
}

/** POSTs a form to `/tasks` as a script, with the fields given (no redirects followed). */
export const postForm = (served: Served, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${served.base}/tasks`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...bearer(served.token), ...headers },
    body: new URLSearchParams(fields).toString(),
    redirect: "manual"
  })
