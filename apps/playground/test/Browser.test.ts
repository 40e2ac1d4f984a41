import { describe, expect, it } from "@effect/vitest"
import { ViduQ3, ViduQ3Input } from "@reelkit/provider-vidu-q3"
import { FakeApixo } from "@reelkit/testing"
import * as Redacted from "effect/Redacted"
import { existsSync, mkdirSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll } from "vitest"
import { bearer, formTokens, freePort, postForm, type Served, startServe } from "./serve.js"
import { appDir, tempHome } from "./utils.js"

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
// Committed, so a reviewer sees the pages without running anything.
const screenshotsDir = join(appDir, "test", "screenshots")

// A fake apixo in this process, so a prompt can be made to fail; `reelkit serve` talks to it as to apixo.
let fake: FakeApixo.Running
let served: Served
let browser: Browser | undefined

beforeAll(async () => {
  fake = await FakeApixo.start({
    models: { [ViduQ3.modelId]: { inputSchema: ViduQ3Input.ViduQ3Input } },
    timings: { processingAfter: "300 millis", completeAfter: "1 second" },
    outcome: (task) =>
      String(task.input.prompt).includes("doomed")
        ? FakeApixo.failure("CONTENT_VIOLATION", "The prompt breaks the content policy")
        : FakeApixo.success()
  })
  // With a public URL and a secret, tasks are submitted in callback mode to the server's own
  // verified endpoint; against apixo the first poll comes after 75 s, so a task done in seconds
  // proves the callback arrived. With a price table, the form and task pages show the cost. No
  // REELKIT_SERVE_TOKEN: serve makes one and prints the URL to open.
  const port = await freePort()
  served = await startServe(["--port", String(port)], {
    APIXO_API_KEY: Redacted.value(fake.apiKey),
    APIXO_BASE_URL: fake.url,
    REELKIT_HOME: tempHome(),
    REELKIT_PUBLIC_URL: `http://127.0.0.1:${port}`,
    REELKIT_CALLBACK_SECRET: "a-test-secret-of-at-least-32-characters!",
    REELKIT_PRICING: JSON.stringify({ currency: "USD", standard: { "720p": 0.1 }, turbo: {} })
  })
  if (hasChromium) {
    mkdirSync(screenshotsDir, { recursive: true })
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumFlags })
  }
})

afterAll(async () => {
  await browser?.close()
  await served?.stop()
  await fake?.close()
})

/** A new browser context, signed in the way a user is: by opening the start-up URL once. */
const signedIn = async (viewport: { readonly width: number; readonly height: number }) => {
  const context = await browser!.newContext({ viewport })
  const page = await context.newPage()
  await page.goto(`${served.base}/?token=${served.token}`)
  return { context, page }
}

/** Whether the page is wider than its viewport (a sideways scroll on a phone). */
const overflows = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth)

const tasksOf = (prompt: string) => fake.tasks.filter((task) => task.input.prompt === prompt)

