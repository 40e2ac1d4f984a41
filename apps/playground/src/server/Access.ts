/**
 * The access token's checks: who may use `serve`. A script presents the token as
 * `Authorization: Bearer <token>`; a browser presents it once as `/?token=<token>` and then carries
 * a session cookie derived from it. Every POST form carries a CSRF token derived from the form's own
 * nonce. All comparisons are constant-time, and nothing here ever logs a token.
 */
import * as Redacted from "effect/Redacted"
import { createHmac, timingSafeEqual } from "node:crypto"

/** The session cookie's name. */
export const cookieName = "reelkit_session"

/** The hidden form field carrying the CSRF token. */
export const csrfField = "csrf"

/** Keyed digests of the access token: never the token itself in a cookie or a page. */
export interface Keys {
  readonly token: Redacted.Redacted<string>
  /** The session cookie's value. */
  readonly session: string
  /** The CSRF token of a form with this nonce. */
  readonly csrfOf: (nonce: string) => string
}

const digest = (key: string, purpose: string) => createHmac("sha256", key).update(purpose).digest("base64url")

/** Derives the cookie and CSRF values from the access token. */
export const keysOf = (token: Redacted.Redacted<string>): Keys => {
  const secret = Redacted.value(token)
  return {
    token,
    session: digest(secret, "reelkit serve session v1"),
    csrfOf: (nonce) => digest(secret, `reelkit serve csrf v1\n${nonce}`)
  }
}

/** Equal texts, compared in time that does not depend on where they differ. */
export const safeEqual = (given: string, expected: string): boolean => {
  // Both sides are hashed first so that the lengths match and the comparison leaks no length either.
  const left = createHmac("sha256", "reelkit compare").update(given).digest()
  const right = createHmac("sha256", "reelkit compare").update(expected).digest()
  return timingSafeEqual(left, right)
}

/** The bearer token of an `Authorization` header, if it has one. */
export const bearerOf = (header: string | undefined): string | undefined => {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
}

/** The value of one cookie in a `Cookie` header. */
export const cookieOf = (header: string | undefined, name: string): string | undefined => {
  if (header === undefined) return undefined
  for (const part of header.split(";")) {
    const index = part.indexOf("=")
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim()
  }
  return undefined
}

/** Whether `given` is the access token. */
export const isToken = (keys: Keys, given: string): boolean => safeEqual(given, Redacted.value(keys.token))

/** Whether a request's headers carry the token (as a bearer) or the session cookie. */
export const isAuthorized = (keys: Keys, headers: Readonly<Record<string, string | undefined>>): boolean => {
  const bearer = bearerOf(headers.authorization)
  if (bearer !== undefined) return isToken(keys, bearer)
  const session = cookieOf(headers.cookie, cookieName)
  return session !== undefined && safeEqual(session, keys.session)
}

/**
 * The `Set-Cookie` value of a session: only for this site's own requests, out of the page's
 * scripts' reach, and over HTTPS only when the page was reached over HTTPS.
 */
export const sessionCookie = (keys: Keys, options: { readonly secure?: boolean } = {}): string =>
  `${cookieName}=${keys.session}; Path=/; HttpOnly; SameSite=Strict${options.secure === true ? "; Secure" : ""}`

/** Whether a form's CSRF token is the one made for its nonce. */
export const isValidCsrf = (keys: Keys, nonce: string | undefined, csrf: string | undefined): boolean =>
  nonce !== undefined && nonce !== "" && csrf !== undefined && safeEqual(csrf, keys.csrfOf(nonce))
