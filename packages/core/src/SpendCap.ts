/**
 * A spend cap for one account: at most so many billable seconds (and, when tasks are priced, so
 * much money) per UTC day and per UTC month. `reserve` is called before any request of a start and
 * either records the task's spend or fails with a typed error naming the cap and what is left, so a
 * start that would exceed the cap sends nothing. `release` refunds a task whose submit is proven
 * never created. The budget lives in a store: memory (one process) here, SQLite, PostgreSQL and
 * Redis in `@reelkit/storage`, all behind the same `Store` interface and the same rules.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/** The caps a budget can have; each is optional. */
export type CapName = "secondsPerDay" | "secondsPerMonth" | "moneyPerDay" | "moneyPerMonth"

/** The configured maximums. A cap left out is not enforced. */
export interface Caps {
  readonly secondsPerDay?: number | undefined
  readonly secondsPerMonth?: number | undefined
  readonly moneyPerDay?: number | undefined
  readonly moneyPerMonth?: number | undefined
  /** The currency of the money caps and of every priced task (any unit: USD, credits...). */
  readonly currency?: string | undefined
}

/** Options of a spend cap: the caps and, optionally, a price table. */
export interface Options extends Caps {
  /**
   * Price of one billable second, by model id or by `providerId/modelId` (the longer key wins).
   * Used for tasks whose `reserve` carries no `cost` of its own.
   */
  readonly pricePerSecond?: Readonly<Record<string, number>> | undefined
  /**
   * Prices a reservation that carries no `cost` (e.g. from the input's resolution and duration);
   * undefined when it cannot. Tried before `pricePerSecond`.
   */
  readonly priceOf?: ((reservation: Reservation) => Money | undefined) | undefined
}

/** A known amount of money. */
export interface Money {
  readonly amount: number
  readonly currency: string
}

/** What `reserve` is asked to record for one task. */
export interface Reservation {
  readonly taskKey: string
  readonly providerId: string
  readonly modelId: string
  /** The provider's billable-seconds hint for this input; undefined when it cannot tell. */
  readonly billableSeconds: number | undefined
  /** The task's price when the caller knows it (e.g. from a provider's price table). */
  readonly cost?: Money | undefined
  /** The caller's input as given to `start`, for a `priceOf` option that prices by input. */
  readonly input?: unknown
}

/** A reservation as a store keeps it: seconds and money resolved. */
export interface Entry {
  readonly taskKey: string
  readonly providerId: string
  readonly modelId: string
  readonly seconds: number
  /** Undefined when the task is not priced (then only the seconds caps count it). */
  readonly amount: number | undefined
  readonly reservedAt: number
}

/** The UTC day and month containing an instant, as epoch-millisecond bounds. */
export interface Periods {
  readonly dayStart: number
  readonly dayEnd: number
  readonly monthStart: number
  readonly monthEnd: number
}

/** What has been reserved in the current day and month. */
export interface Usage {
  readonly daySeconds: number
  readonly monthSeconds: number
  readonly dayMoney: number
  readonly monthMoney: number
}

/** One period's budget. `limit` and `left` are undefined when that cap is not set. */
export interface PeriodBudget {
  readonly start: number
  readonly resetsAt: number
  readonly seconds: { readonly used: number; readonly limit: number | undefined; readonly left: number | undefined }
  readonly money: { readonly used: number; readonly limit: number | undefined; readonly left: number | undefined }
}

/** What is left, per day and per month. */
export interface Remaining {
  readonly currency: string | undefined
  readonly day: PeriodBudget
  readonly month: PeriodBudget
}

/** A start would exceed a cap. Nothing was sent. `remaining` is what that cap still allows. */
export class SpendCapExceeded extends Schema.TaggedError<SpendCapExceeded>("@reelkit/core/SpendCapExceeded")(
  "SpendCapExceeded",
  {
    taskKey: Schema.String,
    cap: Schema.Literal("secondsPerDay", "secondsPerMonth", "moneyPerDay", "moneyPerMonth"),
    limit: Schema.Number,
    used: Schema.Number,
    requested: Schema.Number,
    remaining: Schema.Number,
    /** `seconds`, or the money caps' currency. */
    unit: Schema.String,
    /** When the period ends and the cap frees again (epoch milliseconds). */
    resetsAt: Schema.Number
  }
) {
  /** Not until the period ends (or the cap is raised). */
  get retryable(): boolean {
    return false
  }
  /** Refused before any request. */
  get provesNotCreated(): boolean {
    return true
  }
  override get message(): string {
    return `Spend cap ${this.cap} (${this.limit} ${this.unit}) would be exceeded: ${this.requested} requested, ${this.remaining} left (${this.used} used) until ${new Date(this.resetsAt).toISOString()}`
  }
}

