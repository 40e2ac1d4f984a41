/**
 * The engines generations run on. One machine: `layerSingleRunner` on a `SqlClient` (a SQLite file
 * survives a kill; PostgreSQL works too). Several machines: `layerSocketRunner` on PostgreSQL, one
 * per runner with its own address, and `layerClient` for processes that start and complete
 * generations without running them. Each provides the cluster's `WorkflowEngine`.
 *
 * @since 0.3.0
 */
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import type * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import type * as SocketServer from "@effect/platform/SocketServer"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"

// Runners starting at once on a fresh database race to create the cluster's tables (PostgreSQL
// answers the loser with a duplicate pg_type row, which the cluster's storage raises as a defect);
// the loser's start is retried, by then the tables exist.
const startSchedule = Schedule.exponential("200 millis").pipe(Schedule.intersect(Schedule.recurs(4)))

/** Retries a layer's construction on any failure or defect, then fails as the last attempt did. */
export const retryStart = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  layer.pipe(
    Layer.catchAllCause((cause) => Layer.fail(cause)),
    Layer.retry(startSchedule),
    Layer.catchAll((cause) => Layer.failCause(cause))
  )

/** Sharding settings, as @effect/cluster names them. */
export type Sharding = Partial<ShardingConfig.ShardingConfig["Type"]>

/**
 * What this package ships: @effect/cluster's defaults, except the shard count, which must be the
 * same on every runner and client of one cluster. A runner's death is noticed after its shard locks
 * expire (about 36 s measured here with these settings).
 */
export const shippedSharding: Sharding = { shardsPerGroup: 300 }

/**
 * Fast failover for tests and small clusters (about 3 to 5 s after a SIGKILL): short shard locks,
 * frequent assignment refreshes and storage polls. Costs more queries per second per runner.
 */
export const fastFailoverSharding: Sharding = {
  shardsPerGroup: 30,
  shardLockRefreshInterval: "1 second",
  shardLockExpiration: "5 seconds",
  refreshAssignmentsInterval: "500 millis",
  entityMessagePollInterval: "500 millis",
  entityReplyPollInterval: "200 millis",
  runnerHealthCheckInterval: "2 seconds",
  entityTerminationTimeout: "2 seconds"
}

/** One durable runner in this process, its messages in the `SqlClient`'s database. */
export const layerSingleRunner = (
  sharding: Sharding = shippedSharding
): Layer.Layer<WorkflowEngine, ConfigError.ConfigError, SqlClient.SqlClient> =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql", shardingConfig: sharding })),
    retryStart
  ) as Layer.Layer<WorkflowEngine, ConfigError.ConfigError, SqlClient.SqlClient>

/** Where a socket runner listens (and is reached by the others). */
export interface Address {
  readonly host: string
  readonly port: number
}

/** A runner of a cluster on PostgreSQL, reached by the other runners at `address` (TCP, msgpack). */
export const layerSocketRunner = (
  address: Address,
  sharding: Sharding = shippedSharding
): Layer.Layer<WorkflowEngine, ConfigError.ConfigError | SocketServer.SocketServerError, SqlClient.SqlClient> =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(
      NodeClusterSocket.layer({
        storage: "sql",
        shardingConfig: { ...sharding, runnerAddress: Option.some(RunnerAddress.make(address.host, address.port)) }
      })
    ),
    retryStart
  ) as Layer.Layer<WorkflowEngine, ConfigError.ConfigError | SocketServer.SocketServerError, SqlClient.SqlClient>

/** A process that starts, polls and completes generations on the cluster without running any. */
export const layerClient = (
  sharding: Sharding = shippedSharding
): Layer.Layer<WorkflowEngine, ConfigError.ConfigError, SqlClient.SqlClient> =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(NodeClusterSocket.layer({ storage: "sql", clientOnly: true, shardingConfig: sharding })),
    retryStart
  ) as Layer.Layer<WorkflowEngine, ConfigError.ConfigError, SqlClient.SqlClient>
