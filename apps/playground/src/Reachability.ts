/**
 * Checks before the first request: the settings make sense (the pair's base URL override, e.g.
 * `APIXO_BASE_URL`, is an http(s) URL), and the service's host accepts a TCP connection. Without these, a typo in the base URL surfaces as
 * "an unknown error", and an unreachable host as a minute of retries in silence.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Net from "node:net"
import { InvalidSetting, Unreachable } from "./Failure.js"
import type * as Registry from "./Registry.js"
import * as Settings from "./Settings.js"

/** How long a TCP connection may take before apixo counts as unreachable. */
export const connectTimeout = "5 seconds"

const isHttpUrl = (text: string): boolean => {
  try {
    const url = new URL(text)
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
  } catch {
    return false
  }
}

/** A pair's settings, with its base URL override (`APIXO_BASE_URL`, `VIDU_BASE_URL`) checked. */
export const checkedSettings = (entry: Registry.Entry) =>
  Effect.flatMap(Settings.settingsFor(entry), (settings) =>
    Option.match(settings.baseUrl, {
      onNone: () => Effect.succeed(settings),
      onSome: (baseUrl) =>
        isHttpUrl(baseUrl)
          ? Effect.succeed(settings)
          : Effect.fail(
              new InvalidSetting({
                name: entry.baseUrlVariable,
                value: baseUrl,
                rule: "is not an http(s) URL",
                hint: `set it to ${entry.serviceName}'s base URL (e.g. ${entry.defaultBaseUrl}) or unset it`
              })
            )
    })
  )

const reasonOf = (error: NodeJS.ErrnoException): string => {
  switch (error.code) {
    case "ECONNREFUSED":
      return "connection refused"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "unknown host"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "no route to the host"
    default:
      return error.code ?? error.message
  }
}

/** Fails with `Unreachable` unless the base URL's host accepts a TCP connection within `connectTimeout`. */
export const probe = (baseUrl: string): Effect.Effect<void, Unreachable> => {
  const url = new URL(baseUrl)
  const port = Number(url.port === "" ? (url.protocol === "https:" ? 443 : 80) : url.port)
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1")
  return Effect.async<void, Unreachable>((resume) => {
    const socket = Net.connect({ host, port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.void)
    })
    socket.once("error", (error: NodeJS.ErrnoException) => {
      socket.destroy()
      resume(Effect.fail(new Unreachable({ baseUrl, reason: reasonOf(error) })))
    })
    return Effect.sync(() => socket.destroy())
  }).pipe(
    Effect.timeoutFail({
      duration: connectTimeout,
      onTimeout: () => new Unreachable({ baseUrl, reason: `no answer within ${connectTimeout}` })
    })
  )
}
