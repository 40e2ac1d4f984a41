// Runs in an empty npm project against the packed tarball: CommonJS require of real exports.
const { ViduProtocol, ViduSignature } = require("@reelkit/vidu")
const { Effect, Redacted } = require("effect")
const assert = require("node:assert/strict")

const date = "Tue, 06 May 2025 12:09:42 GMT"
const text = ViduSignature.signingString({
  method: "POST",
  url: "http://127.0.0.1:8080/vidu/callback?name=james&age=36",
  date,
  headers: [["Date", date]]
})
assert.equal(text, `POST\n/vidu/callback\nname=james&age=36\nvidu\n${date}\nDate:${date}\n`)
assert.equal(typeof ViduSignature.sign(Redacted.make("k"), text), "string")
Effect.runPromise(ViduProtocol.parseCallback({ id: "t", state: "failed", err_code: "UserCancelled" })).then((hint) => {
  assert.equal(hint.status._tag, "Cancelled")
  console.log("@reelkit/vidu CJS ok")
})
