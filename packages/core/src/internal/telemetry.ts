// Metric definitions, tagged with provider and model. Metrics carry ids only: never an input,
// a URL or anything that could hold a credential.
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

const submits = Metric.counter("reelkit_submits_total", { description: "Paid submit requests sent" })
const polls = Metric.counter("reelkit_polls_total", { description: "Status requests sent" })
const retries = Metric.counter("reelkit_retries_total", { description: "Retries of submits, polls and downloads" })
const failures = Metric.counter("reelkit_failures_total", {
  description: "Tasks that failed, were rejected or became ambiguous, and polls that gave up"
})
const completion = Metric.histogram(
  "reelkit_time_to_completion_seconds",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 14 }),
  "Seconds from submit to a terminal status"
)

export const metricsFor = (provider: { readonly providerId: string; readonly modelId: string }) => {
  const tag = <M extends Metric.Metric<any, any, any>>(metric: M): M =>
    metric.pipe(Metric.tagged("provider", provider.providerId), Metric.tagged("model", provider.modelId)) as M
  return {
    submits: tag(submits),
    polls: tag(polls),
    retries: tag(retries),
    failures: tag(failures),
    completion: tag(completion)
  }
}
