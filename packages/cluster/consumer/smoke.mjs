// Runs in an empty npm project against the packed tarball: ESM import of real exports.
import { GenerationConfig, GenerationWorkflow } from "@reelkit/cluster"
import { Effect, Redacted } from "effect"
import assert from "node:assert/strict"

const key = GenerationWorkflow.taskKeyOf("0123456789abcdef0123456789abcdef")
assert.equal(GenerationWorkflow.executionIdOf(key), "0123456789abcdef0123456789abcdef")
const error = await Effect.runPromise(
  Effect.flip(
    GenerationConfig.make({ callbacks: { secret: Redacted.make("short"), publicBaseUrl: "https://x.example" } })
  )
)
assert.equal(error.field, "secret")
console.log("@reelkit/cluster ESM ok")
