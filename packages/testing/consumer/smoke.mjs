// ESM import of @reelkit/testing from its packed tarball, driving the scripted provider.
import { ScriptedProvider } from "@reelkit/testing"
import { Effect } from "effect"
import assert from "node:assert/strict"

const recording = await Effect.runPromise(
  Effect.gen(function* () {
    const scripted = yield* ScriptedProvider.make()
    const prepared = yield* scripted.provider.prepare({ input: { prompt: "x" } })
    const accepted = yield* scripted.provider.submit({ taskKey: "tk_1", wire: prepared.wire })
    const status = yield* scripted.provider.status(accepted.remoteTaskId)
    assert.equal(status._tag, "Succeeded")
    return yield* scripted.recording
  })
)
assert.equal(recording.submits.length, 1)
console.log("@reelkit/testing ESM ok")

// The fake apixo server from the tarball: submit, status, download the bundled MP4.
import { FakeApixo } from "@reelkit/testing"
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"

const fake = await FakeApixo.start({ timings: { processingAfter: 0, completeAfter: 0 } })
const auth = { authorization: "Bearer test-key" }
const submitted = await fetch(`${fake.url}/api/v1/generateTask/vidu-q3`, {
  method: "POST",
  headers: { ...auth, "content-type": "application/json" },
  body: JSON.stringify({ input: { mode: "text-to-video", prompt: "x", duration: 3 } })
}).then((response) => response.json())
const status = await fetch(`${fake.url}/api/v1/statusTask/vidu-q3?taskId=${submitted.data.taskId}`, {
  headers: auth
}).then((response) => response.json())
assert.equal(status.data.state, "success")
const download = await fetch(JSON.parse(status.data.resultJson).resultUrls[0])
const mp4 = Buffer.from(await download.arrayBuffer())
assert.equal(download.headers.get("content-type"), "video/mp4")
assert.equal(mp4.subarray(4, 8).toString("latin1"), "ftyp")
assert.deepEqual(
  fake.bills.map((bill) => bill.seconds),
  [3]
)
await fake.close()

// The CLI (the package's bin): starts, prints its URL, answers, stops on SIGTERM.
const manifestPath = createRequire(import.meta.url).resolve("@reelkit/testing/package.json")
const manifest = createRequire(import.meta.url)("@reelkit/testing/package.json")
const bin = join(dirname(manifestPath), manifest.bin["reelkit-fake-apixo"])
const child = spawn(process.execPath, [bin, "--port", "0", "--key", "cli-key"], {
  stdio: ["ignore", "pipe", "inherit"]
})
const line = await new Promise((resolve, reject) => {
  child.stdout.once("data", (chunk) => resolve(String(chunk)))
  child.once("exit", (code) => reject(new Error(`reelkit-fake-apixo exited early with ${code}`)))
})
const cliUrl = /listening on (http:\/\/\S+)/.exec(line)?.[1]
assert.ok(cliUrl, `unexpected first line: ${line}`)
assert.match(line, /API key: cli-key/)
const unauthorized = await fetch(`${cliUrl}/api/v1/statusTask/vidu-q3?taskId=x`)
assert.equal(unauthorized.status, 401)
const exited = new Promise((resolve) => child.once("exit", resolve))
child.kill("SIGTERM")
assert.equal(await exited, 0)
console.log("@reelkit/testing FakeApixo and CLI ESM ok")
