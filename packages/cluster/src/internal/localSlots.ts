// The concurrency slots this runner holds, by task. The shared budget renews a holder's slots while
// the holder lives, so a slot this runner took for a task whose workflow later moved to another
// runner would be renewed forever; the poller releases every slot here whose row is terminal.
import { AccountLimits } from "@reelkit/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export interface Service {
  readonly acquire: (taskKey: string) => Effect.Effect<void>
  readonly release: (taskKey: string) => Effect.Effect<void>
  readonly held: Effect.Effect<ReadonlyArray<string>>
}

export class LocalSlots extends Context.Tag("@reelkit/cluster/internal/LocalSlots")<LocalSlots, Service>() {}

export const layer: Layer.Layer<LocalSlots, never, AccountLimits.AccountLimits> = Layer.effect(
  LocalSlots,
  Effect.map(AccountLimits.AccountLimits, (limits) => {
    const keys = new Set<string>()
    return {
      acquire: (taskKey) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.zipRight(
            restore(limits.acquireTaskSlot(taskKey)),
            Effect.sync(() => {
              keys.add(taskKey)
            })
          )
        ),
      release: (taskKey) =>
        Effect.zipRight(
          limits.releaseTaskSlot(taskKey),
          Effect.sync(() => {
            keys.delete(taskKey)
          })
        ),
      held: Effect.sync(() => [...keys])
    }
  })
)
