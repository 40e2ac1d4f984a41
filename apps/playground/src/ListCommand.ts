/**
 * `reelkit list`: reads the ledger alone (no provider, no HTTP client, no fake server), so it
 * starts fast and works offline.
 */
import { TaskLedger } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Registry from "./Registry.js"
import * as Settings from "./Settings.js"
import * as TaskSummary from "./TaskSummary.js"

const printOut = (text: string) => Effect.sync(() => void process.stdout.write(`${text}\n`))

/** Lists the recorded tasks, newest first (`--json`: an array of task summaries); with a pair, only its tasks. */
export const list = (flags: {
  readonly json: boolean
  readonly entry: Option.Option<Registry.Entry>
}): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const settings = yield* Settings.settings
    const query = Option.match(flags.entry, {
      onNone: () => ({}),
      onSome: (entry) => ({ providerId: entry.providerId, modelId: entry.model })
    })
    const records = yield* Effect.flatMap(TaskLedger.TaskLedger, (ledger) => ledger.list(query)).pipe(
      Effect.provide(Settings.ledgerLayer(settings.home))
    )
    const summaries = records.map((record) => TaskSummary.fromRecord(settings.home, record))
    if (flags.json) return yield* printOut(JSON.stringify(summaries, null, 2))
    if (summaries.length === 0) {
      return yield* Effect.sync(() => void process.stderr.write(`No tasks recorded under ${settings.home}.\n`))
    }
    for (const [index, summary] of summaries.entries()) {
      yield* printOut(TaskSummary.toLines(summary, TaskSummary.detailsOf(records[index]!)).join("\n"))
    }
  })
