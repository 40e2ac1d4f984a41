// Who is writing a temporary file, written into its name, so that a store opening later can tell
// a dead writer's leftover (remove it now, whatever its age) from a live writer's download in
// progress (keep it), and leave names it cannot judge to the age rule.
//
// The identity is `<host>.<boot>.<pid>.<start>`:
// - host: 8 hex digits of a hash of the host name and the PID namespace, because a PID means
//   something only on one machine and in one namespace (containers sharing a volume differ here);
// - boot: 8 hex digits of a hash of the kernel's boot id (Linux), or `x`: after a reboot every
//   writer of an earlier boot is dead;
// - pid and start: the process id and its start time in clock ticks since boot (Linux), or `x`:
//   together they name one process even after its PID is reused.
import { createHash } from "node:crypto"
import * as Fs from "node:fs/promises"
import { hostname } from "node:os"

/** The writer of a temporary file. */
export interface WriterIdentity {
  readonly host: string
  readonly boot: string
  readonly pid: number
  readonly start: string
}

/** What the identity in a temporary file's name says about its writer now. */
export type Verdict = "dead" | "live" | "unknown"

/** The identity as it appears in a file name; matches what `format` writes. */
export const pattern = "[0-9a-f]{8}\\.(?:[0-9a-f]{8}|x)\\.[0-9]+\\.(?:[0-9]+|x)"

const unknown = "x"

const shortHash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 8)

const readText = (path: string) => Fs.readFile(path, "utf8").catch(() => undefined)

// The start time (field 22) of a process, from `/proc/<pid>/stat`; undefined when there is no such
// process or no procfs. The command name (field 2) may hold spaces and parentheses: fields are
// counted from the last `)`.
const startTimeOf = async (pid: number | "self"): Promise<string | undefined> => {
  const stat = await readText(`/proc/${pid}/stat`)
  if (stat === undefined) return undefined
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  return start !== undefined && /^[0-9]+$/.test(start) ? start : undefined
}

// Without procfs a signal 0 tells whether a PID is taken (EPERM: taken by another user's process).
const pidIsTaken = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

/** This process's identity as a writer. */
export const current = async (): Promise<WriterIdentity> => {
  const namespace = await Fs.readlink("/proc/self/ns/pid").catch(() => "")
  const bootId = (await readText("/proc/sys/kernel/random/boot_id"))?.trim()
  return {
    host: shortHash(`${hostname()}\0${namespace}`),
    boot: bootId === undefined || bootId === "" ? unknown : shortHash(bootId),
    pid: process.pid,
    start: (await startTimeOf("self")) ?? unknown
  }
}

/** The identity's form in a file name. */
export const format = (identity: WriterIdentity): string =>
  `${identity.host}.${identity.boot}.${identity.pid}.${identity.start}`

/** Reads an identity written by `format`; undefined for any other text. */
export const parse = (text: string): WriterIdentity | undefined => {
  if (!new RegExp(`^${pattern}$`).test(text)) return undefined
  const [host, boot, pid, start] = text.split(".") as [string, string, string, string]
  return { host, boot, pid: Number(pid), start }
}

/**
 * Whether `writer` is still running, as seen by `self`: `dead` only when that is certain (same
 * host, and an earlier boot, or no such process, or another process under a reused PID), `live`
 * only when the very process still runs, `unknown` otherwise (another host or namespace, or a
 * platform without procfs where a taken PID may be a reused one).
 */
export const judge = async (writer: WriterIdentity, self: WriterIdentity): Promise<Verdict> => {
  if (writer.host !== self.host) return "unknown"
  if (writer.boot !== unknown && self.boot !== unknown && writer.boot !== self.boot) return "dead"
  // This process's own start time is known exactly when procfs is there.
  if (self.start === unknown) return pidIsTaken(writer.pid) ? "unknown" : "dead"
  const start = await startTimeOf(writer.pid)
  if (start === undefined) return "dead"
  if (writer.start === unknown) return "unknown"
  if (start !== writer.start) return "dead"
  return writer.boot !== unknown && self.boot !== unknown ? "live" : "unknown"
}
