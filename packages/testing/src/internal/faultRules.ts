// Fault rules shared by the fake servers (FakeApixo, FakeVidu): each rule counts the requests of
// its routes that reach it and fires on the numbers it names (see `FakeApixo.FaultMatch`).
import type * as FakeApixo from "../FakeApixo.js"

/** A rule's match, over any set of route names. */
export interface Match<R extends string> {
  readonly route: R | ReadonlyArray<R>
  readonly modelId?: string | undefined
  readonly nth?: number | ReadonlyArray<number> | undefined
  readonly every?: number | undefined
  readonly times?: number | undefined
}

/** A fault and the requests it applies to. */
export interface Rule<R extends string> {
  readonly match: Match<R>
  readonly fault: FakeApixo.Fault
}

interface RuleState<R extends string> {
  readonly rule: Rule<R>
  seen: number
  fired: number
}

/** The fault rules of one fake: `pick` counts a request on every matching rule; the first that fires wins. */
export class FaultRules<R extends string> {
  private readonly rules: Array<RuleState<R>>

  constructor(rules: ReadonlyArray<Rule<R>>) {
    this.rules = rules.map((rule) => ({ rule, seen: 0, fired: 0 }))
  }

  /** Adds a rule after those already present. */
  add(rule: Rule<R>): void {
    this.rules.push({ rule, seen: 0, fired: 0 })
  }

  /** Removes every rule. */
  clear(): void {
    this.rules.length = 0
  }

  /** The fault for one request of `route` (of model `modelId`), if a rule fires. */
  pick(route: R, modelId: string | undefined): FakeApixo.Fault | undefined {
    let chosen: FakeApixo.Fault | undefined
    for (const state of this.rules) {
      const match = state.rule.match
      const routes: ReadonlyArray<R> =
        typeof match.route === "string" ? [match.route as R] : (match.route as ReadonlyArray<R>)
      if (!routes.includes(route)) continue
      if (match.modelId !== undefined && match.modelId !== modelId) continue
      state.seen++
      if (chosen !== undefined) continue
      if (match.times !== undefined && state.fired >= match.times) continue
      const fires =
        match.nth !== undefined
          ? typeof match.nth === "number"
            ? state.seen === match.nth
            : match.nth.includes(state.seen)
          : match.every !== undefined
            ? state.seen % match.every === 0
            : true
      if (fires) {
        state.fired++
        chosen = state.rule.fault
      }
    }
    return chosen
  }
}
