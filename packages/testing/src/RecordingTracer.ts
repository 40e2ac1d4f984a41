/**
 * A tracer that keeps every span it creates, so tests can check what reaches telemetry: span
 * names, attributes, events and how each span ended (an exporter records a failed span's error),
 * and that no secret is among them.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Tracer from "effect/Tracer"

/** One recorded span. */
export interface RecordedSpan {
  readonly name: string
  readonly attributes: ReadonlyMap<string, unknown>
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: Record<string, unknown> | undefined }>
  /** How the span ended when it failed: the failure as `Cause.pretty` prints it (what an exporter records). */
  readonly failure: string | undefined
}

/** A tracer that keeps every span it creates. */
export const make = (): { readonly tracer: Tracer.Tracer; readonly spans: Array<RecordedSpan> } => {
  const spans: Array<RecordedSpan> = []
  let next = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      const events: Array<{ name: string; attributes: Record<string, unknown> | undefined }> = []
      const recorded: { -readonly [K in keyof RecordedSpan]: RecordedSpan[K] } = {
        name,
        attributes,
        events,
        failure: undefined
      }
      spans.push(recorded)
      const id = String(++next)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: id,
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links: [...links],
        sampled: true,
        kind,
        end: (_endTime, exit) => {
          if (Exit.isFailure(exit)) recorded.failure = Cause.pretty(exit.cause)
        },
        attribute: (key, value) => {
          attributes.set(key, value)
        },
        event: (eventName, _time, eventAttributes) => {
          events.push({ name: eventName, attributes: eventAttributes })
        },
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
  return { tracer, spans }
}

/** Everything a span exposes, as text, to search for secrets. */
export const spanText = (spans: ReadonlyArray<RecordedSpan>): string =>
  JSON.stringify(
    spans.map((span) => ({
      name: span.name,
      attributes: [...span.attributes].map(([key, value]) => [key, String(value)]),
      events: span.events,
      failure: span.failure
    }))
  )
