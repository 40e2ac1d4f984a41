/**
 * The web app's HTML: server-rendered pages and one small script. The form shows the fields the
 * chosen mode allows and checks them in the browser with the rules' own texts (from the field
 * table in `Fields`); the server checks them again with the provider's `prepare`.
 */
import type { TaskLedger } from "@reelkit/core"
import type { ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import * as Fields from "./Fields.js"
import { formatElapsed } from "./TaskSummary.js"

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

// JSON inside a <script> must not be able to close the tag.
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, "\\u003c")

/** The list entry of a task, as the page and the event stream carry it. */
export interface TaskView {
  readonly taskKey: string
  readonly taskId: string | null
  readonly state: string
  readonly mode: string
  readonly prompt: string
  /** Epoch ms the elapsed time counts from (the submit, else the row's creation). */
  readonly startedAt: number
  /** Epoch ms the task ended, when it did. */
  readonly endedAt: number | null
}

const inputField = (input: unknown, name: string): string => {
  if (typeof input !== "object" || input === null) return ""
  const value = (input as Record<string, unknown>)[name]
  return typeof value === "string" ? value : ""
}

/** The view of a ledger row. */
export const viewOf = (record: TaskLedger.TaskRecord): TaskView => ({
  taskKey: record.taskKey,
  taskId: record.remoteTaskId ?? null,
  state: record.state,
  mode: inputField(record.input, "mode"),
  prompt: inputField(record.input, "prompt"),
  startedAt: record.submittedAt ?? record.createdAt,
  endedAt: record.completedAt ?? (record.state === "completed" ? record.updatedAt : null)
})

const style = `
body { font: 15px/1.45 system-ui, sans-serif; max-width: 62rem; margin: 1.5rem auto; padding: 0 1rem; color: #1d232a; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; } h1 a { color: inherit; text-decoration: none; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .75rem; }
.banner { padding: .5rem .75rem; border-radius: 6px; background: #eef3fb; margin-bottom: 1rem; }
.banner.error { background: #fdecec; color: #8a1c1c; }
form { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: .75rem 1rem; }
.field { display: flex; flex-direction: column; gap: .25rem; } .field[hidden] { display: none; }
.field.wide { grid-column: 1 / -1; }
label { font-weight: 600; font-size: .9rem; }
input, select, textarea { font: inherit; padding: .35rem .5rem; border: 1px solid #b8c0ca; border-radius: 5px; }
textarea { min-height: 4.5rem; }
.invalid input, .invalid select, .invalid textarea { border-color: #c62828; }
.error { color: #c62828; font-size: .85rem; margin: 0; min-height: 0; }
.hint { color: #5b6672; font-size: .8rem; margin: 0; }
button { font: inherit; padding: .45rem 1.1rem; border: 0; border-radius: 5px; background: #1f5fbf; color: white; cursor: pointer; }
.actions { grid-column: 1 / -1; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e3e7ec; }
td.prompt { max-width: 24rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.state { font-weight: 600; } .state-completed { color: #1b7a35; } .state-failed, .state-rejected, .state-ambiguous { color: #c62828; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; } dt { font-weight: 600; } dd { margin: 0; word-break: break-all; }
video { max-width: 100%; background: #000; border-radius: 6px; }
code { font-size: .85rem; }
`

