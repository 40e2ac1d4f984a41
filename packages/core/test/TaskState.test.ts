// The lifecycle as data: the transitions table, what a status does to a row, what a row means to a
// caller and what recovery does with it. Pure functions, so most cases are stated as properties
// over every state and every status (fast-check through effect/FastCheck, no new dependency).
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, FastCheck } from "effect"
import * as TaskLedger from "../src/TaskLedger.js"
import * as TaskState from "../src/TaskState.js"
import * as TaskStatus from "../src/TaskStatus.js"

const now = 1_800_000_000_000

/** A row in `state`, optionally leased. */
const rowIn = (
  state: TaskState.State,
  fields: Partial<ConstructorParameters<typeof TaskLedger.TaskRecord>[0]> = {}
): TaskLedger.TaskRecord =>
  new TaskLedger.TaskRecord({
    ...TaskLedger.newRecord({ taskKey: "tk_state", providerId: "p", modelId: "m", input: {} }, now - 60_000),
    state,
    ...fields
  })

const context: TaskState.StatusContext = { now, resultRetention: Duration.days(1), maxOutputs: 3 }

const outputs = (count: number) =>
  Array.from(
    { length: count },
    (_, index) => new TaskStatus.TaskOutput({ url: `https://results.example/${index}.mp4` })
  )

const stateArbitrary = FastCheck.constantFrom(...TaskState.states)

/** Checks a property over many generated cases within one effect test (one runtime, not one per case). */
const property = <Ts extends [unknown, ...Array<unknown>]>(
  arbitraries: { [K in keyof Ts]: FastCheck.Arbitrary<Ts[K]> },
  check: (...values: Ts) => void
) =>
  Effect.sync(() =>
    FastCheck.assert(
      FastCheck.property(
        ...(arbitraries as [FastCheck.Arbitrary<unknown>]),
        check as unknown as (value: unknown) => void
      )
    )
  )

const statusArbitrary: FastCheck.Arbitrary<TaskStatus.TaskStatus> = FastCheck.oneof(
  FastCheck.constant(new TaskStatus.Pending({})),
  FastCheck.option(FastCheck.integer({ min: 0, max: 100 }), { nil: undefined }).map(
    (progress) => new TaskStatus.Processing(progress === undefined ? {} : { progress })
  ),
  FastCheck.integer({ min: 0, max: 12 }).map((count) => new TaskStatus.Succeeded({ outputs: outputs(count) })),
  FastCheck.constant(new TaskStatus.Failed({ code: "CONTENT_VIOLATION", message: "not allowed" })),
  FastCheck.constant(new TaskStatus.Cancelled({ code: "UserCancelled" }))
)

/** Every state reachable from `from` by allowed transitions, never passing through `avoid`. */
const reachable = (from: TaskState.State, avoid: ReadonlyArray<TaskState.State> = []): Set<TaskState.State> => {
  const seen = new Set<TaskState.State>([from])
  const frontier = [from]
  while (frontier.length > 0) {
    for (const next of TaskState.transitions[frontier.pop()!]) {
      if (!seen.has(next) && !avoid.includes(next)) {
        seen.add(next)
        frontier.push(next)
      }
    }
  }
  return seen
}

