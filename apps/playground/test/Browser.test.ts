import { describe, expect, it } from "@effect/vitest"
import { ViduQ3Input } from "@reelkit/provider-vidu-q3"
import { existsSync, mkdirSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { join } from "node:path"
import { chromium } from "playwright-core"
import { afterAll, beforeAll } from "vitest"
import { appDir, childEnv, startCli, tempHome, waitForOutput } from "./utils.js"

// Debian's chromium, driven by playwright-core; a test tool never downloads a browser of its own here.
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const hasChromium = existsSync(chromiumPath)
if (!hasChromium) {
  console.log(`Browser test skipped: no chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH).`)
}
const chromiumFlags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]
const resultsDir = join(appDir, "test-results")

// `reelkit serve` as a user starts it: no API key, so it runs its own fake apixo server.
let server: ReturnType<typeof startCli>
let baseUrl: string

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })

beforeAll(async () => {
  // With a public URL and a secret, tasks are submitted in callback mode to the server's own
  // verified endpoint; polling falls back to once a minute, so a task done in seconds proves the
  // callback arrived. With a price table, task pages show the estimated cost.
  const port = await freePort()
  server = startCli(
    ["serve", "--port", String(port)],
    childEnv({
      REELKIT_HOME: tempHome(),
      REELKIT_PUBLIC_URL: `http://127.0.0.1:${port}`,
      REELKIT_CALLBACK_SECRET: "a-test-secret-of-at-least-32-characters!",
      REELKIT_PRICING: JSON.stringify({ currency: "USD", standard: { "720p": 0.1 }, turbo: {} })
    })
  )
  await waitForOutput(server.child, server.output, (output) => /serving http:\/\/\S+/.test(output.stderr))
  baseUrl = /serving (http:\/\/\S+)/.exec(server.output.stderr)![1]!
})

afterAll(async () => {
  server?.child.kill("SIGTERM")
  await server?.finished
})

const form = (fields: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
  redirect: "manual" as const
})

describe("reelkit serve", () => {
  it("the server checks the mode's rules too, and answers the field's error beside it", async () => {
    const response = await fetch(`${baseUrl}/tasks`, form({ mode: "image-to-video", prompt: "animate it" }))
    expect(response.status).toBe(400)
    const html = await response.text()
    expect(html).toContain(
      `<p class="error" data-error-for="image_urls" role="alert">${ViduQ3Input.rules.image_urls_required}</p>`
    )
    const textOnly = await fetch(
      `${baseUrl}/tasks`,
      form({ mode: "image-to-video", prompt: "animate it", image_urls: "https://example.com/a.png", style: "anime" })
    )
    expect(textOnly.status).toBe(400)
    expect(await textOnly.text()).toContain(
      `<p class="error" data-error-for="style" role="alert">${ViduQ3Input.rules.text_only}</p>`
    )
  })

  it("mounts core's callback endpoint, which refuses a token it did not make", async () => {
    const response = await fetch(`${baseUrl}/callbacks/tk_someone/not-our-token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}"
    })
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({ outcome: "unauthorized" })
  })

  it("the task list is a server-sent event stream", async () => {
    const controller = new AbortController()
    const response = await fetch(`${baseUrl}/events`, { signal: controller.signal })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    const reader = response.body!.getReader()
    const { value } = await reader.read()
    controller.abort()
    expect(new TextDecoder().decode(value)).toMatch(/^event: tasks\ndata: \{"now":\d+,"tasks":\[/)
  })

  it.skipIf(!hasChromium)(
    "in chromium: a text-to-video task reaches success and plays; an image mode without an image shows the field error",
    async () => {
      mkdirSync(resultsDir, { recursive: true })
      const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumFlags })
      try {
        const page = await browser.newPage({ viewport: { width: 1100, height: 900 } })
        await page.goto(baseUrl)

        // Text modes show style and aspect ratio and hide the image URLs.
        await page.selectOption("#field-mode", "text-to-video")
        expect(await page.isVisible('[data-field="style"]')).toBe(true)
        expect(await page.isVisible('[data-field="image_urls"]')).toBe(false)
        await page.fill("#field-prompt", "a lighthouse in a storm, waves crashing")
        await page.fill("#field-duration", "4")
        await page.selectOption("#field-resolution", "720p")
        await Promise.all([page.waitForURL(/\/tasks\/tk_/), page.click("button[type=submit]")])

        // The page follows the task over server-sent events and shows the video once stored. The
        // fallback poll comes a minute after the first: done within 30 s means the callback worked.
        await page.waitForSelector("#state.state-completed", { timeout: 30_000 })
        expect(await page.textContent("#cost")).toBe("0.4000 USD")
        const source = await page.getAttribute("video", "src")
        expect(source).toMatch(/^\/artifacts\/.+\.mp4$/)
        const video = await fetch(new URL(source!, baseUrl))
        expect(video.status).toBe(200)
        expect(video.headers.get("content-type")).toBe("video/mp4")
        const bytes = Buffer.from(await video.arrayBuffer())
        expect(await page.textContent(".bytes")).toBe(`${bytes.byteLength} bytes`)
        // Browsers seek with Range requests.
        const range = await fetch(new URL(source!, baseUrl), { headers: { range: "bytes=10-19" } })
        expect(range.status).toBe(206)
        expect(Buffer.from(await range.arrayBuffer())).toEqual(bytes.subarray(10, 20))
        await page.screenshot({ path: join(resultsDir, "task-page.png"), fullPage: true })

        // The list on the home page shows the task's state.
        await page.goto(baseUrl)
        await page.waitForSelector("#task-rows tr[data-task] .state-completed")

        // An image mode without an image: the browser's check refuses it beside the field, nothing is sent.
        await page.selectOption("#field-mode", "image-to-video")
        expect(await page.isVisible('[data-field="style"]')).toBe(false)
        expect(await page.isVisible('[data-field="image_urls"]')).toBe(true)
        await page.fill("#field-prompt", "make the picture move")
        await page.click("button[type=submit]")
        expect(await page.textContent('[data-error-for="image_urls"]')).toBe(ViduQ3Input.rules.image_urls_required)
        expect(new URL(page.url()).pathname).toBe("/")
        await page.screenshot({ path: join(resultsDir, "form-error.png"), fullPage: true })
      } finally {
        await browser.close()
      }
    }
  )
})
