// The CLI's behaviour as a process: exit codes, what reaches stderr and stdout, Ctrl-C, the checks
// that run before any request, ambiguous rows and resubmit, `fake-apixo`. Each test runs the real
// `bin/reelkit.mjs` against a fake apixo server on a real socket, and waits for lines, never time.
import { describe, expect, it } from "@effect/vitest"
import { ApixoModel } from "@reelkit/apixo"
import { TaskLedger } from "@reelkit/core"
import { ViduQ3, ViduQ3Input } from "@reelkit/provider-vidu-q3"
import { FakeApixo } from "@reelkit/testing"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { existsSync } from "node:fs"
import { createServer } from "node:net"
import { execFileSync, spawn } from "node:child_process"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import { ledgerLayer } from "../src/Settings.js"
import { appDir, binary, childEnv, runCli, startCli, tempHome, waitForOutput } from "./utils.js"

let fake: FakeApixo.Running
let env: (home: string, extra?: Record<string, string>) => NodeJS.ProcessEnv

const fastPolls = ["--first-poll-after", "0.2", "--poll-every", "0.2"]
const pricing = JSON.stringify({ currency: "USD", standard: { "720p": 0.1 }, turbo: { "720p": 0.05 } })

beforeAll(async () => {
  fake = await FakeApixo.start({
    models: { [ViduQ3.modelId]: { inputSchema: ViduQ3Input.ViduQ3Input } },
    timings: (task) =>
      String(task.input.prompt).includes("slow")
        ? { processingAfter: "500 millis", completeAfter: "30 seconds" }
        : { processingAfter: "200 millis", completeAfter: "600 millis" }
  })
  env = (home, extra = {}) =>
    childEnv({ APIXO_API_KEY: Redacted.value(fake.apiKey), APIXO_BASE_URL: fake.url, REELKIT_HOME: home, ...extra })
})

afterAll(async () => {
  await fake?.close()
})

const tasksOf = (prompt: string) => fake.tasks.filter((task) => task.input.prompt === prompt)
const lastLine = (text: string) => text.trim().split("\n").at(-1) ?? ""

// A port nothing listens on: bound by the OS, then released.
const closedPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

