// CommonJS require of @reelkit/testing from its packed tarball.
const { ScriptedProvider } = require("@reelkit/testing")
const { Effect } = require("effect")
const assert = require("node:assert/strict")

Effect.runPromise(
  Effect.flatMap(ScriptedProvider.make({ modelId: "m" }), (scripted) =>
    Effect.either(scripted.provider.prepare({ input: "not an object" }))
  )
).then((result) => {
  assert.equal(result._tag, "Left")
  assert.equal(result.left.path, "input")
  console.log("@reelkit/testing CJS ok")
})

// The fake apixo server from the CJS build: it must find the MP4 fixture from dist/cjs.
const { FakeApixo } = require("@reelkit/testing")

FakeApixo.start({ timings: { processingAfter: 0, completeAfter: 0 } }).then(async (fake) => {
  try {
    const submitted = await fetch(`${fake.url}/api/v1/generateTask/any-model`, {
      method: "POST",
      headers: { authorization: "Bearer test-key", "content-type": "application/json" },
      body: JSON.stringify({ input: { mode: "text-to-video", prompt: "x" } })
    }).then((response) => response.json())
    const download = await fetch(fake.resultUrl(submitted.data.taskId))
    assert.equal(download.status, 200)
    assert.equal(download.headers.get("content-type"), "video/mp4")
    assert.ok((await download.arrayBuffer()).byteLength > 1000)
    assert.equal(fake.requests.at(-1).authorizationSent, false)
    console.log("@reelkit/testing FakeApixo CJS ok")
  } finally {
    await fake.close()
  }
})