describe("TaskState.transitions", () => {
  it.effect("lists every state, and every target it names is a state", () =>
    Effect.sync(() => {
      expect([...TaskState.states]).toEqual([
        "queued",
        "sending",
        "submitted",
        "pending",
        "processing",
        "succeeded",
        "completed",
        "failed",
        "rejected",
        "ambiguous",
        "cancelled"
      ])
      expect(Object.keys(TaskState.transitions).sort()).toEqual([...TaskState.states].sort())
      for (const targets of Object.values(TaskState.transitions)) {
        for (const target of targets) expect(TaskState.states).toContain(target)
      }
    })
  )

  it.effect("lets every state move to itself and agrees with canTransition", () =>
    property([stateArbitrary, stateArbitrary], (from, to) => {
      expect(TaskState.canTransition(from, from)).toBe(true)
      expect(TaskState.canTransition(from, to)).toBe(TaskState.transitions[from].includes(to))
      expect(TaskState.sourcesOf(to).includes(from)).toBe(TaskState.canTransition(from, to))
    })
  )

  it.effect("keeps completed, failed and cancelled where they are", () =>
    Effect.sync(() => {
      for (const state of ["completed", "failed", "cancelled"] as const) {
        expect(TaskState.transitions[state]).toEqual([state])
      }
      // A refused or ambiguous task moves again only through queued (the caller's resubmit) or,
      // for ambiguous, a status that confirms it: never straight to sending or completed.
      expect(TaskState.transitions.rejected).toEqual(["rejected", "queued"])
      expect(TaskState.canTransition("ambiguous", "sending")).toBe(false)
      expect(TaskState.canTransition("ambiguous", "completed")).toBe(false)
    })
  )

  it.effect("never lets a queued row reach the provider's states without passing through sending", () =>
    Effect.sync(() => {
      const withoutSending = reachable("queued", ["sending"])
      expect([...withoutSending].sort()).toEqual(["cancelled", "queued", "rejected"])
      // Only queued (and sending itself) lead to sending: a send always starts from a fenced queued row.
      expect(TaskState.sourcesOf("sending")).toEqual(["queued", "sending"])
      // Only a submit on the wire can become ambiguous; outputs are stored only after success.
      expect(TaskState.sourcesOf("ambiguous")).toEqual(["sending", "ambiguous"])
      expect(TaskState.sourcesOf("completed")).toEqual(["succeeded", "completed"])
    })
  )

  it.effect("a random walk from queued visits sending before any state where the provider has the task", () =>
    property([FastCheck.array(FastCheck.nat(), { maxLength: 40 })], (choices) => {
      let state: TaskState.State = "queued"
      let sent = false
      for (const choice of choices) {
        const targets: ReadonlyArray<TaskState.State> = TaskState.transitions[state]
        state = targets[choice % targets.length]!
        if (state === "sending") sent = true
        if (!["queued", "sending", "rejected", "cancelled"].includes(state)) expect(sent).toBe(true)
      }
    })
  )

  it.effect("splits the states into unfinished and terminal, with in-flight and submit states unfinished", () =>
    Effect.sync(() => {
      const unfinished = new Set(TaskState.unfinishedStates)
      const terminal = new Set(TaskState.terminalStates)
      expect([...unfinished].filter((state) => terminal.has(state))).toEqual([])
      expect([...unfinished, ...terminal].sort()).toEqual([...TaskState.states].sort())
      for (const state of [...TaskState.inFlightStates, ...TaskState.submitStates])
        expect(unfinished.has(state)).toBe(true)
      for (const state of TaskState.states) {
        expect(TaskState.isTerminal(state)).toBe(terminal.has(state))
        expect(TaskState.holdsSlot(state)).toBe(!terminal.has(state))
        expect(TaskState.isInFlight(state)).toBe(["submitted", "pending", "processing"].includes(state))
      }
    })
  )
})

