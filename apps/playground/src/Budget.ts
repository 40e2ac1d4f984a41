/**
 * The account's shared budget in the playground: `AccountLimits` and `SpendCap` in the ledger's
 * SQLite file under `REELKIT_HOME`, so every CLI run and `serve` on one home spend one budget
 * (apixo's 60 requests a minute and 10 concurrent tasks) with no set-up; the spend cap from
 * `REELKIT_SPEND_CAP_*`, priced by `REELKIT_PRICING` when set. And `reelkit budget`.
 */
import { AccountLimits, SpendCap, type TaskError } from "@reelkit/core"
import { ViduQ3, ViduQ3Input, ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import * as SqliteAccountLimits from "@reelkit/storage/SqliteAccountLimits"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Settings from "./Settings.js"

/** The budget's name in the file: one per home (every key used from this home shares it). */
export const account = "apixo"

/** `AccountLimits` shared by every process on this home. */
export const limitsLayer = (home: string): Layer.Layer<AccountLimits.AccountLimits, TaskError.LedgerError> =>
  SqliteAccountLimits.layer({ filename: Settings.ledgerFile(home), account })

const decodeInput = Schema.decodeUnknownOption(ViduQ3Input.ViduQ3Input)

// A Vidu Q3 task's price from the table, by its tier, resolution and duration.
const priceWith =
  (pricing: ViduQ3Pricing.ViduQ3Pricing) =>
  (reservation: SpendCap.Reservation): SpendCap.Money | undefined =>
    reservation.modelId !== ViduQ3.modelId
      ? undefined
      : Option.getOrUndefined(
          Option.flatMap(decodeInput(reservation.input), (input) => ViduQ3Pricing.estimateCost(input, pricing))
        )

/** `SpendCap` shared by every process on this home, with the caps from `REELKIT_SPEND_CAP_*`. */
export const spendCapLayer = (
  home: string,
  pricing: Option.Option<ViduQ3Pricing.ViduQ3Pricing>
): Layer.Layer<SpendCap.SpendCap, TaskError.LedgerError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(SpendCap.config(), (caps) =>
      SqliteAccountLimits.layerSpendCap({
        ...caps,
        // The price table's currency is the caps' unless the caps name one.
        currency: caps.currency ?? Option.getOrUndefined(Option.map(pricing, (table) => table.currency)),
        priceOf: Option.getOrUndefined(Option.map(pricing, priceWith)),
        filename: Settings.ledgerFile(home),
        account
      })
    )
  )

const iso = (millis: number) => new Date(millis).toISOString()

/** What `reelkit budget --json` prints (field names are part of the interface). */
export const toJson = (snapshot: AccountLimits.Snapshot, windowMillis: number, remaining: SpendCap.Remaining) => {
  // A cap that is not set is `null` (not left out), so every field is always there.
  const amounts = (amount: SpendCap.PeriodBudget["seconds"]) => ({
    used: amount.used,
    limit: amount.limit ?? null,
    left: amount.left ?? null
  })
  const period = (budget: SpendCap.PeriodBudget) => ({
    start: iso(budget.start),
    resetsAt: iso(budget.resetsAt),
    seconds: amounts(budget.seconds),
    money: amounts(budget.money)
  })
  return {
    requests: {
      inWindow: snapshot.requestsInWindow,
      perWindow: snapshot.requestsPerWindow,
      windowSeconds: windowMillis / 1000,
      left: Math.max(0, snapshot.requestsPerWindow - snapshot.requestsInWindow)
    },
    tasks: {
      inFlight: snapshot.tasksInFlight,
      concurrent: snapshot.concurrentTasks,
      left: Math.max(0, snapshot.concurrentTasks - snapshot.tasksInFlight)
    },
    pausedUntil: snapshot.pausedUntil > 0 ? iso(snapshot.pausedUntil) : null,
    spend: { currency: remaining.currency ?? null, day: period(remaining.day), month: period(remaining.month) }
  }
}

const capText = (used: number, limit: number | null, left: number | null, unit: string) =>
  limit === null ? `${used} ${unit} used (no cap)` : `${used} of ${limit} ${unit} used, ${left} left`

/** The lines `reelkit budget` prints. */
export const toLines = (budget: ReturnType<typeof toJson>): Array<string> => {
  const lines = [
    `requests: ${budget.requests.inWindow} of ${budget.requests.perWindow} in the last ${budget.requests.windowSeconds} s (${budget.requests.left} left)`,
    `tasks in flight: ${budget.tasks.inFlight} of ${budget.tasks.concurrent} (${budget.tasks.left} left)`
  ]
  if (budget.pausedUntil !== null) lines.push(`paused after a 429 until ${budget.pausedUntil}`)
  const currency = budget.spend.currency ?? "money"
  for (const [name, period] of [
    ["today", budget.spend.day],
    ["this month", budget.spend.month]
  ] as const) {
    lines.push(
      `spend ${name} (until ${period.resetsAt}): ${capText(period.seconds.used, period.seconds.limit, period.seconds.left, "s")}; ${capText(period.money.used, period.money.limit, period.money.left, currency)}`
    )
  }
  return lines
}

/** `reelkit budget`: the shared budget left on this home (`--json` for the object). */
export const budget = (flags: { readonly json: boolean }): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const settings = yield* Settings.settings
    const layers = Layer.merge(limitsLayer(settings.home), spendCapLayer(settings.home, settings.pricing))
    const [snapshot, remaining] = yield* Effect.all([
      Effect.flatMap(AccountLimits.AccountLimits, (limits) => limits.snapshot),
      Effect.flatMap(SpendCap.SpendCap, (cap) => cap.remaining)
    ]).pipe(Effect.provide(layers))
    const result = toJson(snapshot, Duration.toMillis(AccountLimits.apixoDefaults.window), remaining)
    yield* Effect.sync(() =>
      process.stdout.write(`${flags.json ? JSON.stringify(result, null, 2) : toLines(result).join("\n")}\n`)
    )
  })
