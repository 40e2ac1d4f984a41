// Runs in an empty npm project against the packed tarball: CommonJS require of real exports.
const { ClusterRunner, GenerationWorkflow } = require("@reelkit/cluster")
const assert = require("node:assert/strict")

assert.equal(GenerationWorkflow.GenerationWorkflow.name, "reelkit/Generation")
assert.equal(ClusterRunner.fastFailoverSharding.shardsPerGroup, 30)
console.log("@reelkit/cluster CJS ok")
