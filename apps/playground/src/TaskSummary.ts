/**
 * The one JSON object the CLI prints per task with `--json` (and `list --json` an array of them):
 * `{ taskKey, taskId, state, failCode?, failMessage?, resultUrls, artifacts: [{ path, bytes, sha256, contentType }] }`.
 * `taskId` is the provider's id (null before the submit was accepted); an artifact's `path` is its
 * absolute file in the store under `REELKIT_HOME`.
 */
import type { TaskLedger } from "@reelkit/core"
import { artifactPath } from "./Settings.js"

/** One stored output, as printed. */
export interface ArtifactSummary {
  readonly path: string
  readonly bytes: number
  readonly sha256: string
  readonly contentType: string
}

/** One task, as printed. */
export interface TaskSummary {
  readonly taskKey: string
  readonly taskId: string | null
  readonly state: TaskLedger.TaskState
  readonly failCode?: string
  readonly failMessage?: string
  readonly resultUrls: ReadonlyArray<string>
  readonly artifacts: ReadonlyArray<ArtifactSummary>
}

/** The summary of a ledger row. */
export const fromRecord = (home: string, record: TaskLedger.TaskRecord): TaskSummary => ({
  taskKey: record.taskKey,
  taskId: record.remoteTaskId ?? null,
  state: record.state,
  ...(record.failCode !== undefined ? { failCode: record.failCode } : {}),
  ...(record.failMessage !== undefined ? { failMessage: record.failMessage } : {}),
  resultUrls: record.resultUrls,
  artifacts: record.artifacts.map((artifact) => ({
    path: artifactPath(home, artifact.key),
    bytes: artifact.bytes,
    sha256: artifact.sha256,
    contentType: artifact.contentType
  }))
})

/** Seconds as `12.3 s` or `2 min 05 s`. */
export const formatElapsed = (millis: number): string => {
  const seconds = Math.max(0, millis) / 1000
  if (seconds < 60) return `${seconds.toFixed(1)} s`
  const whole = Math.floor(seconds)
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`
}

/** What a row asked for, for readable output (not part of the JSON summary). */
export interface Details {
  /** The transport the task went to (the ledger's provider id: `apixo`, `vidu`). */
  readonly transport: string
  readonly mode: string | undefined
  readonly prompt: string | undefined
  readonly duration: number | undefined
  readonly createdAt: number
}

/** The details of a ledger row: its input's mode, prompt and duration, and when it was created. */
export const detailsOf = (record: TaskLedger.TaskRecord): Details => {
  const input = (typeof record.input === "object" && record.input !== null ? record.input : {}) as Record<
    string,
    unknown
  >
  return {
    transport: record.providerId,
    mode: typeof input.mode === "string" ? input.mode : undefined,
    prompt: typeof input.prompt === "string" ? input.prompt : undefined,
    duration: typeof input.duration === "number" ? input.duration : undefined,
    createdAt: record.createdAt
  }
}

// One line of a prompt, cut to `width` characters.
const shortPrompt = (prompt: string, width = 60): string => {
  const line = prompt.replace(/\s+/g, " ").trim()
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`
}

/** `2026-12-01 22:25:39 UTC  text-to-video  4 s  "a red fox..."`. */
export const detailsLine = (details: Details): string => {
  const created = `${new Date(details.createdAt).toISOString().slice(0, 19).replace("T", " ")} UTC`
  const parts = [
    created,
    details.mode ?? "",
    details.duration === undefined ? "" : `${details.duration} s`,
    details.prompt === undefined ? "" : JSON.stringify(shortPrompt(details.prompt))
  ]
  return `  ${parts.filter((part) => part !== "").join("  ")}`
}

/** Human-readable lines of a task, for output without `--json` (with `details`, a line of what it asked for). */
export const toLines = (summary: TaskSummary, details?: Details): ReadonlyArray<string> => {
  const provider = details?.transport ?? "provider"
  const head = `${summary.taskKey}  ${summary.state}${summary.taskId === null ? "" : `  (${provider} task ${summary.taskId})`}`
  const failure =
    summary.failCode === undefined && summary.failMessage === undefined
      ? []
      : [`  ${summary.failCode ?? "failed"}: ${summary.failMessage ?? ""}`.trimEnd()]
  const files = summary.artifacts.map(
    (artifact) => `  ${artifact.path}  ${artifact.bytes} bytes  ${artifact.contentType}  sha256 ${artifact.sha256}`
  )
  return [head, ...(details === undefined ? [] : [detailsLine(details)]), ...failure, ...files]
}
