// Metric definitions, tagged with provider and model. Metrics carry ids only: never an input,
// a URL or anything that could hold a credential. Each metric is built from a key that already
// holds its tags, so an update does not rebuild and re-hash a tagged key (it is on the poll path).
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"

const completionBoundaries = MetricBoundaries.exponential({ start: 1, factor: 2, count: 14 })

export const metricsFor = (provider: { readonly providerId: string; readonly modelId: string }) => {
  const labels = [MetricLabel.make("provider", provider.providerId), MetricLabel.make("model", provider.modelId)]
  const counter = (name: string, description: string) =>
    Metric.fromMetricKey(MetricKey.taggedWithLabels(MetricKey.counter(name, { description }), labels))
  return {
    submits: counter("reelkit_submits_total", "Paid submit requests sent"),
    polls: counter("reelkit_polls_total", "Status requests sent"),
    retries: counter("reelkit_retries_total", "Retries of submits, polls and downloads"),
    failures: counter(
      "reelkit_failures_total",
      "Tasks that failed, were rejected or became ambiguous, and polls that gave up"
    ),
    completion: Metric.fromMetricKey(
      MetricKey.taggedWithLabels(
        MetricKey.histogram(
          "reelkit_time_to_completion_seconds",
          completionBoundaries,
          "Seconds from submit to a terminal status"
        ),
        labels
      )
    )
  }
}
