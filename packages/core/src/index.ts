/**
 * @reelkit/core: the provider-agnostic task protocol.
 *
 * @since 0.1.0
 */

/** Account-wide request and concurrency budget. */
export * as AccountLimits from "./AccountLimits.js"
/** Verified callback URLs: tokens derived from a secret and the task key. */
export * as CallbackUrls from "./CallbackUrls.js"
/** The callback handler: verifies, de-duplicates, confirms with the provider. */
export * as Callbacks from "./Callbacks.js"
/** Durable storage for generated outputs. */
export * as ArtifactStore from "./ArtifactStore.js"
/** Shared parts of HTTP transports: one request with a timeout, transport errors, Retry-After, secret removal. */
export * as HttpTransport from "./HttpTransport.js"
/** Typed errors of the protocol. */
export * as TaskError from "./TaskError.js"
/** A resumable reference to a submitted task. */
export * as TaskHandle from "./TaskHandle.js"
/** The durable task record. */
export * as TaskLedger from "./TaskLedger.js"
/** The provider interface. */
export * as TaskProvider from "./TaskProvider.js"
/** The task lifecycle as data: states, transitions, what a status or a row means. */
export * as TaskState from "./TaskState.js"
/** Remote task statuses. */
export * as TaskStatus from "./TaskStatus.js"
/** Storing outputs before their URLs expire. */
export * as ResultStorage from "./ResultStorage.js"
/** Named, overridable schedules. */
export * as Schedules from "./Schedules.js"
/** A per-day and per-month cap on billable seconds and money. */
export * as SpendCap from "./SpendCap.js"
/** The client: start, wait, watch, generate, resume, reconcile. */
export * as TaskClient from "./TaskClient.js"
/** Events of `TaskClient.watch`. */
export * as TaskEvent from "./TaskEvent.js"