describe.concurrent("reelkit as a process", () => {
  it("parse errors are one reelkit: sentence with a hint, exit 2, and send nothing", async () => {
    const home = tempHome()
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [
        ["generate", "--mode", "text-to-video", "--promt", "a fox"],
        'reelkit: --promt is not an option of this command (did you mean --prompt?); run "reelkit generate --help" for its options.'
      ],
      [
        ["gnerate"],
        'reelkit: "gnerate" is not a reelkit command (did you mean "generate"?); run "reelkit --help" for the commands.'
      ],
      [
        ["generate", "--mode", "text-to-video", "--prompt", "a fox", "--seed", "abc"],
        'reelkit: --seed must be a whole number (got "abc"); run "reelkit generate --help" for its options.'
      ],
      [
        ["generate", "--mode", "text-to-vdeo", "--prompt", "a fox"],
        'reelkit: --mode must be one of text-to-video, turbo-text-to-video, image-to-video, turbo-image-to-video (got "text-to-vdeo") (did you mean text-to-video?); run "reelkit generate --help" for its options.'
      ],
      [
        ["generate", "--mode", "text-to-video", "--prompt", "a fox", "--duration", "20"],
        'reelkit: --duration must be a whole number of seconds from 1 to 16 (got 20); run "reelkit generate --help" for its options.'
      ]
    ]
    const runs = await Promise.all(cases.map(([args]) => runCli(args, env(home))))
    for (const [index, run] of runs.entries()) {
      expect(run.code, run.stderr).toBe(2)
      expect(run.stderr).toBe(`${cases[index]![1]}\n`)
      expect(run.stdout).toBe("")
    }
    expect(tasksOf("a fox")).toEqual([])
    expect(existsSync(`${home}/ledger.sqlite`)).toBe(false)
  })

  it('--duration "" and --prompt "" are refused, never sent as "not given"', async () => {
    const home = tempHome()
    const prompt = "an empty duration must not bill the default"
    const [duration, emptyPrompt] = await Promise.all([
      runCli(["generate", "--mode", "text-to-video", "--prompt", prompt, "--duration", ""], env(home)),
      runCli(["generate", "--mode", "text-to-video", "--prompt", ""], env(home))
    ])
    expect(duration.code).toBe(2)
    expect(lastLine(duration.stderr)).toBe(
      'reelkit: --duration must be a whole number (got ""); run "reelkit generate --help" for its options.'
    )
    expect(emptyPrompt.code).toBe(2)
    expect(lastLine(emptyPrompt.stderr)).toMatch(/^reelkit: --prompt is empty/)
    expect(tasksOf(prompt)).toEqual([])
  })

  it("help in a pipe has no ANSI codes and no filler; every option has its own description", async () => {
    const run = await runCli(["generate", "--help"], env(tempHome()))
    expect(run.code).toBe(0)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI escapes
    expect(run.stdout).not.toMatch(/\u001b\[/)
    expect(run.stdout).not.toContain("A user-defined piece of text")
    expect(run.stdout).toContain("--duration integer")
    expect(run.stdout).toContain("--mode text-to-video | turbo-text-to-video | image-to-video | turbo-image-to-video")
    expect(run.stdout).toContain("--resolution 540p | 720p | 1080p")
  })

  it("APIXO_BASE_URL=not-a-url is named in one sentence; an unreachable base URL fails at once", async () => {
    const home = tempHome()
    const port = await closedPort()
    const [notUrl, unreachable] = await Promise.all([
      runCli(["status", "tk_x"], env(home, { APIXO_BASE_URL: "not-a-url" })),
      runCli(
        ["generate", "--mode", "text-to-video", "--prompt", "nobody listens"],
        env(home, { APIXO_BASE_URL: `http://127.0.0.1:${port}` })
      )
    ])
    expect(notUrl.code).toBe(2)
    expect(notUrl.stderr).toBe(
      'reelkit: APIXO_BASE_URL is not an http(s) URL (got "not-a-url"); set it to apixo\'s base URL (e.g. https://api.apixo.ai) or unset it.\n'
    )
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr).toBe(
      `reelkit: cannot reach apixo at http://127.0.0.1:${port} (connection refused); check APIXO_BASE_URL and the network, then try again; nothing was sent.\n`
    )
    // Refused before the ledger was opened: nothing recorded, nothing to reconcile.
    expect(existsSync(`${home}/ledger.sqlite`)).toBe(false)
  })

  it("a bad REELKIT_PRICING or REELKIT_CONFIRM_ABOVE is named in one sentence, before anything is sent", async () => {
    const home = tempHome()
    const [pricingRun, confirmRun] = await Promise.all([
      runCli(
        ["estimate", "--mode", "text-to-video", "--resolution", "720p", "--duration", "4"],
        env(home, { REELKIT_PRICING: '{"currency":"USD","standard":{"720p":-1},"turbo":{}}' })
      ),
      runCli(
        ["generate", "--mode", "text-to-video", "--prompt", "a badly configured fox"],
        env(home, { REELKIT_CONFIRM_ABOVE: "lots" })
      )
    ])
    expect(pricingRun.code).toBe(2)
    expect(pricingRun.stderr).toMatch(
      /^reelkit: REELKIT_PRICING is not a Vidu Q3 price table at standard\.720p \(.+\), e\.g\. \{.+\}; fix it or unset it\.\n$/
    )
    expect(confirmRun.code).toBe(2)
    expect(confirmRun.stderr).toBe(
      'reelkit: REELKIT_CONFIRM_ABOVE must be an amount, 0 or more (got "lots"); fix it or unset it.\n'
    )
    expect(tasksOf("a badly configured fox")).toEqual([])
  })

  it("estimate prints the cost from REELKIT_PRICING; without prices it says what to set", async () => {
    const home = tempHome()
    const args = ["estimate", "--mode", "turbo-text-to-video", "--resolution", "720p", "--duration", "8"]
    const [priced, json, unpriced] = await Promise.all([
      runCli(args, env(home, { REELKIT_PRICING: pricing })),
      runCli([...args, "--json"], env(home, { REELKIT_PRICING: pricing })),
      runCli(args, env(home))
    ])
    expect(priced.code, priced.stderr).toBe(0)
    expect(priced.stdout).toBe("0.4 USD (8 s at 0.05 USD per second, turbo 720p)\n")
    expect(JSON.parse(json.stdout)).toEqual({ amount: 0.4, currency: "USD", seconds: 8, pricePerSecond: 0.05 })
    expect(unpriced.code).toBe(2)
    expect(unpriced.stderr).toMatch(/^reelkit: cannot estimate the cost: no prices are configured; set REELKIT_PRICING/)
  })

  it("generate prints its cost before submitting; above REELKIT_CONFIRM_ABOVE it needs --yes", async () => {
    const home = tempHome()
    const prompt = "a priced heron"
    const args = ["generate", "--mode", "text-to-video", "--prompt", prompt, "--resolution", "720p", "--duration", "4"]
    const settings = { REELKIT_PRICING: pricing, REELKIT_CONFIRM_ABOVE: "0.3" }
    const refused = await runCli([...args, "--json"], env(home, settings))
    expect(refused.code).toBe(2)
    expect(refused.stderr).toBe(
      "reelkit: estimated cost 0.4 USD (4 s at 0.1 USD per second, standard 720p).\n" +
        "reelkit: this task would cost 0.4 USD (4 s at 0.1 USD per second, standard 720p), above REELKIT_CONFIRM_ABOVE (0.3); pass --yes to submit it anyway; nothing was sent.\n"
    )
    expect(tasksOf(prompt)).toEqual([])

    const confirmed = await runCli([...args, "--yes", "--json", ...fastPolls], env(home, settings))
    expect(confirmed.code, confirmed.stderr).toBe(0)
    expect(confirmed.stderr.split("\n")[0]).toBe(
      "reelkit: estimated cost 0.4 USD (4 s at 0.1 USD per second, standard 720p)."
    )
    expect(JSON.parse(confirmed.stdout).state).toBe("completed")
    expect(tasksOf(prompt)).toHaveLength(1)
  })

  it("Ctrl-C while waiting prints how to resume and exits 130; the task is then picked up by wait", async () => {
    const home = tempHome()
    const prompt = "a slow interrupted glacier"
    const generate = startCli(["generate", "--mode", "text-to-video", "--prompt", prompt, ...fastPolls], env(home))
    await waitForOutput(generate.child, generate.output, (output) => /tk_\S+\s+(submitted|pending)/.test(output.stderr))
    generate.child.kill("SIGINT")
    const stopped = await generate.finished
    expect(stopped.code).toBe(130)
    const taskKey = /(tk_\S+)/.exec(stopped.stderr)![1]!
    expect(lastLine(stopped.stderr)).toBe(
      `reelkit: stopped waiting for ${taskKey}; the task goes on at apixo. Resume with: reelkit wait ${taskKey}`
    )
    expect(tasksOf(prompt)).toHaveLength(1)

    const listed = JSON.parse((await runCli(["list", "--json"], env(home))).stdout) as ReadonlyArray<{
      taskKey: string
      state: string
    }>
    expect(listed.map((task) => task.taskKey)).toEqual([taskKey])
    expect(["submitted", "pending", "processing"]).toContain(listed[0]!.state)
  })

  it("wait on a finished task prints its row and no progress going backwards", async () => {
    const home = tempHome()
    const prompt = "a finished lantern"
    const generated = await runCli(["generate", "--mode", "text-to-video", "--prompt", prompt, ...fastPolls], env(home))
    expect(generated.code, generated.stderr).toBe(0)
    const taskKey = /(tk_\S+)/.exec(generated.stdout)![1]!
    const waited = await runCli(["wait", taskKey], env(home))
    expect(waited.code, waited.stderr).toBe(0)
    expect(waited.stderr).toBe("")
    expect(waited.stdout.split("\n")[0]).toMatch(new RegExp(`^${taskKey}  completed`))
  })

  it("reconcile reports an ambiguous row with what to do and exits 1; resubmit sends it once; reconcile is then clean", async () => {
    const home = tempHome()
    const prompt = "an ambiguous heron at dusk"
    const taskKey = "tk_ambiguousheron"
    // A submit whose outcome was lost (the process died while sending): the ledger says ambiguous.
    await Effect.runPromise(
      Effect.gen(function* () {
        const ledger = yield* TaskLedger.TaskLedger
        // The row as the gate recorded it: the exact apixo request a resubmit sends again.
        const prepared = yield* ApixoModel.prepare(ViduQ3.model)({
          input: { mode: "text-to-video", prompt, duration: 4 }
        })
        const created = yield* ledger.create({
          taskKey,
          providerId: "apixo",
          modelId: ViduQ3.modelId,
          input: prepared.input,
          request: prepared.wire
        })
        // queued -> sending -> ambiguous, as a process that died mid-POST leaves it after reconcile.
        const sending = yield* ledger.transition(TaskLedger.fence(created.record, "test"), { state: "sending" })
        yield* ledger.transition(TaskLedger.fence(sending, "test"), {
          state: "ambiguous",
          failMessage: "The process stopped while the submit was in flight; it was not re-sent"
        })
      }).pipe(Effect.provide(ledgerLayer(home)))
    )
    const reconciled = await runCli(["reconcile", ...fastPolls], env(home))
    expect(reconciled.code).toBe(1)
    expect(reconciled.stderr).toContain(
      `${taskKey} is ambiguous: its submit may or may not have reached apixo, so it was not sent again. Check apixo's dashboard for a text-to-video task with prompt "${prompt}" created around `
    )
    expect(reconciled.stderr).toContain(`if there is none, run "reelkit resubmit ${taskKey}".`)
    // wait and status say the same and exit 1: the task needs the user's decision.
    const [waited, status] = await Promise.all([
      runCli(["wait", taskKey], env(home)),
      runCli(["status", taskKey], env(home))
    ])
    expect([waited.code, status.code]).toEqual([1, 1])
    for (const run of [waited, status])
      expect(lastLine(run.stderr)).toMatch(/run "reelkit resubmit tk_ambiguousheron"\.$/)
    expect(tasksOf(prompt)).toEqual([])

    const resubmitted = await runCli(["resubmit", taskKey, "--json", ...fastPolls], env(home))
    expect(resubmitted.code, resubmitted.stderr).toBe(0)
    expect(JSON.parse(resubmitted.stdout)).toMatchObject({ taskKey, state: "completed" })
    expect(tasksOf(prompt)).toHaveLength(1)

    const clean = await runCli(["reconcile", "--json", ...fastPolls], env(home))
    expect(clean.code, clean.stderr).toBe(0)
    expect(JSON.parse(clean.stdout)).toEqual([])
    expect(tasksOf(prompt)).toHaveLength(1)
  })

  it("fake-apixo runs from the repository with no build and checks inputs with Vidu Q3's schema", async () => {
    const served = startCli(["fake-apixo", "--port", "0"], childEnv({}))
    try {
      await waitForOutput(served.child, served.output, (output) => /listening on http:\/\/\S+/.test(output.stdout))
      const url = /listening on (http:\/\/[^\s(]+)/.exec(served.output.stdout)![1]!
      const key = /API key: ([^;)\s]+)/.exec(served.output.stdout)![1]!
      const submit = (model: string, input: unknown) =>
        fetch(`${url}/api/v1/generateTask/${model}`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ request_type: "async", input })
        })
      const [valid, invalid, unknown] = await Promise.all([
        submit(ViduQ3.modelId, { mode: "text-to-video", prompt: "a fox", duration: 4 }),
        submit(ViduQ3.modelId, { mode: "text-to-video", prompt: "a fox", duration: 99 }),
        submit("no-such-model", { prompt: "a fox" })
      ])
      expect(valid.status).toBe(200)
      expect(JSON.stringify(await valid.json())).toMatch(/"taskId":"task_/)
      expect(invalid.status).toBe(400)
      expect(unknown.status).toBe(404)
    } finally {
      served.child.kill("SIGINT")
    }
    const stopped = await served.finished
    expect(stopped.code).toBe(130)
  })

  it("a SIGTERM to the pnpm that started it stops the CLI too (nothing is left listening)", async () => {
    // As in `npx --yes pnpm@10.34.9 reelkit fake-apixo`: npx -> pnpm -> sh -c -> node.
    const child = spawn("npx", ["--yes", "pnpm@10.34.9", "reelkit", "fake-apixo", "--port", "0"], {
      cwd: join(appDir, "..", ".."),
      env: childEnv({}),
      stdio: ["ignore", "pipe", "pipe"]
    })
    const output = { stdout: "", stderr: "" }
    child.stdout.on("data", (chunk: Buffer) => {
      output.stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output.stderr += chunk.toString("utf8")
    })
    // Every process of the chain holds the pipe: it closes once the last of them has exited.
    const closed = new Promise<void>((resolve) => child.stdout.on("close", () => resolve()))
    await waitForOutput(child, output, (seen) => /listening on http:\/\/\S+/.test(seen.stdout))
    const url = /listening on (http:\/\/[^\s(]+)/.exec(output.stdout)![1]!
    child.kill("SIGTERM")
    await closed
    expect(output.stderr).toContain("reelkit: the package manager that started this command has exited; stopping.")
    await expect(fetch(`${url}/api/v1/statusTask/vidu-q3?taskId=task_x`)).rejects.toThrow()
  })

  // util-linux's `script` gives the CLI a terminal, so it asks instead of refusing.
  const hasScript = (() => {
    try {
      execFileSync("script", ["--version"], { stdio: "ignore" })
      return true
    } catch {
      return false
    }
  })()
  it.skipIf(!hasScript)(
    "on a terminal, above REELKIT_CONFIRM_ABOVE it asks: no sends nothing, yes sends once",
    async () => {
      const home = tempHome()
      const prompt = "a heron asked first"
      const settings = { REELKIT_PRICING: pricing, REELKIT_CONFIRM_ABOVE: "0" }
      const args = ["generate", "--mode", "text-to-video", "--prompt", `'${prompt}'`, "--resolution", "720p"]
      const onTerminal = (answer: string) =>
        new Promise<string>((resolve, reject) => {
          const command = [process.execPath, binary, ...args, "--duration", "4", ...fastPolls].join(" ")
          const child = spawn("script", ["-qec", command, "/dev/null"], { cwd: appDir, env: env(home, settings) })
          let output = ""
          child.stdout.on("data", (chunk: Buffer) => {
            output += chunk.toString("utf8")
            if (output.includes("Submit this paid task? [y/N]") && !output.includes("answered")) {
              output += "answered"
              child.stdin.write(`${answer}\n`)
            }
          })
          child.on("error", reject)
          child.on("close", () => resolve(output))
        })
      const declined = await onTerminal("n")
      expect(declined).toContain("reelkit: not submitted (declined at the prompt); nothing was sent.")
      expect(tasksOf(prompt)).toEqual([])
      const accepted = await onTerminal("y")
      expect(accepted).toMatch(/tk_\S+\s+completed/)
      expect(tasksOf(prompt)).toHaveLength(1)
    }
  )
})
