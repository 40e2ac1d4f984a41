/**
 * The middleware in front of every route of `serve`: body size caps (413, without reading the
 * body), a Host check (against DNS rebinding), an Origin check on every state-changing request,
 * the access token (bearer header, `?token=` once, then the session cookie), a handler timeout,
 * and headers that keep pages out of frames and `Referer` within the site.
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Access from "./Access.js"
import * as RefusedBody from "./RefusedBody.js"
import type { Limits } from "./ServeSettings.js"

/** Where the server may be reached: `host[:port]` values of the `Host` header, lower case. */
export interface Reachable {
  readonly hosts: ReadonlySet<string>
  /** The origins a browser sends from this server's own pages. */
  readonly origins: ReadonlySet<string>
  /** Hosts reached over HTTPS (the public URL's, behind a TLS proxy): their cookie is `Secure`. */
  readonly secureHosts: ReadonlySet<string>
}

/** The hosts and origins of a server bound to `host:port`, plus the public URL it is known by. */
export const reachableAt = (options: {
  readonly host: string
  readonly port: number
  readonly publicUrl?: string | undefined
}): Reachable => {
  const names = ["127.0.0.1", "localhost", "[::1]"]
  // A wildcard bind answers on every address; only the names above and the public URL are trusted.
  if (options.host !== "0.0.0.0" && options.host !== "::" && options.host !== "") {
    names.push(options.host.includes(":") && !options.host.startsWith("[") ? `[${options.host}]` : options.host)
  }
  const hosts = new Set(names.map((name) => `${name.toLowerCase()}:${options.port}`))
  const origins = new Set([...hosts].map((host) => `http://${host}`))
  const secureHosts = new Set<string>()
  if (options.publicUrl !== undefined) {
    const url = new URL(options.publicUrl)
    hosts.add(url.host.toLowerCase())
    origins.add(url.origin.toLowerCase())
    if (url.protocol === "https:") secureHosts.add(url.host.toLowerCase())
  }
  return { hosts, origins, secureHosts }
}

/** Answers of `serve`, by status code (a few values: no path, no token, nothing a client chose). */
export const responses = Metric.counter("reelkit_serve_responses_total", {
  description: "Answers of reelkit serve, by HTTP status"
})

/** Paths anyone may fetch: the callback endpoint (its URLs carry their own signed token) and the icon. */
export const isPublicPath = (path: string): boolean => path.startsWith("/callbacks/") || path === "/favicon.svg"

/** Whether a request carries the access token in its URL (such requests are never traced). */
export const hasTokenInUrl = (url: string): boolean => /[?&]token=/.test(url)

const securityHeaders = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // Not "no-referrer": under it a browser sends `Origin: null` even on its own forms.
  "referrer-policy": "same-origin",
  "content-security-policy": "frame-ancestors 'none'"
}

const plain = (status: number, text: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(`${text}\n`, { status, headers })

/** The answer to a body over the cap, sent at once; see `RefusedBody` for how its connection ends. */
export const tooLarge = (request: HttpServerRequest.HttpServerRequest, limit: number) =>
  Effect.as(
    RefusedBody.lingerThenClose(request),
    plain(413, `reelkit: the request body is larger than ${limit} bytes.`)
  )

const unauthorized = (path: string) =>
  path === "/" || path.startsWith("/tasks")
    ? HttpServerResponse.text(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Access token needed</title></head><body style="font: 15px/1.45 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem"><h1>Access token needed</h1><p>This reelkit server spends money with the key it holds, so it answers only with its access token. Open the URL <code>reelkit serve</code> printed when it started (it ends in <code>/?token=...</code>; when <code>REELKIT_SERVE_TOKEN</code> set the token, add <code>/?token=</code> and that token yourself), or send <code>Authorization: Bearer &lt;token&gt;</code>.</p></body></html>`,
        { status: 401, contentType: "text/html; charset=utf-8", headers: { "www-authenticate": "Bearer" } }
      )
    : plain(401, "reelkit: this server needs its access token (Authorization: Bearer <token>).", {
        "www-authenticate": "Bearer"
      })

/** The body cap of a request: 0 for methods that carry none. */
const capOf = (method: string, path: string, limits: Limits): number =>
  method === "GET" || method === "HEAD"
    ? 0
    : path.startsWith("/callbacks/")
      ? limits.callbackBodyBytes
      : limits.formBodyBytes

/** Builds the middleware for a server reachable at `reachable`, guarded by `keys`; GET handlers time out. */
export const make = (options: {
  readonly keys: Access.Keys
  readonly reachable: Reachable
  readonly limits: Limits
}) =>
  HttpMiddleware.make((app) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const { keys, limits, reachable } = options
      const url = new URL(request.url, "http://placeholder")
      const path = url.pathname
      const headers = request.headers

      const cap = capOf(request.method, path, limits)
      const declared = headers["content-length"]
      if (declared !== undefined && !(Number(declared) <= cap)) return yield* tooLarge(request, cap)
      if (cap === 0 && headers["transfer-encoding"] !== undefined) return yield* tooLarge(request, cap)

      if (!isPublicPath(path)) {
        // DNS rebinding: a page of another site resolving its own name to 127.0.0.1 sends its own Host.
        if (!reachable.hosts.has((headers.host ?? "").toLowerCase())) {
          return plain(403, "reelkit: this server does not answer to that Host.")
        }
        if (request.method !== "GET" && request.method !== "HEAD") {
          const origin = headers.origin
          if (origin !== undefined && !reachable.origins.has(origin.toLowerCase())) {
            return plain(403, "reelkit: cross-origin requests are refused.")
          }
          if (headers["sec-fetch-site"] === "cross-site") return plain(403, "reelkit: cross-site requests are refused.")
        }
        const queryToken = url.searchParams.get("token")
        if (queryToken !== null && request.method === "GET") {
          if (!Access.isToken(keys, queryToken)) return unauthorized(path)
          // The token leaves the address bar at once: the cookie carries the session from here on.
          url.searchParams.delete("token")
          // `//host` would be read as another site's address: such a path goes home instead.
          return HttpServerResponse.redirect(`${path.startsWith("//") ? "/" : path}${url.search}`, {
            status: 303,
            headers: {
              "set-cookie": Access.sessionCookie(keys, {
                secure: reachable.secureHosts.has((headers.host ?? "").toLowerCase())
              }),
              "cache-control": "no-store"
            }
          })
        }
        if (!Access.isAuthorized(keys, headers)) return unauthorized(path)
      }

      // A submit is not cut short: it may already be on its way to apixo, and an answer of 503 for a
      // task that was created would invite a second one. apixo's client bounds it with its own timeouts.
      if (request.method !== "GET" && request.method !== "HEAD") return yield* app
      return yield* app.pipe(
        Effect.timeoutTo({
          duration: Duration.millis(limits.handlerTimeoutMs),
          onSuccess: (response) => response,
          onTimeout: () => plain(503, "reelkit: the server took too long to answer; try again.")
        })
      )
    }).pipe(
      Effect.tap((response) => Metric.increment(Metric.tagged(responses, "status", String(response.status)))),
      Effect.map((response) => HttpServerResponse.setHeaders(response, securityHeaders))
    )
  )
