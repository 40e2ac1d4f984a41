/**
 * The playground's telemetry exports, through `@effect/opentelemetry`: core's spans go to an OTLP
 * collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads the other standard
 * `OTEL_EXPORTER_OTLP_*` variables itself), and `serve` offers core's Effect metrics in
 * Prometheus's text format. The OpenTelemetry SDK is loaded only when one of them is used, so
 * commands that need neither start no faster or slower because of it.
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

// The OpenTelemetry SDK is CommonJS: imported dynamically (natively, or from a bundle's chunk) its
// exports may sit on `default` only, so take them from there when they are.
const commonJs = <M extends object>(module: M): M => (module as { readonly default?: M }).default ?? module

/** The service name spans and metrics carry. */
export const serviceName = "reelkit-playground"

/** Traces to OTLP over HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; no layer at all otherwise. */
export const layerTracing: Layer.Layer<never> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const endpoint = yield* Effect.orElseSucceed(
      Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT")),
      () => Option.none<string>()
    )
    if (Option.isNone(endpoint)) return Layer.empty
    const [{ OTLPTraceExporter }, { BasicTracerProvider, BatchSpanProcessor }, Tracer, Resource] =
      yield* Effect.promise(() =>
        Promise.all([
          import("@opentelemetry/exporter-trace-otlp-http").then(commonJs),
          import("@opentelemetry/sdk-trace-base").then(commonJs),
          import("@effect/opentelemetry/Tracer"),
          import("@effect/opentelemetry/Resource")
        ])
      )
    // Shutting the provider down flushes the spans still batched, so a short command exports them too.
    const provider = Layer.scoped(
      Tracer.OtelTracerProvider,
      Effect.flatMap(Resource.Resource, (resource) =>
        Effect.acquireRelease(
          Effect.sync(
            () =>
              new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] })
          ),
          (provider) => Effect.ignore(Effect.tryPromise(() => provider.shutdown()))
        )
      )
    )
    return Tracer.layer.pipe(Layer.provide(provider), Layer.provide(Resource.layer({ serviceName })))
  })
)

/** Core's metrics, read on demand in Prometheus's text exposition format. */
export class PrometheusMetrics extends Context.Tag("@reelkit/playground/PrometheusMetrics")<
  PrometheusMetrics,
  { readonly scrape: Effect.Effect<string> }
>() {}

/** The Prometheus reader over Effect's metric registry (core's `reelkit_*` counters and histograms among them). */
export const layerPrometheus: Layer.Layer<PrometheusMetrics> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const [{ PrometheusExporter, PrometheusSerializer }, Metrics, Resource] = yield* Effect.promise(() =>
      Promise.all([
        import("@opentelemetry/exporter-prometheus").then(commonJs),
        import("@effect/opentelemetry/Metrics"),
        import("@effect/opentelemetry/Resource")
      ])
    )
    // The exporter's own HTTP server stays off: `serve` answers /metrics behind its access token.
    const exporter = new PrometheusExporter({ preventServerStart: true })
    const serializer = new PrometheusSerializer()
    const scrape = Effect.promise(() => exporter.collect()).pipe(
      Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics))
    )
    return Layer.succeed(PrometheusMetrics, { scrape }).pipe(
      Layer.merge(Metrics.layer(() => exporter)),
      Layer.provide(Resource.layer({ serviceName }))
    )
  })
)
