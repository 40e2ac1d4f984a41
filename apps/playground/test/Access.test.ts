// The access token's checks, in this process: what the guard and the form rely on.
import { describe, expect, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as Access from "../src/server/Access.js"
import * as Guard from "../src/server/Guard.js"

const keys = Access.keysOf(Redacted.make("a-token-of-at-least-32-bytes-long!"))

describe("Access", () => {
  it("accepts the token as a bearer or the derived session cookie, and nothing else", () => {
    expect(Access.isAuthorized(keys, { authorization: "Bearer a-token-of-at-least-32-bytes-long!" })).toBe(true)
    expect(Access.isAuthorized(keys, { authorization: "bearer a-token-of-at-least-32-bytes-long!" })).toBe(true)
    expect(Access.isAuthorized(keys, { authorization: "Bearer a-token-of-at-least-32-bytes-long" })).toBe(false)
    expect(Access.isAuthorized(keys, { authorization: "Basic a-token-of-at-least-32-bytes-long!" })).toBe(false)
    expect(Access.isAuthorized(keys, { cookie: `other=1; reelkit_session=${keys.session}` })).toBe(true)
    // The cookie holds a digest: the token itself in the cookie is not a session.
    expect(Access.isAuthorized(keys, { cookie: "reelkit_session=a-token-of-at-least-32-bytes-long!" })).toBe(false)
    expect(Access.isAuthorized(keys, {})).toBe(false)
  })

  it("a CSRF token belongs to one nonce and one access token", () => {
    const csrf = keys.csrfOf("nonce-1")
    expect(Access.isValidCsrf(keys, "nonce-1", csrf)).toBe(true)
    expect(Access.isValidCsrf(keys, "nonce-2", csrf)).toBe(false)
    expect(Access.isValidCsrf(keys, "nonce-1", undefined)).toBe(false)
    expect(Access.isValidCsrf(keys, "", keys.csrfOf(""))).toBe(false)
    const otherServer = Access.keysOf(Redacted.make("another-token-of-at-least-32-bytes!"))
    expect(Access.isValidCsrf(otherServer, "nonce-1", csrf)).toBe(false)
  })

  it("the session cookie is HttpOnly and SameSite=Strict, and Secure when reached over HTTPS", () => {
    expect(Access.sessionCookie(keys)).toBe(`reelkit_session=${keys.session}; Path=/; HttpOnly; SameSite=Strict`)
    expect(Access.sessionCookie(keys, { secure: true })).toBe(
      `reelkit_session=${keys.session}; Path=/; HttpOnly; SameSite=Strict; Secure`
    )
  })
})

describe("Guard.reachableAt", () => {
  it("trusts loopback names, the bound host and the public URL's host, with their ports", () => {
    const reachable = Guard.reachableAt({ host: "127.0.0.1", port: 3000, publicUrl: "https://reel.example.com" })
    expect([...reachable.hosts].sort()).toEqual(
      ["127.0.0.1:3000", "[::1]:3000", "localhost:3000", "reel.example.com"].sort()
    )
    expect(reachable.origins.has("http://localhost:3000")).toBe(true)
    expect(reachable.origins.has("https://reel.example.com")).toBe(true)
    expect(reachable.origins.has("http://evil.example")).toBe(false)
    expect([...reachable.secureHosts]).toEqual(["reel.example.com"])
  })

  it("a wildcard bind trusts no extra name", () => {
    expect(Guard.reachableAt({ host: "0.0.0.0", port: 80 }).hosts.size).toBe(3)
  })
})
