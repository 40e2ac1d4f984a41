import { describe, expect, it } from "@effect/vitest"
import { parse } from "../src/internal/fakeApixoCli.js"
import * as FakeApixo from "../src/FakeApixo.js"

const request = (prompt: string): FakeApixo.TaskRequest => ({
  modelId: "vidu-q3",
  input: { prompt },
  requestType: "async",
  callbackUrl: undefined,
  provider: undefined,
  sequence: 1
})

describe("reelkit-fake-apixo flags", () => {
  it("maps every flag to the fake's options, seconds to milliseconds", () => {
    const parsed = parse([
      "--port=8787",
      "--key",
      "k1",
      "--key",
      "k2",
      "--balance",
      "120",
      "--rpm",
      "30",
      "--concurrency",
      "2",
      "--retry-after",
      "none",
      "--processing-after",
      "2",
      "--complete-after",
      "20",
      "--retention",
      "3600"
    ])
    expect(parsed._tag === "Run" && { ...parsed.options, outcome: undefined }).toEqual({
      port: 8787,
      host: undefined,
      apiKeys: ["k1", "k2"],
      balanceSeconds: 120,
      requestsPerMinute: 30,
      concurrentTasks: 2,
      retryAfter: "none",
      timings: { processingAfter: 2000, completeAfter: 20000 },
      resultRetention: 3_600_000,
      outcome: undefined
    })
  })

  it("fails tasks whose prompt contains --fail-prompt, and reads numeric Retry-After", () => {
    const parsed = parse(["--fail-prompt", "forbidden", "--retry-after", "9"])
    if (parsed._tag !== "Run") throw new Error("expected Run")
    const outcome = parsed.options.outcome as (task: FakeApixo.TaskRequest) => FakeApixo.Outcome
    expect(outcome(request("something forbidden"))).toEqual(
      FakeApixo.failure("CONTENT_VIOLATION", "Content does not meet safety guidelines")
    )
    expect(outcome(request("a calm sea"))).toEqual(FakeApixo.success())
    expect(parsed.options.retryAfter).toBe(9)
  })

  it("rejects unknown flags and bad numbers, and answers --help", () => {
    expect(() => parse(["--prot", "1"])).toThrow(/Unknown option/)
    expect(() => parse(["--port", "abc"])).toThrow('--port must be a non-negative number, got "abc"')
    expect(parse(["--help"])).toEqual({ _tag: "Help" })
  })
})