/** A cap is set but this start's spend cannot be measured against it. Nothing was sent. */
export class SpendCapUnmetered extends Schema.TaggedError<SpendCapUnmetered>("@reelkit/core/SpendCapUnmetered")(
  "SpendCapUnmetered",
  {
    taskKey: Schema.String,
    providerId: Schema.String,
    modelId: Schema.String,
    /** What is unknown: the billable seconds, or a price in the caps' currency. */
    missing: Schema.Literal("billableSeconds", "price")
  }
) {
  get retryable(): boolean {
    return false
  }
  get provesNotCreated(): boolean {
    return true
  }
  override get message(): string {
    return this.missing === "billableSeconds"
      ? `A seconds spend cap is set but the billable seconds of ${this.providerId}/${this.modelId} are unknown for this input`
      : `A money spend cap is set but ${this.providerId}/${this.modelId} has no price in the caps' currency`
  }
}

/** Errors of `reserve`. */
export type ReserveError = SpendCapExceeded | SpendCapUnmetered

/** The spend-cap service. */
export interface Service {
  /** The configured caps. */
  readonly caps: Caps
  /**
   * Records this task's spend, or fails when it would exceed a cap. Call it before any request of a
   * start; reserving a task key already reserved succeeds and records nothing more.
   */
  readonly reserve: (reservation: Reservation) => Effect.Effect<void, ReserveError>
  /** Refunds a task's reservation (its submit is proven never created). Unknown keys are a no-op. */
  readonly release: (taskKey: string) => Effect.Effect<void>
  /** What is left now, per day and per month. */
  readonly remaining: Effect.Effect<Remaining>
}

/** The spend-cap tag. One per account, shared like `AccountLimits`. */
export class SpendCap extends Context.Tag("@reelkit/core/SpendCap")<SpendCap, Service>() {}

/**
 * Where a budget keeps its reservations. `reserve` must be atomic across every process on the
 * store: unless `entry.taskKey` is already reserved, it sums the usage of `periods`, and records the
 * entry only when `exceededCap(caps, usage, entry)` finds no cap exceeded; it returns the usage it
 * refused on, or none when recorded (or already reserved).
 */
export interface Store {
  readonly reserve: (entry: Entry, periods: Periods, caps: Caps) => Effect.Effect<Option.Option<Usage>>
  readonly release: (taskKey: string) => Effect.Effect<void>
  readonly usage: (periods: Periods) => Effect.Effect<Usage>
}

/** The UTC day and month around `now`. */
export const periodsAt = (now: number): Periods => {
  const date = new Date(now)
  const year = date.getUTCFullYear()
  const month = date.getUTCMonth()
  const day = date.getUTCDate()
  return {
    dayStart: Date.UTC(year, month, day),
    dayEnd: Date.UTC(year, month, day + 1),
    monthStart: Date.UTC(year, month, 1),
    monthEnd: Date.UTC(year, month + 1, 1)
  }
}

/** The first cap `entry` would exceed on top of `usage`, if any. The one rule every store applies. */
export const exceededCap = (
  caps: Caps,
  usage: Usage,
  entry: Pick<Entry, "seconds" | "amount">
): CapName | undefined => {
  const over = (limit: number | undefined, used: number, requested: number) =>
    limit !== undefined && used + requested > limit
  if (over(caps.secondsPerDay, usage.daySeconds, entry.seconds)) return "secondsPerDay"
  if (over(caps.secondsPerMonth, usage.monthSeconds, entry.seconds)) return "secondsPerMonth"
  const amount = entry.amount ?? 0
  if (over(caps.moneyPerDay, usage.dayMoney, amount)) return "moneyPerDay"
  if (over(caps.moneyPerMonth, usage.monthMoney, amount)) return "moneyPerMonth"
  return undefined
}

