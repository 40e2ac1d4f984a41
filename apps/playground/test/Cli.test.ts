import { describe, expect, it } from "@effect/vitest"
import { ViduQ3, ViduQ3Input } from "@reelkit/provider-vidu-q3"
import { FakeApixo } from "@reelkit/testing"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { existsSync, statSync } from "node:fs"
import { afterAll, beforeAll } from "vitest"
import { childEnv, runCli, sha256OfFile, startCli, tempHome, waitForOutput } from "./utils.js"

// One fake apixo server in this process; each CLI run talks to it over HTTP, as it would to apixo.
let fake: FakeApixo.Running
let env: (home: string) => NodeJS.ProcessEnv

// Fast polls: with a key set the CLI would otherwise follow Vidu's advice (first poll after 75 s).
const fastPolls = ["--first-poll-after", "0.3", "--poll-every", "0.3"]

beforeAll(async () => {
  fake = await FakeApixo.start({
    models: { [ViduQ3.modelId]: { inputSchema: ViduQ3Input.ViduQ3Input } },
    timings: (task) =>
      String(task.input.prompt).includes("slow")
        ? { processingAfter: "500 millis", completeAfter: "4 seconds" }
        : { processingAfter: "300 millis", completeAfter: "1 second" },
    outcome: (task) =>
      String(task.input.prompt).includes("forbidden")
        ? FakeApixo.failure("CONTENT_VIOLATION", "The prompt breaks the content policy")
        : FakeApixo.success()
  })
  env = (home) => childEnv({ APIXO_API_KEY: Redacted.value(fake.apiKey), APIXO_BASE_URL: fake.url, REELKIT_HOME: home })
})

afterAll(async () => {
  await fake?.close()
})

const tasksOf = (prompt: string) => fake.tasks.filter((task) => task.input.prompt === prompt)

interface Printed {
  readonly taskKey: string
  readonly taskId: string | null
  readonly state: string
  readonly failCode?: string
  readonly failMessage?: string
  readonly resultUrls: ReadonlyArray<string>
  readonly artifacts: ReadonlyArray<{ path: string; bytes: number; sha256: string; contentType: string }>
}

const expectStoredVideo = (printed: Printed, home: string) => {
  expect(printed.artifacts).toHaveLength(1)
  const [artifact] = printed.artifacts
  expect(artifact!.path.startsWith(home)).toBe(true)
  expect(existsSync(artifact!.path)).toBe(true)
  expect(artifact!.contentType).toBe("video/mp4")
  expect(statSync(artifact!.path).size).toBe(artifact!.bytes)
  expect(sha256OfFile(artifact!.path)).toBe(artifact!.sha256)
}

