/**
 * The accounts' shared budgets in the playground: `AccountLimits` and `SpendCap` in the ledger's
 * SQLite file under `REELKIT_HOME`, one budget per account, named by the transport and a
 * fingerprint of the key (`Registry.accountOf`): every CLI run and `serve` using one key spend one
 * budget (its transport's limits, e.g. apixo's 60 requests a minute and 10 concurrent tasks) with
 * no set-up, and two transports never share one. The spend cap comes from `REELKIT_SPEND_CAP_*`,
 * priced by the pair's price table when set. And `reelkit budget`.
 */
import { AccountLimits, SpendCap, type TaskError } from "@reelkit/core"
import type { ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import * as SqliteAccountLimits from "@reelkit/storage/SqliteAccountLimits"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Registry from "./Registry.js"
import * as Settings from "./Settings.js"

/** Which budget: the pair and the key it spends (the key is only fingerprinted). */
export interface Account {
  readonly entry: Registry.Entry
  readonly apiKey: string
}

/** The limits of an entry, as `AccountLimits` takes them. */
const limitsOf = (entry: Registry.Entry) => ({
  requestsPerWindow: entry.limits.requestsPerWindow,
  window: Duration.seconds(entry.limits.windowSeconds),
  concurrentTasks: entry.limits.concurrentTasks
})

/** `AccountLimits` shared by every process using this account's key on this home. */
export const limitsLayer = (
  home: string,
  account: Account
): Layer.Layer<AccountLimits.AccountLimits, TaskError.LedgerError> =>
  SqliteAccountLimits.layer({
    ...limitsOf(account.entry),
    filename: Settings.ledgerFile(home),
    account: Registry.accountOf(account.entry, account.apiKey)
  })

/** `SpendCap` shared by every process using this account's key, with the caps from `REELKIT_SPEND_CAP_*`. */
export const spendCapLayer = (
  home: string,
  account: Account,
  pricing: Option.Option<ViduQ3Pricing.ViduQ3Pricing>,
  priceOf: Registry.Wiring["priceOf"]
): Layer.Layer<SpendCap.SpendCap, TaskError.LedgerError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(SpendCap.config(), (caps) =>
      SqliteAccountLimits.layerSpendCap({
        ...caps,
        // The price table's currency is the caps' unless the caps name one.
        currency: caps.currency ?? Option.getOrUndefined(Option.map(pricing, (table) => table.currency)),
        // Only this pair's model is priced by its table; another model's task is unpriced.
        priceOf: Option.getOrUndefined(
          Option.map(
            pricing,
            (table) =>
              (reservation: SpendCap.Reservation): SpendCap.Money | undefined =>
                reservation.modelId === account.entry.model
                  ? Option.getOrUndefined(priceOf(reservation.input, table))
                  : undefined
          )
        ),
        filename: Settings.ledgerFile(home),
        account: Registry.accountOf(account.entry, account.apiKey)
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

/**
 * `reelkit budget`: the budget left on this home for the pair's key (the fake's key when the
 * pair's key is not set), `--json` for the object.
 */
export const budget = (flags: {
  readonly json: boolean
  readonly entry: Registry.Entry
}): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const settings = yield* Settings.settingsFor(flags.entry)
    const wiring = yield* Effect.promise(flags.entry.load)
    const account: Account = {
      entry: flags.entry,
      apiKey: Option.getOrElse(Option.map(settings.apiKey, Redacted.value), () => wiring.fakeApiKey)
    }
    const layers = Layer.merge(
      limitsLayer(settings.home, account),
      spendCapLayer(settings.home, account, settings.pricing, wiring.priceOf)
    )
    const [snapshot, remaining] = yield* Effect.all([
      Effect.flatMap(AccountLimits.AccountLimits, (limits) => limits.snapshot),
      Effect.flatMap(SpendCap.SpendCap, (cap) => cap.remaining)
    ]).pipe(Effect.provide(layers))
    const result = toJson(snapshot, flags.entry.limits.windowSeconds * 1000, remaining)
    yield* Effect.sync(() =>
      process.stdout.write(`${flags.json ? JSON.stringify(result, null, 2) : toLines(result).join("\n")}\n`)
    )
  })