const hasMoneyCap = (caps: Caps) => caps.moneyPerDay !== undefined || caps.moneyPerMonth !== undefined
const hasSecondsCap = (caps: Caps) => caps.secondsPerDay !== undefined || caps.secondsPerMonth !== undefined

const priceOf = (options: Options, reservation: Reservation, seconds: number): number | undefined => {
  const cost = reservation.cost ?? options.priceOf?.(reservation)
  if (cost !== undefined) {
    return options.currency === undefined || cost.currency === options.currency ? cost.amount : undefined
  }
  const table = options.pricePerSecond
  const perSecond = table?.[`${reservation.providerId}/${reservation.modelId}`] ?? table?.[reservation.modelId]
  return perSecond === undefined ? undefined : perSecond * seconds
}

const budgetOf = (
  start: number,
  resetsAt: number,
  seconds: { used: number; limit: number | undefined },
  money: { used: number; limit: number | undefined }
): PeriodBudget => {
  const left = (limit: number | undefined, used: number) =>
    limit === undefined ? undefined : Math.max(0, limit - used)
  return {
    start,
    resetsAt,
    seconds: { ...seconds, left: left(seconds.limit, seconds.used) },
    money: { ...money, left: left(money.limit, money.used) }
  }
}

/** The budget `usage` leaves under `caps`. */
export const remainingOf = (caps: Caps, periods: Periods, usage: Usage): Remaining => ({
  currency: caps.currency,
  day: budgetOf(
    periods.dayStart,
    periods.dayEnd,
    { used: usage.daySeconds, limit: caps.secondsPerDay },
    { used: usage.dayMoney, limit: caps.moneyPerDay }
  ),
  month: budgetOf(
    periods.monthStart,
    periods.monthEnd,
    { used: usage.monthSeconds, limit: caps.secondsPerMonth },
    { used: usage.monthMoney, limit: caps.moneyPerMonth }
  )
})

const refusal = (caps: Caps, periods: Periods, usage: Usage, entry: Entry): SpendCapExceeded => {
  const cap = exceededCap(caps, usage, entry) ?? "secondsPerDay"
  const isDay = cap === "secondsPerDay" || cap === "moneyPerDay"
  const isSeconds = cap === "secondsPerDay" || cap === "secondsPerMonth"
  const limit = caps[cap] ?? 0
  const used = isSeconds ? (isDay ? usage.daySeconds : usage.monthSeconds) : isDay ? usage.dayMoney : usage.monthMoney
  return new SpendCapExceeded({
    taskKey: entry.taskKey,
    cap,
    limit,
    used,
    requested: isSeconds ? entry.seconds : (entry.amount ?? 0),
    remaining: Math.max(0, limit - used),
    unit: isSeconds ? "seconds" : (caps.currency ?? "money"),
    resetsAt: isDay ? periods.dayEnd : periods.monthEnd
  })
}

/** Builds the service on a store: resolves seconds and price, then lets the store admit atomically. */
export const make = (store: Store, options: Options = {}): Service => {
  const caps: Caps = {
    secondsPerDay: options.secondsPerDay,
    secondsPerMonth: options.secondsPerMonth,
    moneyPerDay: options.moneyPerDay,
    moneyPerMonth: options.moneyPerMonth,
    currency: options.currency
  }
  const reserve = (reservation: Reservation): Effect.Effect<void, ReserveError> =>
    Effect.gen(function* () {
      const unmetered = (missing: "billableSeconds" | "price") =>
        new SpendCapUnmetered({
          taskKey: reservation.taskKey,
          providerId: reservation.providerId,
          modelId: reservation.modelId,
          missing
        })
      if (reservation.billableSeconds === undefined && hasSecondsCap(caps))
        return yield* Effect.fail(unmetered("billableSeconds"))
      const seconds = reservation.billableSeconds ?? 0
      const amount = priceOf(options, reservation, seconds)
      if (amount === undefined && hasMoneyCap(caps)) return yield* Effect.fail(unmetered("price"))
      const now = yield* Clock.currentTimeMillis
      const periods = periodsAt(now)
      const entry: Entry = {
        taskKey: reservation.taskKey,
        providerId: reservation.providerId,
        modelId: reservation.modelId,
        seconds,
        amount,
        reservedAt: now
      }
      const refused = yield* store.reserve(entry, periods, caps)
      if (Option.isSome(refused)) return yield* Effect.fail(refusal(caps, periods, refused.value, entry))
    })
  return SpendCap.of({
    caps,
    reserve,
    release: store.release,
    remaining: Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const periods = periodsAt(now)
      return Effect.map(store.usage(periods), (usage) => remainingOf(caps, periods, usage))
    })
  })
}