const layout = (title: string, body: string, script = ""): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${style}</style>
</head>
<body>
<h1><a href="/">reelkit playground</a></h1>
${body}
${script === "" ? "" : `<script>${script}</script>`}
</body>
</html>`

/** What the form shows again after a refused submit. */
export interface FormState {
  readonly values: Readonly<Record<string, string | ReadonlyArray<string>>>
  /** Field name to error text. */
  readonly errors: Readonly<Record<string, string>>
  /** An error that concerns no single field. */
  readonly banner?: string | undefined
}

/** The hidden field carrying the form's submission nonce. */
export const submissionField = "submission"

const emptyForm: FormState = { values: { mode: "text-to-video" }, errors: {} }

const valueOf = (state: FormState, name: string): string => {
  const value = state.values[name]
  return typeof value === "string" ? value : ""
}

const controlOf = (field: Fields.Field, state: FormState): string => {
  const id = `field-${field.name}`
  const value = valueOf(state, field.name)
  switch (field.kind) {
    case "text":
      return `<textarea id="${id}" name="${field.name}" maxlength="${field.max}">${escapeHtml(value)}</textarea>`
    case "choice":
      return `<select id="${id}" name="${field.name}"><option value="">(server default)</option>${(field.choices ?? [])
        .map(
          (choice) =>
            `<option value="${escapeHtml(choice)}"${choice === value ? " selected" : ""}>${escapeHtml(choice)}</option>`
        )
        .join("")}</select>`
    case "boolean":
      return `<select id="${id}" name="${field.name}">${[
        ["", "(server default)"],
        ["true", "on"],
        ["false", "off"]
      ]
        .map(([option, label]) => `<option value="${option}"${option === value ? " selected" : ""}>${label}</option>`)
        .join("")}</select>`
    case "integer":
      return `<input id="${id}" name="${field.name}" inputmode="numeric" value="${escapeHtml(value)}" placeholder="${field.min} to ${field.max}">`
    case "urls": {
      const given = state.values[field.name]
      const urls = Array.isArray(given) ? given : typeof given === "string" ? [given] : []
      return [0, 1]
        .map(
          (index) =>
            `<input id="${index === 0 ? id : `${id}-${index}`}" name="${field.name}" type="url" value="${escapeHtml(urls[index] ?? "")}" placeholder="${index === 0 ? "https://... (first frame)" : "https://... (last frame, optional)"}">`
        )
        .join("")
    }
  }
}

const fieldHtml = (field: Fields.Field, state: FormState): string => {
  const error = state.errors[field.name]
  const classes = ["field", field.kind === "text" || field.kind === "urls" ? "wide" : "", error ? "invalid" : ""]
    .filter((name) => name !== "")
    .join(" ")
  const hidden = field.scope !== "all" && field.scope !== Fields.scopeOf(valueOf(state, "mode")) ? " hidden" : ""
  return `<div class="${classes}" data-field="${field.name}" data-scope="${field.scope}"${hidden}>
<label for="field-${field.name}">${escapeHtml(field.label)}</label>
${controlOf(field, state)}
<p class="error" data-error-for="${field.name}" role="alert">${escapeHtml(error ?? "")}</p>
</div>`
}

// The browser's half of the checks: the same field table and rule texts the server's schema reports.
const formScript = (fields: ReadonlyArray<Fields.Field>, imageModes: ReadonlyArray<string>) => `
const fields = ${scriptJson(fields)};
const imageModes = ${scriptJson(imageModes)};
const form = document.getElementById("generate");
const scopeOf = (mode) => (imageModes.includes(mode) ? "image" : "text");
const allows = (field) => field.scope === "all" || field.scope === scopeOf(form.elements.mode.value);
const isUrl = (text) => { try { const url = new URL(text); return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""; } catch { return false; } };
function showError(name, text) {
  const box = form.querySelector('[data-field="' + name + '"]');
  box.classList.toggle("invalid", text !== "");
  box.querySelector(".error").textContent = text;
}
function sync() {
  for (const field of fields) {
    const box = form.querySelector('[data-field="' + field.name + '"]');
    const allowed = allows(field);
    box.hidden = !allowed;
    for (const control of box.querySelectorAll("input, select, textarea")) control.disabled = !allowed;
    if (!allowed) showError(field.name, "");
  }
}
function problemOf(field) {
  const controls = [...form.querySelectorAll('[name="' + field.name + '"]')];
  const values = controls.map((control) => control.value.trim()).filter((value) => value !== "");
  const raw = field.kind === "text" ? controls[0].value : values[0] ?? "";
  if (field.kind === "urls") {
    if (values.length === 0) return field.required ? field.missing : "";
    return values.length > field.max || !values.every(isUrl) ? field.rule : "";
  }
  if (raw === "") return field.required ? field.missing : "";
  if (field.kind === "text") return raw.length < field.min || raw.length > field.max ? field.rule : "";
  if (field.kind === "integer") {
    if (!/^-?\\d+$/.test(raw)) return field.rule;
    const number = Number(raw);
    return number < field.min || number > field.max ? field.rule : "";
  }
  if (field.kind === "choice") return field.choices.includes(raw) ? "" : field.rule;
  return "";
}
function check() {
  let valid = true;
  for (const field of fields) {
    if (!allows(field)) continue;
    const problem = problemOf(field);
    showError(field.name, problem);
    if (problem !== "") valid = false;
  }
  return valid;
}
form.elements.mode.addEventListener("change", sync);
form.addEventListener("submit", (event) => { if (!check()) event.preventDefault(); });
sync();
`