describe("reelkit serve", () => {
  it("the server checks the mode's rules too, and answers the field's error beside it", async () => {
    const response = await postForm(served, {
      mode: "image-to-video",
      prompt: "animate it",
      ...(await formTokens(served))
    })
    expect(response.status).toBe(400)
    const html = await response.text()
    expect(html).toContain(
      `<p class="error" data-error-for="image_urls" role="alert">${ViduQ3Input.rules.image_urls_required}</p>`
    )
    const textOnly = await postForm(served, {
      mode: "image-to-video",
      prompt: "animate it",
      image_urls: "https://example.com/a.png",
      style: "anime",
      ...(await formTokens(served))
    })
    expect(textOnly.status).toBe(400)
    expect(await textOnly.text()).toContain(
      `<p class="error" data-error-for="style" role="alert">${ViduQ3Input.rules.text_only}</p>`
    )
  })

  it("the form lists every (model, transport) pair; a task posted to Vidu's pair goes there and its page says so", async () => {
    const home = await (await fetch(served.base, { headers: bearer(served.token) })).text()
    const select = /<select id="field-pair" name="pair">(.*?)<\/select>/s.exec(home)?.[1] ?? ""
    expect([...select.matchAll(/<option value="([^"]+)"[^>]*>([^<]+)</g)].map((match) => [match[1], match[2]])).toEqual(
      [
        ["vidu-q3/apixo", "vidu-q3 on apixo"],
        ["vidu-q3/vidu", "vidu-q3 on vidu"]
      ]
    )
    const prompt = "a tide pool through the official API"
    const posted = await postForm(served, {
      pair: "vidu-q3/vidu",
      mode: "text-to-video",
      prompt,
      ...(await formTokens(served))
    })
    expect(posted.status).toBe(303)
    // Not apixo's: no VIDU_API_KEY is set, so the fake Vidu in serve's process took it.
    expect(tasksOf(prompt)).toEqual([])
    const page = await (
      await fetch(`${served.base}${posted.headers.get("location")}`, { headers: bearer(served.token) })
    ).text()
    expect(page).toContain('<span id="transport">vidu-q3 on vidu</span>')
    expect(page).toMatch(/<dt>vidu task id<\/dt><dd><code>vidu_/)

    const unknown = await postForm(served, {
      pair: "vidu-q3/nowhere",
      mode: "text-to-video",
      prompt,
      ...(await formTokens(served))
    })
    expect(unknown.status).toBe(400)
    expect(await unknown.text()).toContain(
      '<p class="error" data-error-for="pair" role="alert">is not one of vidu-q3/apixo, vidu-q3/vidu</p>'
    )
  })

  it("mounts core's callback endpoint per pair, each refusing a token it did not make", async () => {
    const response = await fetch(`${served.base}/callbacks/tk_someone/not-our-token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}"
    })
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({ outcome: "unauthorized" })
    // The Vidu pair's callbacks have their own route (its own client confirms them), public as well.
    const vidu = await fetch(`${served.base}/callbacks/via/vidu/callbacks/tk_someone/not-our-token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}"
    })
    expect(vidu.status).toBe(401)
    expect(await vidu.json()).toEqual({ outcome: "unauthorized" })
    const nowhere = await fetch(`${served.base}/callbacks/via/nowhere/callbacks/tk_someone/not-our-token`, {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer(served.token) },
      body: "{}"
    })
    expect(nowhere.status).toBe(404)
  })

  it("the task list is a server-sent event stream", async () => {
    const controller = new AbortController()
    const response = await fetch(`${served.base}/events`, { signal: controller.signal, headers: bearer(served.token) })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    const reader = response.body!.getReader()
    const { value } = await reader.read()
    controller.abort()
    expect(new TextDecoder().decode(value)).toMatch(/^event: tasks\ndata: \{"now":\d+,"tasks":\[/)
  })

  it("the cost estimate follows the fields: none without duration and resolution, the table's price with them", async () => {
    const estimate = async (query: Record<string, string>) => {
      const response = await fetch(`${served.base}/estimate?${new URLSearchParams(query)}`, {
        headers: bearer(served.token)
      })
      expect(response.status).toBe(200)
      return ((await response.json()) as { html: string }).html
    }
    expect(await estimate({ mode: "text-to-video", duration: "", resolution: "" })).toContain(
      "Choose a duration and a resolution"
    )
    expect(await estimate({ mode: "text-to-video", duration: "4", resolution: "720p" })).toContain(
      '<strong id="estimate-amount">0.4000 USD</strong>'
    )
    expect(await estimate({ mode: "turbo-text-to-video", duration: "4", resolution: "720p" })).toContain(
      "no price for turbo 720p"
    )
  })

  it.skipIf(!hasChromium)(
    "in chromium: sign-in by URL, cost as fields change, a task to success and in the list, a failed task said so, the 404 way back",
    async () => {
      const { context, page } = await signedIn({ width: 1100, height: 900 })
      try {
        // The token URL sets the session cookie and leaves the address bar at once.
        expect(page.url()).toBe(`${served.base}/`)
        const [cookie] = await context.cookies()
        expect(cookie).toMatchObject({ name: "reelkit_session", httpOnly: true, sameSite: "Strict" })
        expect(cookie!.value).not.toBe(served.token)
        expect(await page.getAttribute('link[rel="icon"]', "href")).toBe("/favicon.svg")
        expect((await page.request.get(`${served.base}/favicon.svg`)).headers()["content-type"]).toBe("image/svg+xml")

        // Text modes show style and aspect ratio and hide the image URLs; the cost appears as fields change.
        await page.selectOption("#field-mode", "text-to-video")
        expect(await page.isVisible('[data-field="style"]')).toBe(true)
        expect(await page.isVisible('[data-field="image_urls"]')).toBe(false)
        await page.waitForSelector("#estimate:has-text('Choose a duration and a resolution')")
        await page.fill("#field-prompt", "a lighthouse in a storm, waves crashing")
        await page.fill("#field-duration", "4")
        await page.selectOption("#field-resolution", "720p")
        await page.waitForSelector("#estimate-amount:has-text('0.4000 USD')")
        await page.fill("#field-duration", "8")
        await page.waitForSelector("#estimate-amount:has-text('0.8000 USD')")
        await page.fill("#field-duration", "4")
        await page.waitForSelector("#estimate-amount:has-text('0.4000 USD')")
        await page.locator("#generate").screenshot({ path: join(screenshotsDir, "form.png") })
        await Promise.all([page.waitForURL(/\/tasks\/tk_/), page.click("button[type=submit]")])

        // The page follows the task over server-sent events and shows the video once stored.
        await page.waitForSelector("#state.state-completed", { timeout: 30_000 })
        expect(await page.textContent("#cost")).toBe("0.4000 USD")
        const source = await page.getAttribute("video", "src")
        expect(source).toMatch(/^\/artifacts\/.+\.mp4$/)
        const video = await page.request.get(new URL(source!, served.base).href)
        expect(video.status()).toBe(200)
        expect(video.headers()["content-type"]).toBe("video/mp4")
        const bytes = await video.body()
        expect(await page.textContent(".bytes")).toBe(`${bytes.byteLength} bytes`)
        // Browsers seek with Range requests.
        const range = await page.request.get(new URL(source!, served.base).href, { headers: { range: "bytes=10-19" } })
        expect(range.status()).toBe(206)
        expect(await range.body()).toEqual(bytes.subarray(10, 20))
        await page.screenshot({ path: join(screenshotsDir, "task.png"), fullPage: true })

        // The list shows the task's state, mode, prompt, creation time and duration.
        await page.goto(served.base)
        const row = page.locator("#task-rows tr[data-task]").first()
        await row.locator(".state-completed").waitFor()
        expect(await row.locator(".mode").textContent()).toBe("text-to-video")
        expect(await row.locator(".prompt").textContent()).toBe("a lighthouse in a storm, waves crashing")
        expect(await row.locator(".duration").textContent()).toBe("4 s")
        expect(await row.locator(".created").textContent()).toMatch(/\d/)

        // A task apixo fails: its page says so and why, and promises no video.
        await page.fill("#field-prompt", "a doomed prompt")
        await Promise.all([page.waitForURL(/\/tasks\/tk_/), page.click("button[type=submit]")])
        await page.waitForSelector("#outcome.failed", { timeout: 30_000 })
        expect(await page.textContent("#outcome h3")).toBe("This task failed")
        expect(await page.textContent("#fail-code")).toBe("CONTENT_VIOLATION")
        expect(await page.textContent("body")).not.toContain("The video appears here")
        await page.screenshot({ path: join(screenshotsDir, "task-failed.png"), fullPage: true })

        await page.goto(served.base)
        await page.locator("#task-rows tr[data-task] .state-failed").waitFor()
        await page.locator("table").screenshot({ path: join(screenshotsDir, "list.png") })

        // An image mode without an image: the browser's check refuses it beside the field, nothing is sent.
        await page.selectOption("#field-mode", "image-to-video")
        expect(await page.isVisible('[data-field="style"]')).toBe(false)
        expect(await page.isVisible('[data-field="image_urls"]')).toBe(true)
        await page.fill("#field-prompt", "make the picture move")
        await page.click("button[type=submit]")
        expect(await page.textContent('[data-error-for="image_urls"]')).toBe(ViduQ3Input.rules.image_urls_required)
        expect(new URL(page.url()).pathname).toBe("/")

        // A page that does not exist: a 404 with a way back.
        const missing = await page.goto(`${served.base}/no/such/page`)
        expect(missing!.status()).toBe(404)
        await Promise.all([page.waitForURL(`${served.base}/`), page.click("#back")])
      } finally {
        await context.close()
      }
    }
  )

  it.skipIf(!hasChromium)("in chromium on a phone: the list and the task page fit the screen", async () => {
    const { context, page } = await signedIn({ width: 375, height: 740 })
    try {
      await page.locator("#task-rows tr[data-task]").first().waitFor()
      expect(await overflows(page)).toBe(false)
      await page.screenshot({ path: join(screenshotsDir, "mobile-list.png"), fullPage: true })
      await Promise.all([page.waitForURL(/\/tasks\/tk_/), page.click("#task-rows tr[data-task] a")])
      expect(await overflows(page)).toBe(false)
      await page.screenshot({ path: join(screenshotsDir, "mobile-task.png"), fullPage: true })
    } finally {
      await context.close()
    }
  })

  it.skipIf(!hasChromium)(
    "in chromium: another site's auto-submitting form cannot create a task, even with the session cookie",
    async () => {
      const prompt = "a 16 s 1080p task billed by another site"
      // The attack as found: a page on another origin posting text/plain with no nonce. Its port
      // differs but its host does not, so the browser treats it as the same site and sends the
      // SameSite=Strict cookie: only the Origin check stands between it and a paid task.
      const evil: Server = createServer((_request, response) => {
        response.setHeader("content-type", "text/html")
        response.end(`<!doctype html><form method="post" action="${served.base}/tasks" enctype="text/plain">
<input name="mode" value="text-to-video"><input name="prompt" value="${prompt}"><input name="duration" value="16"><input name="resolution" value="1080p">
</form><script>document.forms[0].submit()</script>`)
      })
      await new Promise<void>((resolve) => evil.listen(0, "127.0.0.1", resolve))
      const { context, page } = await signedIn({ width: 800, height: 600 })
      try {
        const answered = page.waitForResponse((response) => response.url() === `${served.base}/tasks`)
        await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`)
        const answer = await answered
        expect(answer.status()).toBe(403)
        expect(answer.request().headers()).toMatchObject({ origin: expect.stringContaining("127.0.0.1") })
        expect(tasksOf(prompt)).toHaveLength(0)
        expect(tasksOf(`${prompt}\r\n`)).toHaveLength(0)
      } finally {
        await context.close()
        await new Promise((resolve) => evil.close(resolve))
      }
    }
  )
})
