// `reelkit budget` and the shared budget of one REELKIT_HOME, through the real binary: every run
// on a home spends one budget kept in the ledger's SQLite file, so a later run sees what earlier
// (or concurrent) runs took.
import { describe, expect, it } from "vitest"
import { childEnv, runCli, tempHome } from "./utils.js"

const budgetOf = async (home: string, extra: Record<string, string> = {}) => {
  const run = await runCli(["budget", "--json"], childEnv({ REELKIT_HOME: home, ...extra }))
  expect(run.code, run.stderr).toBe(0)
  return JSON.parse(run.stdout)
}

describe("reelkit budget", () => {
  it("on a fresh home: apixo's whole budget, and the caps from REELKIT_SPEND_CAP_*", async () => {
    const budget = await budgetOf(tempHome(), {
      REELKIT_SPEND_CAP_SECONDS_PER_DAY: "120",
      REELKIT_SPEND_CAP_MONEY_PER_MONTH: "25",
      REELKIT_SPEND_CAP_CURRENCY: "USD"
    })
    expect(budget.requests).toEqual({ inWindow: 0, perWindow: 60, windowSeconds: 60, left: 60 })
    expect(budget.tasks).toEqual({ inFlight: 0, concurrent: 10, left: 10 })
    expect(budget.pausedUntil).toBeNull()
    expect(budget.spend.currency).toBe("USD")
    expect(budget.spend.day.seconds).toEqual({ used: 0, limit: 120, left: 120 })
    expect(budget.spend.day.money).toEqual({ used: 0, limit: null, left: null })
    expect(budget.spend.month.money).toEqual({ used: 0, limit: 25, left: 25 })
    expect(Date.parse(budget.spend.day.resetsAt) - Date.parse(budget.spend.day.start)).toBe(24 * 60 * 60 * 1000)
  }, 60_000)

  it("two generate runs at once on one home spend one budget, which a later run reads", async () => {
    const home = tempHome()
    const env = childEnv({ REELKIT_HOME: home })
    const runs = await Promise.all(
      ["a lighthouse at dusk", "a paper boat"].map((prompt) =>
        runCli(["generate", "--mode", "text-to-video", "--prompt", prompt, "--yes"], env)
      )
    )
    for (const run of runs) expect(run.code, run.stderr).toBe(0)
    const budget = await budgetOf(home)
    // Each run sent at least its submit and one status request, all counted in the shared window.
    expect(budget.requests.inWindow).toBeGreaterThanOrEqual(4)
    expect(budget.requests.left).toBe(60 - budget.requests.inWindow)
    // Both tasks finished, so their slots were given back.
    expect(budget.tasks.inFlight).toBe(0)
  }, 120_000)

  it("prints the budget as lines without --json", async () => {
    const run = await runCli(["budget"], childEnv({ REELKIT_HOME: tempHome() }))
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain("requests: 0 of 60 in the last 60 s (60 left)")
    expect(run.stdout).toContain("tasks in flight: 0 of 10 (10 left)")
    expect(run.stdout).toMatch(/spend today \(until .*\): 0 s used \(no cap\)/)
  }, 60_000)

  it("refuses a money cap without a currency, naming the variable", async () => {
    const run = await runCli(
      ["budget", "--json"],
      childEnv({ REELKIT_HOME: tempHome(), REELKIT_SPEND_CAP_MONEY_PER_DAY: "3" })
    )
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("REELKIT_SPEND_CAP_CURRENCY")
  }, 60_000)
})