// Concurrent: each test has its own REELKIT_HOME and prompt, and most of the time is process start-up.
describe.concurrent("reelkit CLI against the fake apixo server", () => {
  it("generate --json: submits once, waits, stores the video and prints the task", async () => {
    const home = tempHome()
    const prompt = "a red fox crossing a snowy field"
    const run = await runCli(
      ["generate", "--mode", "text-to-video", "--prompt", prompt, "--duration", "4", "--json", ...fastPolls],
      env(home)
    )
    expect(run.code, run.stderr).toBe(0)
    const printed = JSON.parse(run.stdout) as Printed
    const created = tasksOf(prompt)
    expect(created).toHaveLength(1)
    expect(created[0]!.input).toEqual({ mode: "text-to-video", prompt, duration: 4 })
    expect(printed.taskKey).toMatch(/^tk_/)
    expect(printed.taskId).toBe(created[0]!.taskId)
    expect(printed.state).toBe("completed")
    expect(printed.resultUrls).toEqual(created[0]!.resultUrls)
    expect(Object.keys(printed).sort()).toEqual(["artifacts", "resultUrls", "state", "taskId", "taskKey"])
    expectStoredVideo(printed, home)
  })

  it("a failed task exits 3 and still prints the task with its fail code", async () => {
    const home = tempHome()
    const prompt = "something forbidden"
    const run = await runCli(
      ["generate", "--mode", "text-to-video", "--prompt", prompt, "--json", ...fastPolls],
      env(home)
    )
    expect(run.code).toBe(3)
    const printed = JSON.parse(run.stdout) as Printed
    expect(printed.state).toBe("failed")
    expect(printed.failCode).toBe("CONTENT_VIOLATION")
    expect(printed.failMessage).toBe("The prompt breaks the content policy")
    expect(printed.artifacts).toEqual([])
    expect(tasksOf(prompt)).toHaveLength(1)
    // One sentence on stderr, naming the code; no stack trace, no key.
    const message = run.stderr.trim().split("\n").at(-1)!
    expect(message).toContain("CONTENT_VIOLATION")
    expect(run.stderr).not.toMatch(/\n\s+at /)
    expect(run.stderr).not.toContain(Redacted.value(fake.apiKey))
  })

  it("invalid input exits 2 and sends nothing", async () => {
    const home = tempHome()
    // A fake of its own, so no other test's traffic can hide a request.
    const quiet = await FakeApixo.start()
    const run = await runCli(
      ["generate", "--mode", "image-to-video", "--prompt", "animate it", "--json"],
      childEnv({ APIXO_API_KEY: Redacted.value(quiet.apiKey), APIXO_BASE_URL: quiet.url, REELKIT_HOME: home })
    ).finally(() => quiet.close())
    expect(run.code).toBe(2)
    expect(run.stdout).toBe("")
    expect(run.stderr.trim()).toBe(
      `reelkit: Invalid --image: it ${ViduQ3Input.rules.image_urls_required}; nothing was sent.`
    )
    expect(quiet.requests).toEqual([])
    // Nothing was recorded either: the provider's gate ran before any row was written.
    const listed = await runCli(["list", "--json"], childEnv({ REELKIT_HOME: home }))
    expect(JSON.parse(listed.stdout)).toEqual([])
  })

  it("generate --no-wait, then wait by apixo's task id, then list", async () => {
    const home = tempHome()
    const prompt = "a paper boat on a pond"
    const submitted = await runCli(
      ["generate", "--mode", "turbo-text-to-video", "--prompt", prompt, "--no-wait", "--json"],
      env(home)
    )
    expect(submitted.code, submitted.stderr).toBe(0)
    const first = JSON.parse(submitted.stdout) as Printed
    expect(first.state).toBe("submitted")
    expect(first.taskId).toBe(tasksOf(prompt)[0]!.taskId)

    const waited = await runCli(["wait", first.taskId!, "--json", ...fastPolls], env(home))
    expect(waited.code, waited.stderr).toBe(0)
    const done = JSON.parse(waited.stdout) as Printed
    expect(done.taskKey).toBe(first.taskKey)
    expect(done.state).toBe("completed")
    expectStoredVideo(done, home)
    expect(tasksOf(prompt)).toHaveLength(1)

    const listed = await runCli(["list", "--json"], env(home))
    expect(listed.code).toBe(0)
    expect(JSON.parse(listed.stdout)).toEqual([done])
  })

  it("reconcile finishes a task whose generate process was killed, without submitting it again", async () => {
    const home = tempHome()
    const prompt = "a slow sunrise over the hills"
    const generate = startCli(["generate", "--mode", "text-to-video", "--prompt", prompt, ...fastPolls], env(home))
    // The progress line names the task once `start` returned, that is once the ledger holds apixo's id.
    await waitForOutput(generate.child, generate.output, (output) => /tk_\S+\s+submitted/.test(output.stderr))
    generate.child.kill("SIGKILL")
    const killed = await generate.finished
    expect(killed.signal).toBe("SIGKILL")
    expect(tasksOf(prompt)).toHaveLength(1)

    const reconciled = await runCli(["reconcile", "--json", ...fastPolls], env(home))
    expect(reconciled.code, reconciled.stderr).toBe(0)
    const printed = JSON.parse(reconciled.stdout) as ReadonlyArray<Printed>
    expect(printed).toHaveLength(1)
    expect(printed[0]!.taskId).toBe(tasksOf(prompt)[0]!.taskId)
    expect(printed[0]!.state).toBe("completed")
    expectStoredVideo(printed[0]!, home)
    expect(tasksOf(prompt)).toHaveLength(1)
  })

  it("without a key, generate --no-wait then wait in another run (another in-process fake) stores the video", async () => {
    const home = tempHome()
    const noKey = childEnv({ REELKIT_HOME: home })
    const submitted = await runCli(
      ["generate", "--mode", "text-to-video", "--prompt", "a kite over dunes", "--no-wait", "--json"],
      noKey
    )
    expect(submitted.code, submitted.stderr).toBe(0)
    expect(submitted.stderr).toContain("APIXO_API_KEY is not set")
    const first = JSON.parse(submitted.stdout) as Printed
    expect(first.state).toBe("submitted")
    expect(fake.tasks.some((task) => task.taskId === first.taskId)).toBe(false)

    const waited = await runCli(["wait", first.taskKey, "--json"], noKey)
    expect(waited.code, waited.stderr).toBe(0)
    const done = JSON.parse(waited.stdout) as Printed
    expect([done.taskKey, done.taskId, done.state]).toEqual([first.taskKey, first.taskId, "completed"])
    expectStoredVideo(done, home)
  })

  it("serve: the same form posted twice (one nonce) creates one task; a new rendering gets a new nonce", async () => {
    const home = tempHome()
    const prompt = "a double-clicked lighthouse"
    const token = "a-serve-token-of-at-least-32-bytes!"
    const served = startCli(["serve", "--port", "0"], { ...env(home), REELKIT_SERVE_TOKEN: token })
    try {
      await waitForOutput(served.child, served.output, (output) => /serving http:\/\/\S+/.test(output.stderr))
      const url = /serving (http:\/\/\S+)/.exec(served.output.stderr)![1]!
      const authorization = `Bearer ${token}`
      const fieldOf = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1]
      const page = await (await fetch(url, { headers: { authorization } })).text()
      const nonce = fieldOf(page, "submission")
      expect(nonce).toMatch(/^[0-9a-f-]{36}$/)
      expect(fieldOf(await (await fetch(url, { headers: { authorization } })).text(), "submission")).not.toBe(nonce)
      const body = new URLSearchParams({
        mode: "text-to-video",
        prompt,
        submission: nonce!,
        csrf: fieldOf(page, "csrf")!
      }).toString()
      const post = () =>
        fetch(`${url}/tasks`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization },
          body,
          redirect: "manual"
        })
      const answers = await Promise.all([post(), post()])
      expect(answers.map((answer) => answer.status)).toEqual([303, 303])
      const locations = answers.map((answer) => answer.headers.get("location"))
      expect(locations[0]).toMatch(/^\/tasks\/tk_/)
      expect(locations[1]).toBe(locations[0])
      expect(tasksOf(prompt)).toHaveLength(1)
    } finally {
      served.child.kill("SIGTERM")
      await served.finished
    }
  })

  it("a refused key exits 4 for generate, status and wait alike; apixo's own 400 is not called unsent", async () => {
    // A fake of its own: a short prompt limit the CLI does not know, so only apixo's check refuses it.
    const strict = await FakeApixo.start({
      models: { [ViduQ3.modelId]: { inputSchema: Schema.Struct({ prompt: Schema.String.pipe(Schema.maxLength(8)) }) } }
    })
    try {
      const refusedHome = tempHome()
      const wrongKey = childEnv({
        APIXO_API_KEY: "sk-wrong-key",
        APIXO_BASE_URL: strict.url,
        REELKIT_HOME: refusedHome
      })
      const goodKey = childEnv({
        APIXO_API_KEY: Redacted.value(strict.apiKey),
        APIXO_BASE_URL: strict.url,
        REELKIT_HOME: tempHome()
      })
      const [unauthorized, invalid] = await Promise.all([
        runCli(["generate", "--mode", "text-to-video", "--prompt", "a fox"], wrongKey),
        runCli(["generate", "--mode", "text-to-video", "--prompt", "a prompt too long for apixo"], goodKey)
      ])
      expect(unauthorized.code, unauthorized.stderr).toBe(4)
      expect(invalid.code, invalid.stderr).toBe(2)
      const said = invalid.stderr.trim().split("\n").at(-1)!
      expect(said).toMatch(/^reelkit: apixo refused the input \(input\.prompt: .+\); no task was created/)
      expect(said).not.toContain("nothing was sent")

      const [listed] = JSON.parse((await runCli(["list", "--json"], wrongKey)).stdout) as ReadonlyArray<Printed>
      expect(listed!.state).toBe("rejected")
      const [status, waited] = await Promise.all([
        runCli(["status", listed!.taskKey, "--json"], wrongKey),
        runCli(["wait", listed!.taskKey, "--json"], wrongKey)
      ])
      expect([status.code, waited.code]).toEqual([4, 4])
      expect(waited.stderr).toContain("apixo refused the API key in APIXO_API_KEY")
      expect(waited.stderr).not.toContain("sk-wrong-key")
      expect(strict.tasks).toHaveLength(0)
    } finally {
      await strict.close()
    }
  })
})