describe("TaskState.applyStatus", () => {
  it.effect("says Unchanged when the row already says it, carrying the progress", () =>
    Effect.sync(() => {
      expect(TaskState.applyStatus(rowIn("pending"), new TaskStatus.Pending({}), context)).toEqual({
        _tag: "Unchanged",
        progress: undefined
      })
      expect(TaskState.applyStatus(rowIn("processing"), new TaskStatus.Processing({ progress: 40 }), context)).toEqual({
        _tag: "Unchanged",
        progress: 40
      })
    })
  )

  it.effect("advances a running row to the state the provider reports", () =>
    Effect.sync(() => {
      expect(TaskState.applyStatus(rowIn("submitted"), new TaskStatus.Pending({}), context)).toEqual({
        _tag: "Advance",
        patch: { state: "pending" },
        progress: undefined
      })
      expect(TaskState.applyStatus(rowIn("pending"), new TaskStatus.Processing({ progress: 7 }), context)).toEqual({
        _tag: "Advance",
        patch: { state: "processing" },
        progress: 7
      })
      // A provider may put a running task back in its queue.
      expect(TaskState.applyStatus(rowIn("processing"), new TaskStatus.Pending({}), context)._tag).toBe("Advance")
    })
  )

  it.effect("finishes a success with at most maxOutputs URLs, its completion time and the URLs' expiry", () =>
    Effect.sync(() => {
      const effect = TaskState.applyStatus(
        rowIn("processing"),
        new TaskStatus.Succeeded({ outputs: outputs(5), remoteCompletedAt: now - 1000 }),
        context
      )
      expect(effect).toEqual({
        _tag: "Finish",
        patch: {
          state: "succeeded",
          resultUrls: [
            "https://results.example/0.mp4",
            "https://results.example/1.mp4",
            "https://results.example/2.mp4"
          ],
          completedAt: now - 1000,
          resultExpiresAt: now + 86_400_000
        }
      })
      // Without a remote completion time, now is the completion time.
      const local = TaskState.applyStatus(
        rowIn("submitted"),
        new TaskStatus.Succeeded({ outputs: outputs(1) }),
        context
      )
      expect(local._tag === "Finish" && local.patch.completedAt).toBe(now)
    })
  )

  it.effect("finishes a failure with the provider's code and message", () =>
    Effect.sync(() => {
      expect(
        TaskState.applyStatus(rowIn("pending"), new TaskStatus.Failed({ code: "NSFW", message: "refused" }), context)
      ).toEqual({
        _tag: "Finish",
        patch: { state: "failed", failCode: "NSFW", failMessage: "refused", completedAt: now }
      })
    })
  )

  it.effect("ignores a status a row is past, or that a row in the submit phase cannot take", () =>
    Effect.sync(() => {
      const success = new TaskStatus.Succeeded({ outputs: outputs(1) })
      for (const state of ["completed", "failed", "cancelled", "succeeded", "queued", "sending", "rejected"] as const) {
        expect(TaskState.applyStatus(rowIn(state), success, context)).toEqual({ _tag: "Ignore" })
      }
      expect(TaskState.applyStatus(rowIn("succeeded"), new TaskStatus.Processing({}), context)).toEqual({
        _tag: "Ignore"
      })
      expect(
        TaskState.applyStatus(rowIn("failed"), new TaskStatus.Failed({ code: "X", message: "again" }), context)
      ).toEqual({ _tag: "Ignore" })
    })
  )

  it.effect("only ever asks for a write the transitions table allows, and never more outputs than maxOutputs", () =>
    property([stateArbitrary, statusArbitrary, FastCheck.integer({ min: 0, max: 10 })], (state, status, maxOutputs) => {
      const effect = TaskState.applyStatus(rowIn(state), status, { ...context, maxOutputs })
      switch (effect._tag) {
        case "Unchanged":
          expect(TaskState.isInFlight(state)).toBe(true)
          break
        case "Ignore":
          break
        case "Advance":
        case "Finish": {
          const target = effect.patch.state!
          expect(target).not.toBe(state)
          expect(TaskState.canTransition(state, target)).toBe(true)
          expect(effect._tag === "Finish").toBe(target === "succeeded" || target === "failed" || target === "cancelled")
          expect((effect.patch.resultUrls ?? []).length).toBeLessThanOrEqual(maxOutputs)
        }
      }
    })
  )
})

