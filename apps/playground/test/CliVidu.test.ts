// The CLI on the official Vidu transport (`--transport vidu`): the real binary against FakeVidu
// servers on real sockets in this process (one fast, one whose tasks never start, for cancel), and
// against the fake each run starts in its own process when VIDU_API_KEY is not set. Every wait is
// for a process to end or print, never for time.
import { describe, expect, it } from "@effect/vitest"
import { FakeVidu } from "@reelkit/testing"
import * as Redacted from "effect/Redacted"
import { existsSync, statSync } from "node:fs"
import { afterAll, beforeAll } from "vitest"
import { childEnv, runCli, sha256OfFile, tempHome } from "./utils.js"

let fast: FakeVidu.Running
// Its tasks stay queueing for an hour: a cancel always finds one that has not started.
let idle: FakeVidu.Running

const fastPolls = ["--first-poll-after", "0.3", "--poll-every", "0.3"]

beforeAll(async () => {
  ;[fast, idle] = await Promise.all([
    FakeVidu.start({ timings: { processingAfter: "300 millis", completeAfter: "1 second" } }),
    FakeVidu.start({ timings: { processingAfter: "1 hour", completeAfter: "2 hours" } })
  ])
})

afterAll(async () => {
  await Promise.all([fast?.close(), idle?.close()])
})

const envOf = (fake: FakeVidu.Running, home: string) =>
  childEnv({ VIDU_API_KEY: Redacted.value(fake.apiKey), VIDU_BASE_URL: fake.url, REELKIT_HOME: home })

interface Printed {
  readonly taskKey: string
  readonly taskId: string | null
  readonly state: string
  readonly failCode?: string
  readonly resultUrls: ReadonlyArray<string>
  readonly artifacts: ReadonlyArray<{ path: string; bytes: number; sha256: string; contentType: string }>
  readonly warnings?: ReadonlyArray<{ field: string; message: string }>
}

const tasksOf = (fake: FakeVidu.Running, prompt: string) => fake.tasks.filter((task) => task.body.prompt === prompt)

const expectStoredVideo = (printed: Printed, home: string) => {
  expect(printed.artifacts).toHaveLength(1)
  const [artifact] = printed.artifacts
  expect(artifact!.path.startsWith(home)).toBe(true)
  expect(statSync(artifact!.path).size).toBe(artifact!.bytes)
  expect(sha256OfFile(artifact!.path)).toBe(artifact!.sha256)
}