// The live list: server-sent events carry the rows; the elapsed time ticks in between.
const listScript = (initial: ReadonlyArray<TaskView>) => `
const body = document.getElementById("task-rows");
let tasks = ${scriptJson(initial)};
let offset = 0;
const escape = (text) => String(text).replace(/[&<>"']/g, (char) => "&#" + char.charCodeAt(0) + ";");
const elapsed = (task) => {
  const end = task.endedAt ?? Date.now() + offset;
  const seconds = Math.max(0, end - task.startedAt) / 1000;
  if (seconds < 60) return seconds.toFixed(1) + " s";
  const whole = Math.floor(seconds);
  return Math.floor(whole / 60) + " min " + String(whole % 60).padStart(2, "0") + " s";
};
function render() {
  body.innerHTML = tasks.length === 0
    ? '<tr><td colspan="4">No tasks yet.</td></tr>'
    : tasks.map((task) => '<tr data-task="' + escape(task.taskKey) + '"><td><a href="/tasks/' + encodeURIComponent(task.taskKey) + '">' + escape(task.taskKey) + '</a></td><td class="state state-' + escape(task.state) + '">' + escape(task.state) + '</td><td class="elapsed">' + elapsed(task) + '</td><td class="prompt">' + escape(task.mode) + ': ' + escape(task.prompt) + '</td></tr>').join("");
}
const events = new EventSource("/events");
events.addEventListener("tasks", (event) => {
  const message = JSON.parse(event.data);
  offset = message.now - Date.now();
  tasks = message.tasks;
  render();
});
setInterval(render, 1000);
render();
`

/** The home page: the form and the live task list. */
export const home = (options: {
  readonly tasks: ReadonlyArray<TaskView>
  readonly form?: FormState | undefined
  readonly backend: string
  /** A fresh random value for this rendering of the form: its submits share one idempotency key. */
  readonly submission: string
}): string => {
  const state = options.form ?? emptyForm
  const mode = valueOf(state, "mode")
  const modeOptions = Fields.modes
    .map((candidate) => `<option value="${candidate}"${candidate === mode ? " selected" : ""}>${candidate}</option>`)
    .join("")
  const modeError = state.errors.mode ?? ""
  const body = `
<p class="banner">${escapeHtml(options.backend)}</p>
${state.banner === undefined ? "" : `<p class="banner error" role="alert">${escapeHtml(state.banner)}</p>`}
<h2>Generate (Vidu Q3)</h2>
<form id="generate" method="post" action="/tasks" novalidate>
<input type="hidden" name="${submissionField}" value="${escapeHtml(options.submission)}">
<div class="field${modeError === "" ? "" : " invalid"}" data-field="mode" data-scope="all">
<label for="field-mode">Mode</label>
<select id="field-mode" name="mode">${modeOptions}</select>
<p class="error" data-error-for="mode" role="alert">${escapeHtml(modeError)}</p>
</div>
${Fields.fields.map((field) => fieldHtml(field, state)).join("\n")}
<div class="actions"><button type="submit">Generate</button></div>
</form>
<h2>Tasks</h2>
<table><thead><tr><th>Task</th><th>State</th><th>Elapsed</th><th>Input</th></tr></thead>
<tbody id="task-rows"></tbody></table>`
  return layout(
    "reelkit playground",
    body,
    formScript(
      Fields.fields,
      Fields.modes.filter((candidate) => Fields.scopeOf(candidate) === "image")
    ) + listScript(options.tasks)
  )
}