describe("TaskState.outcomeOf", () => {
  it.effect("says what every state means to a caller", () =>
    Effect.sync(() => {
      const outcomes = Object.fromEntries(
        TaskState.states.map((state) => [state, TaskState.outcomeOf(rowIn(state))._tag])
      )
      expect(outcomes).toEqual({
        queued: "Submitting",
        sending: "Submitting",
        submitted: "Running",
        pending: "Running",
        processing: "Running",
        succeeded: "StoreOutputs",
        completed: "Completed",
        failed: "Failed",
        rejected: "Rejected",
        ambiguous: "Ambiguous",
        cancelled: "Cancelled"
      })
      expect(TaskState.outcomeOf(rowIn("sending"))).toEqual({ _tag: "Submitting", phase: "sending" })
    })
  )

  it.effect("carries the row's failure, with defaults when the row has none", () =>
    Effect.sync(() => {
      expect(TaskState.outcomeOf(rowIn("failed", { failCode: "NSFW", failMessage: "refused" }))).toEqual({
        _tag: "Failed",
        code: "NSFW",
        message: "refused"
      })
      expect(TaskState.outcomeOf(rowIn("failed"))).toEqual({ _tag: "Failed", code: "UNKNOWN", message: "" })
      expect(
        TaskState.outcomeOf(rowIn("rejected", { failCode: "InsufficientCredits", failMessage: "top up" }))
      ).toEqual({
        _tag: "Rejected",
        code: "InsufficientCredits",
        message: "top up"
      })
      expect(TaskState.outcomeOf(rowIn("ambiguous", { failMessage: "no answer within 30 s" }))).toEqual({
        _tag: "Ambiguous",
        reason: "no answer within 30 s"
      })
    })
  )
})

describe("TaskState.recoveryOf", () => {
  it.effect(
    "sends a free queued row, marks a free sending row ambiguous, tracks running rows, stores succeeded ones",
    () =>
      Effect.sync(() => {
        const recoveries = Object.fromEntries(
          TaskState.states.map((state) => [state, TaskState.recoveryOf(rowIn(state), "me", now)._tag])
        )
        expect(recoveries).toEqual({
          queued: "Send",
          sending: "MarkAmbiguous",
          submitted: "Track",
          pending: "Track",
          processing: "Track",
          succeeded: "StoreOutputs",
          completed: "Nothing",
          failed: "Nothing",
          rejected: "Nothing",
          ambiguous: "Nothing",
          cancelled: "Nothing"
        })
      })
  )

  it.effect("leaves a row another live holder holds, and takes it once that lease has expired", () =>
    Effect.sync(() => {
      const held = { leaseOwner: "other", leaseExpiresAt: now + 5000 }
      expect(TaskState.recoveryOf(rowIn("sending", held), "me", now)).toEqual({
        _tag: "HeldElsewhere",
        owner: "other",
        until: now + 5000
      })
      expect(TaskState.recoveryOf(rowIn("queued", held), "me", now)._tag).toBe("HeldElsewhere")
      // Expired (also exactly at its end), or held by the recoverer itself: not elsewhere.
      expect(TaskState.recoveryOf(rowIn("queued", held), "me", now + 5000)).toEqual({ _tag: "Send" })
      expect(TaskState.recoveryOf(rowIn("sending", held), "me", now + 5001)).toEqual({ _tag: "MarkAmbiguous" })
      expect(TaskState.recoveryOf(rowIn("processing", held), "other", now)).toEqual({ _tag: "Track" })
      // A finished row needs nothing, whoever holds it.
      expect(TaskState.recoveryOf(rowIn("completed", held), "me", now)).toEqual({ _tag: "Nothing" })
    })
  )

  it.effect("never sends a row that is not queued and free", () =>
    property(
      [
        stateArbitrary,
        FastCheck.option(FastCheck.constantFrom("me", "other"), { nil: undefined }),
        FastCheck.integer({ min: -10_000, max: 10_000 })
      ],
      (state, leaseOwner, leaseOffset) => {
        const row = rowIn(state, leaseOwner === undefined ? {} : { leaseOwner, leaseExpiresAt: now + leaseOffset })
        const recovery = TaskState.recoveryOf(row, "me", now)
        if (recovery._tag === "Send") {
          expect(state).toBe("queued")
          expect(TaskState.heldByOther(row, "me", now)).toBe(false)
        }
        if (recovery._tag === "HeldElsewhere") expect(leaseOwner === "other" && leaseOffset > 0).toBe(true)
      }
    )
  )
})
