// `reelkit serve` attacked as the issue describes, as a real process on a real socket: no token,
// another origin, another Host, a form without its CSRF token, a 1 GB body, 2000 event streams.
import { describe, expect, it } from "@effect/vitest"
import { request as httpRequest, type IncomingMessage } from "node:http"
import { connect } from "node:net"
import { afterAll, beforeAll } from "vitest"
import { bearer, formTokens, freePort, postForm, type Served, startServe } from "./serve.js"
import { runCli, tempHome, childEnv } from "./utils.js"

const callbackSecret = "a-callback-secret-of-at-least-32-bytes!"
let served: Served

beforeAll(async () => {
  const port = await freePort()
  // No REELKIT_SERVE_TOKEN: serve makes one and prints it once, in its start-up URL.
  served = await startServe(["--port", String(port)], {
    REELKIT_HOME: tempHome(),
    REELKIT_PUBLIC_URL: `http://127.0.0.1:${port}`,
    REELKIT_CALLBACK_SECRET: callbackSecret
  })
})

afterAll(async () => {
  await served?.stop()
})

/** Sends `total` bytes of body without holding them: one 64 KB chunk written again and again until the server answers. */
const sendBody = (options: {
  readonly method?: string
  readonly path: string
  readonly total: number
  readonly declareLength: boolean
  readonly headers?: Record<string, string>
}) =>
  new Promise<{ readonly status: number; readonly sent: number }>((resolve, reject) => {
    const url = new URL(options.path, served.base)
    const chunk = Buffer.alloc(64 * 1024, "a")
    let sent = 0
    let answered = false
    const request = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: options.method ?? "POST",
        agent: false,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          ...bearer(served.token),
          ...options.headers,
          ...(options.declareLength ? { "content-length": String(options.total) } : {})
        }
      },
      (response) => {
        answered = true
        response.resume()
        resolve({ status: response.statusCode!, sent })
        request.destroy()
      }
    )
    // Once the server has answered and closed, further writes fail: that is the point.
    request.on("error", (error) => {
      if (!answered) reject(error)
    })
    const pump = () => {
      while (!answered && sent < options.total) {
        sent += chunk.byteLength
        if (!request.write(chunk)) return void request.once("drain", pump)
      }
      if (!answered) request.end()
    }
    pump()
  })

/** Opens `GET /events`; resolves with the answer's status once its headers arrive. */
const openEventStream = () =>
  new Promise<{ readonly status: number; readonly response: IncomingMessage; readonly close: () => void }>(
    (resolve, reject) => {
      const url = new URL("/events", served.base)
      const request = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, agent: false, headers: bearer(served.token) },
        (response) => resolve({ status: response.statusCode!, response, close: () => request.destroy() })
      )
      request.on("error", reject)
      request.end()
    }
  )

const gib = 1024 * 1024 * 1024