describe.concurrent("reelkit CLI with --transport vidu", () => {
  it("generate --json: Vidu's text2video with viduq3-pro, the video stored; a field Vidu cannot carry is a warning", async () => {
    const home = tempHome()
    const prompt = "a heron in the reeds"
    const run = await runCli(
      [
        "generate",
        "--transport",
        "vidu",
        "--mode",
        "text-to-video",
        "--prompt",
        prompt,
        "--duration",
        "4",
        "--style",
        "anime",
        "--json",
        ...fastPolls
      ],
      envOf(fast, home)
    )
    expect(run.code, run.stderr).toBe(0)
    const printed = JSON.parse(run.stdout) as Printed
    const created = tasksOf(fast, prompt)
    expect(created).toHaveLength(1)
    expect(created[0]!.endpoint).toBe("text2video")
    // The style was not sent (Vidu's Q3 takes none), and the caller is told so, on stderr and in the JSON.
    expect(created[0]!.body).toEqual({ model: "viduq3-pro", prompt, duration: 4 })
    expect(printed.warnings).toEqual([{ field: "input.style", message: expect.stringContaining("is not sent") }])
    expect(run.stderr).toContain("reelkit: warning: input.style is not sent")
    expect(printed.taskId).toBe(created[0]!.taskId)
    expect(printed.state).toBe("completed")
    expectStoredVideo(printed, home)
  })

  it("generate --no-wait, then status and wait find the task's transport in its row; --transport apixo is refused", async () => {
    const home = tempHome()
    const prompt = "a tram in the rain"
    const submitted = await runCli(
      ["generate", "--transport", "vidu", "--mode", "turbo-text-to-video", "--prompt", prompt, "--no-wait", "--json"],
      envOf(fast, home)
    )
    expect(submitted.code, submitted.stderr).toBe(0)
    const first = JSON.parse(submitted.stdout) as Printed
    expect(first.state).toBe("submitted")
    expect(tasksOf(fast, prompt).map((task) => task.model)).toEqual(["viduq3-turbo"])

    // Without --transport: the row says vidu, so Vidu is asked (the apixo default would not know the id).
    const status = await runCli(["status", first.taskKey, "--json"], envOf(fast, home))
    expect(status.code, status.stderr).toBe(0)
    expect((JSON.parse(status.stdout) as Printed).taskId).toBe(first.taskId)

    const wrong = await runCli(["status", first.taskKey, "--transport", "apixo"], envOf(fast, home))
    expect(wrong.code).toBe(2)
    expect(wrong.stdout).toBe("")
    expect(wrong.stderr.trim()).toBe(
      `reelkit: ${first.taskKey} was sent on vidu, not apixo: run it with --transport vidu (or without --transport); nothing was sent.`
    )

    const waited = await runCli(
      ["wait", first.taskId!, "--transport", "vidu", "--json", ...fastPolls],
      envOf(fast, home)
    )
    expect(waited.code, waited.stderr).toBe(0)
    const done = JSON.parse(waited.stdout) as Printed
    expect([done.taskKey, done.state]).toEqual([first.taskKey, "completed"])
    expectStoredVideo(done, home)
    expect(tasksOf(fast, prompt)).toHaveLength(1)
  })

  it("cancel: a task that has not started is cancelled at Vidu (exit 0), refunded, and reads cancelled", async () => {
    const home = tempHome()
    const prompt = "a kettle that never boils"
    const submitted = await runCli(
      ["generate", "--transport", "vidu", "--mode", "text-to-video", "--prompt", prompt, "--no-wait", "--json"],
      envOf(idle, home)
    )
    expect(submitted.code, submitted.stderr).toBe(0)
    const first = JSON.parse(submitted.stdout) as Printed

    const cancelled = await runCli(["cancel", first.taskKey, "--transport", "vidu", "--json"], envOf(idle, home))
    expect(cancelled.code, cancelled.stderr).toBe(0)
    const printed = JSON.parse(cancelled.stdout) as Printed
    expect([printed.taskKey, printed.state]).toEqual([first.taskKey, "cancelled"])
    const [task] = tasksOf(idle, prompt)
    expect(task!.cancelledAt).toBeDefined()
    expect(
      idle.requests.filter((request) => request.route === "cancel" && request.taskId === task!.taskId)
    ).toHaveLength(1)
    // Billed once, refunded once.
    expect(idle.bills.filter((bill) => bill.taskId === task!.taskId).map((bill) => Math.sign(bill.credits))).toEqual([
      1, -1
    ])

    const status = await runCli(["status", first.taskKey, "--json"], envOf(idle, home))
    expect(status.code, status.stderr).toBe(0)
    expect((JSON.parse(status.stdout) as Printed).state).toBe("cancelled")
  })

  it("without VIDU_API_KEY, each run starts its own fake Vidu: generate --no-wait, wait in another run, stored", async () => {
    const home = tempHome()
    const noKey = childEnv({ REELKIT_HOME: home })
    const submitted = await runCli(
      ["generate", "--transport", "vidu", "--mode", "text-to-video", "--prompt", "a lantern", "--no-wait", "--json"],
      noKey
    )
    expect(submitted.code, submitted.stderr).toBe(0)
    expect(submitted.stderr).toContain("VIDU_API_KEY is not set, so vidu-q3 on vidu uses a fake Vidu server")
    const first = JSON.parse(submitted.stdout) as Printed
    expect(first.taskId).toMatch(/^vidu_/)

    const waited = await runCli(["wait", first.taskKey, "--json"], noKey)
    expect(waited.code, waited.stderr).toBe(0)
    const done = JSON.parse(waited.stdout) as Printed
    expect([done.taskKey, done.taskId, done.state]).toEqual([first.taskKey, first.taskId, "completed"])
    expectStoredVideo(done, home)
  })

  it("cancel on apixo is refused with one sentence and exit 2; nothing is sent and the task goes on", async () => {
    const home = tempHome()
    const noKey = childEnv({ REELKIT_HOME: home })
    const submitted = await runCli(
      ["generate", "--mode", "text-to-video", "--prompt", "a sailboat", "--no-wait", "--json"],
      noKey
    )
    expect(submitted.code, submitted.stderr).toBe(0)
    const first = JSON.parse(submitted.stdout) as Printed

    const refused = await runCli(["cancel", first.taskKey, "--transport", "apixo"], noKey)
    expect(refused.code).toBe(2)
    expect(refused.stdout).toBe("")
    const said = refused.stderr
      .trim()
      .split("\n")
      .filter((line) => !line.includes("is not set"))
    expect(said).toEqual([
      'reelkit: apixo offers no way to cancel a task, so nothing was sent and the task goes on; pick it up with "reelkit wait".'
    ])

    const waited = await runCli(["wait", first.taskKey, "--json"], noKey)
    expect(waited.code, waited.stderr).toBe(0)
    expect((JSON.parse(waited.stdout) as Printed).state).toBe("completed")
  })

  it("each transport's budget is its own: Vidu's requests are not counted in apixo's budget", async () => {
    const home = tempHome()
    const submitted = await runCli(
      ["generate", "--transport", "vidu", "--mode", "text-to-video", "--prompt", "a budget", "--no-wait"],
      envOf(fast, home)
    )
    expect(submitted.code, submitted.stderr).toBe(0)
    const budgetOf = async (transport: string) => {
      const run = await runCli(["budget", "--transport", transport, "--json"], envOf(fast, home))
      expect(run.code, run.stderr).toBe(0)
      return JSON.parse(run.stdout) as { readonly requests: { readonly inWindow: number } }
    }
    expect((await budgetOf("vidu")).requests.inWindow).toBeGreaterThanOrEqual(1)
    expect((await budgetOf("apixo")).requests.inWindow).toBe(0)
    expect(existsSync(`${home}/ledger.sqlite`)).toBe(true)
  })

  it("list --transport shows only that pair's tasks; list alone shows every task", async () => {
    const home = tempHome()
    const submitted = await runCli(
      [
        "generate",
        "--transport",
        "vidu",
        "--mode",
        "text-to-video",
        "--prompt",
        "a listed task",
        "--no-wait",
        "--json"
      ],
      envOf(fast, home)
    )
    expect(submitted.code, submitted.stderr).toBe(0)
    const { taskKey } = JSON.parse(submitted.stdout) as Printed
    const keysOf = async (args: ReadonlyArray<string>) => {
      const run = await runCli(["list", "--json", ...args], envOf(fast, home))
      expect(run.code, run.stderr).toBe(0)
      return (JSON.parse(run.stdout) as ReadonlyArray<Printed>).map((printed) => printed.taskKey)
    }
    expect(await keysOf(["--transport", "vidu"])).toEqual([taskKey])
    expect(await keysOf(["--transport", "apixo"])).toEqual([])
    expect(await keysOf([])).toEqual([taskKey])
  })
})
