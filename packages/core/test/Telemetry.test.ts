import { describe, expect, it } from "@effect/vitest"
import { RecordingTracer, ScriptedProvider } from "@reelkit/testing"
import { Effect, Metric, MetricState } from "effect"
import * as TaskClient from "../src/TaskClient.js"
import * as TaskError from "../src/TaskError.js"
import { advanceUntilDone, clientLayer } from "./utils.js"

const counter = (name: string) =>
  Effect.map(Metric.snapshot, (pairs) =>
    pairs
      .filter(
        (pair) =>
          pair.metricKey.name === name && [...pair.metricKey.tags].some((tag) => tag.value === "telemetry-model")
      )
      .reduce(
        (sum, pair) => sum + (MetricState.isCounterState(pair.metricState) ? Number(pair.metricState.count) : 0),
        0
      )
  )

describe("telemetry", () => {
  it.effect(
    "spans carry provider, model, task key and attempt; metrics count submits, polls, retries, completions",
    () => {
      const { tracer, spans } = RecordingTracer.make()
      return Effect.gen(function* () {
        const before = {
          submits: yield* counter("reelkit_submits_total"),
          polls: yield* counter("reelkit_polls_total"),
          retries: yield* counter("reelkit_retries_total")
        }
        const client = yield* TaskClient.TaskClient
        const fiber = yield* Effect.fork(client.generate({ prompt: "x" }, { taskKey: "tk_telemetry" }))
        yield* advanceUntilDone(fiber)
        expect((yield* counter("reelkit_submits_total")) - before.submits).toBe(2)
        expect((yield* counter("reelkit_polls_total")) - before.polls).toBe(2)
        // One submit retry (the 429) and one poll retry (the 503).
        expect((yield* counter("reelkit_retries_total")) - before.retries).toBe(2)
        const completion = (yield* Metric.snapshot).find(
          (pair) =>
            pair.metricKey.name === "reelkit_time_to_completion_seconds" &&
            [...pair.metricKey.tags].some((tag) => tag.value === "telemetry-model")
        )
        expect(completion !== undefined && MetricState.isHistogramState(completion.metricState)).toBe(true)
        if (completion !== undefined && MetricState.isHistogramState(completion.metricState)) {
          expect(completion.metricState.count).toBeGreaterThanOrEqual(1)
        }

        const submits = spans.filter((span) => span.name === "reelkit.submit")
        expect(submits.map((span) => span.attributes.get("reelkit.attempt"))).toEqual([1, 2])
        for (const span of [...submits, ...spans.filter((span) => span.name === "reelkit.status")]) {
          expect(span.attributes.get("reelkit.provider")).toBe("scripted")
          expect(span.attributes.get("reelkit.model")).toBe("telemetry-model")
          expect(span.attributes.get("reelkit.task_key")).toBe("tk_telemetry")
        }
        expect(
          spans.filter((span) => span.name === "reelkit.status").map((span) => span.attributes.get("reelkit.attempt"))
        ).toEqual([1, 2])
        expect(spans.some((span) => span.name === "reelkit.wait")).toBe(true)
      }).pipe(
        Effect.provide(
          clientLayer({
            modelId: "telemetry-model",
            script: () => ({
              submitFailures: [new TaskError.RateLimited({ message: "slow down", retryAfterMillis: 1000 })],
              statuses: [
                new TaskError.ServerError({ status: 503, message: "unavailable" }),
                ScriptedProvider.succeededWith("https://results.example/t.mp4")
              ]
            })
          })
        ),
        Effect.withTracer(tracer)
      )
    }
  )
})