/** The task page: state, times, the stored video with its size and checksum, the estimated cost. */
export const taskPage = (options: {
  readonly record: TaskLedger.TaskRecord
  readonly now: number
  readonly cost: ViduQ3Pricing.Cost | undefined
  readonly pricingConfigured: boolean
}): string => {
  const { record } = options
  const view = viewOf(record)
  const rows: Array<[string, string]> = [
    ["Task key", `<code>${escapeHtml(record.taskKey)}</code>`],
    [
      "apixo task id",
      record.remoteTaskId === undefined ? "(not yet)" : `<code>${escapeHtml(record.remoteTaskId)}</code>`
    ],
    ["State", `<span id="state" class="state state-${record.state}">${record.state}</span>`],
    ["Elapsed", `<span id="elapsed">${formatElapsed((view.endedAt ?? options.now) - view.startedAt)}</span>`],
    ["Mode", escapeHtml(view.mode)],
    ["Prompt", escapeHtml(view.prompt)]
  ]
  if (record.failCode !== undefined || record.failMessage !== undefined) {
    rows.push(["Failure", `${escapeHtml(record.failCode ?? "")}: ${escapeHtml(record.failMessage ?? "")}`])
  }
  if (options.cost !== undefined) {
    rows.push([
      "Estimated cost",
      `<span id="cost">${options.cost.amount.toFixed(4)} ${escapeHtml(options.cost.currency)}</span> (${options.cost.seconds} s at ${options.cost.pricePerSecond} per second)`
    ])
  } else if (options.pricingConfigured) {
    rows.push(["Estimated cost", "(no price for this tier and resolution, or duration/resolution left to the server)"])
  }
  const videos = record.artifacts
    .map(
      (artifact) => `<figure>
<video controls preload="metadata" src="/artifacts/${artifact.key.split("/").map(encodeURIComponent).join("/")}"></video>
<dl>
<dt>Size</dt><dd class="bytes">${artifact.bytes} bytes</dd>
<dt>SHA-256</dt><dd class="sha256"><code>${artifact.sha256}</code></dd>
<dt>Type</dt><dd>${escapeHtml(artifact.contentType)}</dd>
</dl>
</figure>`
    )
    .join("\n")
  const script = `
const view = ${scriptJson(view)};
let offset = ${options.now} - Date.now();
const elapsedBox = document.getElementById("elapsed");
const tick = () => {
  if (view.endedAt !== null) return;
  const seconds = Math.max(0, Date.now() + offset - view.startedAt) / 1000;
  elapsedBox.textContent = seconds < 60 ? seconds.toFixed(1) + " s" : Math.floor(seconds / 60) + " min " + String(Math.floor(seconds) % 60).padStart(2, "0") + " s";
};
setInterval(tick, 1000);
const events = new EventSource("/events");
events.addEventListener("tasks", (event) => {
  const message = JSON.parse(event.data);
  offset = message.now - Date.now();
  const current = message.tasks.find((task) => task.taskKey === view.taskKey);
  // A new state may bring a video, a failure or a cost: render the page again from the server.
  if (current !== undefined && current.state !== view.state) { events.close(); location.reload(); }
});
`
  return layout(
    `Task ${record.taskKey}`,
    `<h2>Task</h2><dl>${rows.map(([term, value]) => `<dt>${term}</dt><dd>${value}</dd>`).join("")}</dl>
${videos === "" ? (record.state === "completed" ? "<p>No stored output.</p>" : "<p>The video appears here when the task is done.</p>") : `<h2>Video</h2>${videos}`}
<p><a href="/">Back to the tasks</a></p>`,
    script
  )
}

/** A page for a task that is not in the ledger. */
export const notFound = (reference: string): string =>
  layout("Not found", `<p class="banner error">No task is recorded for "${escapeHtml(reference)}".</p>`)
