/**
 * @reelkit/testing: fakes and contract suites for reelkit users and adapter authors.
 *
 * @since 0.1.0
 */

/** An in-memory provider whose answers are scripted. */
export * as ScriptedProvider from "./ScriptedProvider.js"
/** The contract suite every `TaskLedger` adapter must pass. */
export * as TaskLedgerContract from "./TaskLedgerContract.js"
/** The contract suite every shared `AccountLimits` store must pass. */
export * as AccountLimitsContract from "./AccountLimitsContract.js"
/** The contract suite every `SpendCap` store must pass. */
export * as SpendCapContract from "./SpendCapContract.js"
/** The contract suite every `ArtifactStore` adapter must pass. */
export * as ArtifactStoreContract from "./ArtifactStoreContract.js"
/** A fake apixo.ai server on a real socket, with fault injection and recordings. */
export * as FakeApixo from "./FakeApixo.js"
/** A fake official Vidu API on a real socket, with signed callbacks, fault injection and recordings. */
export * as FakeVidu from "./FakeVidu.js"
/** The contract suite every `TaskProvider` must pass. */
export * as TaskProviderContract from "./TaskProviderContract.js"
/** A tracer that records every span, to check what reaches telemetry. */
export * as RecordingTracer from "./RecordingTracer.js"
/** A scripted HTTP server on a real socket, for exact transport tests. */
export * as ScriptedHttpServer from "./ScriptedHttpServer.js"