/** An in-memory store for one process. */
export const makeMemoryStore: Effect.Effect<Store> = Effect.sync(() => {
  const entries = new Map<string, Entry>()
  const usage = (periods: Periods): Usage => {
    let daySeconds = 0
    let monthSeconds = 0
    let dayMoney = 0
    let monthMoney = 0
    for (const entry of entries.values()) {
      if (entry.reservedAt < periods.monthStart || entry.reservedAt >= periods.monthEnd) continue
      monthSeconds += entry.seconds
      monthMoney += entry.amount ?? 0
      if (entry.reservedAt >= periods.dayStart && entry.reservedAt < periods.dayEnd) {
        daySeconds += entry.seconds
        dayMoney += entry.amount ?? 0
      }
    }
    return { daySeconds, monthSeconds, dayMoney, monthMoney }
  }
  // Synchronous bodies: each check-and-record is atomic within the process.
  return {
    reserve: (entry, periods, caps) =>
      Effect.sync(() => {
        if (entries.has(entry.taskKey)) return Option.none()
        const current = usage(periods)
        if (exceededCap(caps, current, entry) !== undefined) return Option.some(current)
        entries.set(entry.taskKey, entry)
        return Option.none()
      }),
    release: (taskKey) => Effect.sync(() => void entries.delete(taskKey)),
    usage: (periods) => Effect.sync(() => usage(periods))
  }
})

/** An in-memory spend cap for one process. */
export const layerMemory = (options: Options = {}): Layer.Layer<SpendCap> =>
  Layer.effect(
    SpendCap,
    Effect.map(makeMemoryStore, (store) => make(store, options))
  )

/** No cap at all: every reservation succeeds and nothing is kept. */
export const layerNone: Layer.Layer<SpendCap> = Layer.succeed(
  SpendCap,
  make(
    {
      reserve: () => Effect.succeed(Option.none()),
      release: () => Effect.void,
      usage: () => Effect.succeed({ daySeconds: 0, monthSeconds: 0, dayMoney: 0, monthMoney: 0 })
    },
    {}
  )
)

const positive = (name: string) =>
  Config.option(
    Config.number(name).pipe(Config.validate({ message: "must be a positive number", validation: (n) => n > 0 }))
  ).pipe(Config.map(Option.getOrUndefined))

/**
 * The caps from configuration: `REELKIT_SPEND_CAP_SECONDS_PER_DAY`, `..._SECONDS_PER_MONTH`,
 * `..._MONEY_PER_DAY`, `..._MONEY_PER_MONTH` and `..._CURRENCY` (all optional; `prefix` replaces
 * `REELKIT_SPEND_CAP`). A money cap needs a currency.
 */
export const config = (prefix = "REELKIT_SPEND_CAP"): Config.Config<Caps> =>
  Config.all({
    secondsPerDay: positive(`${prefix}_SECONDS_PER_DAY`),
    secondsPerMonth: positive(`${prefix}_SECONDS_PER_MONTH`),
    moneyPerDay: positive(`${prefix}_MONEY_PER_DAY`),
    moneyPerMonth: positive(`${prefix}_MONEY_PER_MONTH`),
    currency: Config.option(Config.nonEmptyString(`${prefix}_CURRENCY`)).pipe(Config.map(Option.getOrUndefined))
  }).pipe(
    Config.validate({
      message: `${prefix}_CURRENCY must be set with a money cap`,
      validation: (caps) => caps.currency !== undefined || !hasMoneyCap(caps)
    })
  )

/** Whether any cap is set. */
export const isCapped = (caps: Caps): boolean => hasSecondsCap(caps) || hasMoneyCap(caps)