describe("reelkit serve, attacked", () => {
  it("without the token every page, stream, metric and POST is refused with 401", async () => {
    for (const path of ["/", "/events", "/metrics", "/estimate?mode=text-to-video", "/tasks/tk_x", "/nowhere"]) {
      const response = await fetch(new URL(path, served.base))
      expect([path, response.status]).toEqual([path, 401])
      await response.arrayBuffer()
    }
    const wrongBearer = await fetch(served.base, { headers: bearer(`${served.token}x`) })
    expect(wrongBearer.status).toBe(401)
    const wrongCookie = await fetch(served.base, { headers: { cookie: `reelkit_session=${served.token}` } })
    expect(wrongCookie.status).toBe(401)
    const wrongQuery = await fetch(`${served.base}/?token=guessed`, { redirect: "manual" })
    expect(wrongQuery.status).toBe(401)
    expect(wrongQuery.headers.get("set-cookie")).toBeNull()
    const post = await fetch(`${served.base}/tasks`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "mode=text-to-video&prompt=free+video",
      redirect: "manual"
    })
    expect(post.status).toBe(401)
    const bearerOk = await fetch(served.base, { headers: bearer(served.token) })
    expect(bearerOk.status).toBe(200)
  })

  it("the token once in the URL becomes an HttpOnly, SameSite=Strict cookie and leaves the address bar", async () => {
    const login = await fetch(`${served.base}/?token=${served.token}`, { redirect: "manual" })
    expect(login.status).toBe(303)
    expect(login.headers.get("location")).toBe("/")
    const cookie = login.headers.get("set-cookie")!
    expect(cookie).toMatch(/^reelkit_session=[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/)
    const session = cookie.split(";")[0]!
    // The cookie is derived from the token, not the token itself.
    expect(session).not.toContain(served.token)
    const page = await fetch(served.base, { headers: { cookie: session } })
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('name="csrf"')
    // The redirect keeps the page asked for, and never sends the browser to another site.
    const deep = await fetch(`${served.base}/tasks/tk_x?token=${served.token}&keep=1`, { redirect: "manual" })
    expect(deep.headers.get("location")).toBe("/tasks/tk_x?keep=1")
    const away = await fetch(`${served.base}//evil.example?token=${served.token}`, { redirect: "manual" })
    expect(away.headers.get("location")).toBe("/")
    const events = await fetch(`${served.base}/events`, { headers: { cookie: session } })
    expect(events.status).toBe(200)
    await events.body?.cancel()
  })

  it("a cross-origin POST is refused, even carrying the session and a valid CSRF token", async () => {
    const { csrf, submission } = await formTokens(served)
    const prompt = "billed by another site"
    const fields = { mode: "text-to-video", prompt, submission, csrf }
    const crossOrigin = await postForm(served, fields, { origin: "http://evil.example" })
    expect(crossOrigin.status).toBe(403)
    const plainText = await fetch(`${served.base}/tasks`, {
      method: "POST",
      headers: { "content-type": "text/plain", origin: "http://evil.example", ...bearer(served.token) },
      body: new URLSearchParams(fields).toString(),
      redirect: "manual"
    })
    expect(plainText.status).toBe(403)
    const crossSite = await postForm(served, fields, { "sec-fetch-site": "cross-site" })
    expect(crossSite.status).toBe(403)
    // Nothing was recorded: the list does not hold the prompt.
    const listed = await (await fetch(served.base, { headers: bearer(served.token) })).text()
    expect(listed).not.toContain(prompt)
  })

  it("another Host (DNS rebinding) is refused; the server's own origin is accepted", async () => {
    const rebound = await new Promise<number>((resolve, reject) => {
      const url = new URL(served.base)
      const request = httpRequest(
        { host: url.hostname, port: url.port, path: "/", headers: { host: "evil.example", ...bearer(served.token) } },
        (response) => {
          response.resume()
          resolve(response.statusCode!)
        }
      )
      request.on("error", reject)
      request.end()
    })
    expect(rebound).toBe(403)
    const { csrf, submission } = await formTokens(served)
    const sameOrigin = await postForm(
      served,
      { mode: "text-to-video", prompt: "from our own page", submission, csrf },
      { origin: served.base }
    )
    expect(sameOrigin.status).toBe(303)
    expect(sameOrigin.headers.get("location")).toMatch(/^\/tasks\/tk_/)
  })

  it("a POST without its form's CSRF token, or with another form's, is refused", async () => {
    const first = await formTokens(served)
    const second = await formTokens(served)
    expect(second.submission).not.toBe(first.submission)
    const missing = await postForm(served, { mode: "text-to-video", prompt: "no csrf", submission: first.submission })
    expect(missing.status).toBe(403)
    expect(await missing.text()).toContain("CSRF token is missing or wrong")
    const swapped = await postForm(served, {
      mode: "text-to-video",
      prompt: "swapped csrf",
      submission: first.submission,
      csrf: second.csrf
    })
    expect(swapped.status).toBe(403)
    const valid = await postForm(served, {
      mode: "text-to-video",
      prompt: "valid csrf",
      submission: second.submission,
      csrf: second.csrf
    })
    expect(valid.status).toBe(303)
  })

  it("a 1 GB body is answered 413 without being read, declared or chunked, and the server lives on", async () => {
    const declared = await sendBody({ path: "/tasks", total: gib, declareLength: true })
    expect(declared.status).toBe(413)
    const chunked = await sendBody({ path: "/tasks", total: gib, declareLength: false })
    expect(chunked.status).toBe(413)
    // The callback route has its own cap, answered the same way; its token is not needed to be refused.
    const callback = await sendBody({ path: "/callbacks/tk_x/token", total: gib, declareLength: true })
    expect(callback.status).toBe(413)
    console.log(
      `1 GB bodies: answered 413 after ${declared.sent} bytes sent (declared), ${chunked.sent} bytes (chunked), ${callback.sent} bytes (callback)`
    )
    expect(declared.sent).toBeLessThan(gib)
    expect(chunked.sent).toBeLessThan(gib)
    expect(served.alive()).toBe(true)
    const page = await fetch(served.base, { headers: bearer(served.token) })
    expect(page.status).toBe(200)
  })

  it("a sender that ignores its 413 and keeps sending is cut off, having sent far less than 1 GB", async () => {
    const url = new URL(served.base)
    const socket = connect(Number(url.port), url.hostname)
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve)
      socket.once("error", reject)
    })
    socket.on("error", () => {})
    let answer = ""
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString()
    })
    socket.write(
      `POST /tasks HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${served.token}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${gib}\r\n\r\n`
    )
    const chunk = Buffer.alloc(64 * 1024, "a")
    let sent = 0
    let closed = false
    const pump = () => {
      while (!closed && sent < gib) {
        sent += chunk.byteLength
        if (!socket.write(chunk)) return void socket.once("drain", pump)
      }
    }
    const ended = new Promise<void>((resolve) =>
      socket.once("close", () => {
        closed = true
        resolve()
      })
    )
    pump()
    await ended
    expect(answer).toMatch(/^HTTP\/1\.1 413 /)
    expect(sent).toBeLessThan(gib)
    expect(served.alive()).toBe(true)
  })

  it("2000 event streams: the cap refuses the surplus with 503 and GET / still answers", async () => {
    // The baseline, in this run: GET / with no stream open.
    const idleStarted = performance.now()
    expect((await fetch(served.base, { headers: bearer(served.token) })).status).toBe(200)
    const idle = performance.now() - idleStarted
    const streams = await Promise.all(Array.from({ length: 2000 }, openEventStream))
    try {
      const statuses = streams.map((stream) => stream.status)
      const accepted = statuses.filter((status) => status === 200).length
      const refused = statuses.filter((status) => status === 503).length
      expect(accepted + refused).toBe(2000)
      expect(accepted).toBe(1000)
      const started = performance.now()
      const page = await fetch(served.base, { headers: bearer(served.token) })
      expect(page.status).toBe(200)
      expect(await page.text()).toContain("reelkit playground")
      console.log(
        `2000 event streams (${accepted} open, ${refused} refused): GET / answered in ${(performance.now() - started).toFixed(0)} ms (${idle.toFixed(0)} ms with none open)`
      )
      // The open streams are served: each gets the list as its first event.
      const first = await new Promise<string>((resolve) =>
        streams
          .find((stream) => stream.status === 200)!
          .response.once("data", (chunk: Buffer) => resolve(chunk.toString()))
      )
      expect(first).toMatch(/^event: tasks\ndata: \{"now":\d+,"tasks":\[/)
    } finally {
      for (const stream of streams) stream.close()
    }
    // Closed streams give their places back: the server's own gauge says when all are released.
    const openStreams = async () => {
      const text = await (await fetch(`${served.base}/metrics`, { headers: bearer(served.token) })).text()
      return Number(/^reelkit_serve_event_streams\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? Number.NaN)
    }
    let open = await openStreams()
    while (open > 0) open = await openStreams()
    expect(open).toBe(0)
    const again = await openEventStream()
    expect(again.status).toBe(200)
    again.close()
  })

  it("a body on a GET is refused with 413; the callback endpoint answers without the token", async () => {
    const withBody = await sendBody({ method: "GET", path: "/", total: 1024, declareLength: true })
    expect(withBody.status).toBe(413)
    const callback = await fetch(`${served.base}/callbacks/tk_someone/not-our-token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}"
    })
    // core's handler answers (not the guard): the token it checks is the callback URL's own.
    expect(callback.status).toBe(401)
    expect(await callback.json()).toEqual({ outcome: "unauthorized" })
  })

  it("an unknown page is a 404 with a way back; the icon is served to anyone", async () => {
    const missing = await fetch(`${served.base}/no/such/page`, { headers: bearer(served.token) })
    expect(missing.status).toBe(404)
    const html = await missing.text()
    expect(html).toContain('<a id="back" href="/">')
    expect(html).toContain('rel="icon"')
    const icon = await fetch(`${served.base}/favicon.svg`)
    expect(icon.status).toBe(200)
    expect(icon.headers.get("content-type")).toBe("image/svg+xml")
  })

  it("a client that never finishes its headers is cut off by the server (slowloris)", async () => {
    const url = new URL(served.base)
    const socket = connect(Number(url.port), url.hostname)
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve)
      socket.once("error", reject)
    })
    // Half a request, then nothing: the server's headers timeout (10 s) must close the socket.
    socket.write(`GET / HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${served.token}\r\n`)
    let answer = ""
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString()
    })
    await new Promise<void>((resolve) => socket.once("close", () => resolve()))
    // Node answers 408 Request Timeout before closing (or just closes); it never serves the page.
    expect(answer === "" || answer.startsWith("HTTP/1.1 408")).toBe(true)
    expect(served.alive()).toBe(true)
  })

  it("the token was printed once, in the start-up URL, and nowhere else", async () => {
    const printed = served.output.stdout + served.output.stderr
    expect(printed.split(served.token).length - 1).toBe(1)
    expect(printed).toContain(`serving ${served.base}/?token=${served.token}`)
  })
})

describe("reelkit serve refuses weak secrets at start-up", () => {
  it("a REELKIT_CALLBACK_SECRET shorter than 32 bytes", async () => {
    const secret = "short1"
    const run = await runCli(
      ["serve", "--port", "0"],
      childEnv({ REELKIT_HOME: tempHome(), REELKIT_PUBLIC_URL: "http://127.0.0.1:1", REELKIT_CALLBACK_SECRET: secret })
    )
    expect(run.code).not.toBe(0)
    expect(run.stderr).toMatch(/^reelkit: REELKIT_CALLBACK_SECRET must be at least 32 bytes/m)
    expect(run.stderr).not.toContain("serving")
    expect(run.stderr + run.stdout).not.toContain(secret)
  })

  it("a REELKIT_SERVE_TOKEN shorter than 32 bytes", async () => {
    const token = "letmein"
    const run = await runCli(
      ["serve", "--port", "0"],
      childEnv({ REELKIT_HOME: tempHome(), REELKIT_SERVE_TOKEN: token })
    )
    expect(run.code).not.toBe(0)
    expect(run.stderr).toMatch(/^reelkit: REELKIT_SERVE_TOKEN must be at least 32 bytes/m)
    expect(run.stderr + run.stdout).not.toContain(token)
  })
})
