// Test helpers: the key used by the tests, and re-exports of the shared scripted HTTP server and
// recording tracer from @reelkit/testing.
import { RecordingTracer, ScriptedHttpServer } from "@reelkit/testing"
import * as Redacted from "effect/Redacted"

/** The key used by tests; asserted absent from every error, message and span. */
export const apiKey = "sk-test-5ecret-b5f1e0c2"
/** The key as the library takes it. */
export const redactedKey = Redacted.make(apiKey)

export type RecordedRequest = ScriptedHttpServer.RecordedRequest
export type Reply = ScriptedHttpServer.Reply
export type ScriptedServer = ScriptedHttpServer.ScriptedServer
export const makeServer = ScriptedHttpServer.make
export const refusedBaseUrl = ScriptedHttpServer.refusedBaseUrl
export type RecordedSpan = RecordingTracer.RecordedSpan
export const recordingTracer = RecordingTracer.make
export const spanText = RecordingTracer.spanText
