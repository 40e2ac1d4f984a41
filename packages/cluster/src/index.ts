/**
 * @reelkit/cluster: durable generation workflows on @effect/workflow and @effect/cluster.
 *
 * @since 0.3.0
 */

/** The callback handler that completes a waiting generation. */
export * as ClusterCallbacks from "./ClusterCallbacks.js"
/** Engines: one SQLite single runner, socket runners on PostgreSQL, client-only processes. */
export * as ClusterRunner from "./ClusterRunner.js"
/** Running, starting and polling generations. */
export * as Generation from "./Generation.js"
/** A runner's settings. */
export * as GenerationConfig from "./GenerationConfig.js"
/** The workflow's definition: payload, result, deferred, task keys. */
export * as GenerationWorkflow from "./GenerationWorkflow.js"
/** Pruning finished executions' messages. */
export * as Retention from "./Retention.js"
