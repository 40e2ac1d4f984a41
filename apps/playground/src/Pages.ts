/**
 * The web app's HTML: server-rendered pages and one small script. The form shows the fields the
 * chosen mode allows and checks them in the browser with the rules' own texts (from the field
 * table in `Fields`); the server checks them again with the provider's `prepare`.
 */
import type { TaskLedger } from "@reelkit/core"
import type { ViduQ3Pricing } from "@reelkit/provider-vidu-q3"
import type * as Cost from "./Cost.js"
import * as Fields from "./Fields.js"
import { csrfField } from "./server/Access.js"
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
  /** Epoch ms the row was created. */
  readonly createdAt: number
  /** Seconds of video asked for; null when left to the server's default. */
  readonly duration: number | null
  /** Epoch ms the elapsed time counts from (the submit, else the row's creation). */
  readonly startedAt: number
  /** Epoch ms the task ended, when it did. */
  readonly endedAt: number | null
}

const inputValue = (input: unknown, name: string): unknown =>
  typeof input === "object" && input !== null ? (input as Record<string, unknown>)[name] : undefined

const inputField = (input: unknown, name: string): string => {
  const value = inputValue(input, name)
  return typeof value === "string" ? value : ""
}

const inputNumber = (input: unknown, name: string): number | null => {
  const value = inputValue(input, name)
  return typeof value === "number" ? value : null
}

/** The view of a ledger row. */
export const viewOf = (record: TaskLedger.TaskRecord): TaskView => ({
  taskKey: record.taskKey,
  taskId: record.remoteTaskId ?? null,
  state: record.state,
  mode: inputField(record.input, "mode"),
  prompt: inputField(record.input, "prompt"),
  createdAt: record.createdAt,
  duration: inputNumber(record.input, "duration"),
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
.actions { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; }
.estimate { margin: 0; color: #33404d; } .estimate strong { color: #1d232a; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e3e7ec; vertical-align: top; }
td.prompt { max-width: 20rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
td.key a { word-break: break-all; }
.outcome { padding: .75rem 1rem; border-radius: 6px; margin: 1rem 0; }
.outcome.failed { background: #fdecec; color: #8a1c1c; } .outcome.waiting { background: #eef3fb; }
.outcome h3 { margin: 0 0 .35rem; font-size: 1rem; } .outcome p { margin: .25rem 0; }
@media (max-width: 40rem) {
  body { margin: 1rem auto; }
  form { grid-template-columns: 1fr; }
  table, tbody, tr, td { display: block; width: 100%; box-sizing: border-box; }
  thead { display: none; }
  tr { border: 1px solid #e3e7ec; border-radius: 6px; margin-bottom: .6rem; padding: .25rem 0; }
  td { border: 0; padding: .15rem .6rem; }
  td::before { content: attr(data-label) ": "; font-weight: 600; color: #5b6672; }
  td.prompt { max-width: none; white-space: normal; overflow-wrap: anywhere; }
}
.state { font-weight: 600; } .state-completed { color: #1b7a35; } .state-failed, .state-rejected, .state-ambiguous { color: #c62828; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; } dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
video { max-width: 100%; background: #000; border-radius: 6px; }
code { font-size: .85rem; }
`

const layout = (title: string, body: string, script = ""): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" type="image/svg+xml" href="/favicon.svg">
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
// The cost as the fields change, from the server's price table (GET /estimate uses the same
// estimate as the task page); the newest answer wins.
const estimateBox = document.getElementById("estimate");
let estimateRound = 0;
async function estimate() {
  const round = ++estimateRound;
  const query = new URLSearchParams({ pair: form.elements.pair.value, mode: form.elements.mode.value, duration: form.elements.duration.value, resolution: form.elements.resolution.value });
  try {
    const answer = await fetch("/estimate?" + query, { credentials: "same-origin" });
    const body = await answer.json();
    if (round === estimateRound) estimateBox.innerHTML = body.html;
  } catch {
    if (round === estimateRound) estimateBox.textContent = "The cost estimate is unavailable.";
  }
}
form.elements.mode.addEventListener("change", sync);
form.addEventListener("input", estimate);
form.elements.pair.addEventListener("change", estimate);
form.addEventListener("change", estimate);
form.addEventListener("submit", (event) => { if (!check()) event.preventDefault(); });
sync();
estimate();
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
const created = (task) => new Date(task.createdAt).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
const cell = (name, label, html) => '<td class="' + name + '" data-label="' + label + '">' + html + '</td>';
function render() {
  body.innerHTML = tasks.length === 0
    ? '<tr><td colspan="7">No tasks yet.</td></tr>'
    : tasks.map((task) => '<tr data-task="' + escape(task.taskKey) + '">'
        + cell("key", "Task", '<a href="/tasks/' + encodeURIComponent(task.taskKey) + '">' + escape(task.taskKey) + '</a>')
        + cell("state state-" + escape(task.state), "State", escape(task.state))
        + cell("mode", "Mode", escape(task.mode))
        + cell("prompt", "Prompt", escape(task.prompt))
        + cell("created", "Created", escape(created(task)))
        + cell("duration", "Duration", task.duration === null ? "server default" : escape(task.duration) + " s")
        + cell("elapsed", "Elapsed", elapsed(task))
        + '</tr>').join("");
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
  /** One line per pair: where its tasks go. */
  readonly backend: ReadonlyArray<string>
  /** Every (model, transport) pair the form can submit to, the default first. */
  readonly pairs: ReadonlyArray<{ readonly id: string; readonly name: string }>
  /** A fresh random value for this rendering of the form: its submits share one idempotency key. */
  readonly submission: string
  /** The CSRF token made for `submission`. */
  readonly csrf: string
  /** The cost line before any field is changed. */
  readonly estimate: string
}): string => {
  const state = options.form ?? emptyForm
  const mode = valueOf(state, "mode")
  const modeOptions = Fields.modes
    .map((candidate) => `<option value="${candidate}"${candidate === mode ? " selected" : ""}>${candidate}</option>`)
    .join("")
  const modeError = state.errors.mode ?? ""
  const pair = valueOf(state, "pair")
  const pairOptions = options.pairs
    .map(
      (candidate) =>
        `<option value="${escapeHtml(candidate.id)}"${candidate.id === pair ? " selected" : ""}>${escapeHtml(candidate.name)}</option>`
    )
    .join("")
  const pairError = state.errors.pair ?? ""
  const body = `
${options.backend.map((line) => `<p class="banner">${escapeHtml(line)}</p>`).join("\n")}
${state.banner === undefined ? "" : `<p class="banner error" role="alert">${escapeHtml(state.banner)}</p>`}
<h2>Generate (Vidu Q3)</h2>
<form id="generate" method="post" action="/tasks" novalidate>
<input type="hidden" name="${submissionField}" value="${escapeHtml(options.submission)}">
<input type="hidden" name="${csrfField}" value="${escapeHtml(options.csrf)}">
<div class="field${pairError === "" ? "" : " invalid"}" data-field="pair" data-scope="all">
<label for="field-pair">Model and transport</label>
<select id="field-pair" name="pair">${pairOptions}</select>
<p class="error" data-error-for="pair" role="alert">${escapeHtml(pairError)}</p>
</div>
<div class="field${modeError === "" ? "" : " invalid"}" data-field="mode" data-scope="all">
<label for="field-mode">Mode</label>
<select id="field-mode" name="mode">${modeOptions}</select>
<p class="error" data-error-for="mode" role="alert">${escapeHtml(modeError)}</p>
</div>
${Fields.fields.map((field) => fieldHtml(field, state)).join("\n")}
<div class="actions"><button type="submit">Generate</button><p id="estimate" class="estimate" aria-live="polite">${options.estimate}</p></div>
</form>
<h2>Tasks</h2>
<table><thead><tr><th>Task</th><th>State</th><th>Mode</th><th>Prompt</th><th>Created</th><th>Duration</th><th>Elapsed</th></tr></thead>
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
  /** The pair the task went to (`vidu-q3 on vidu`), its transport and how its service is named. */
  readonly pair: { readonly name: string; readonly transport: string; readonly serviceName: string }
  readonly now: number
  readonly cost: ViduQ3Pricing.Cost | undefined
  readonly pricingConfigured: boolean
}): string => {
  const { record } = options
  const view = viewOf(record)
  const rows: Array<[string, string]> = [
    ["Task key", `<code>${escapeHtml(record.taskKey)}</code>`],
    ["Transport", `<span id="transport">${escapeHtml(options.pair.name)}</span>`],
    [
      `${escapeHtml(options.pair.transport)} task id`,
      record.remoteTaskId === undefined ? "(not yet)" : `<code>${escapeHtml(record.remoteTaskId)}</code>`
    ],
    ["State", `<span id="state" class="state state-${record.state}">${record.state}</span>`],
    ["Elapsed", `<span id="elapsed">${formatElapsed((view.endedAt ?? options.now) - view.startedAt)}</span>`],
    ["Mode", escapeHtml(view.mode)],
    ["Prompt", escapeHtml(view.prompt)]
  ]
  if (options.cost !== undefined) {
    rows.push(["Estimated cost", `<span id="cost">${costAmount(options.cost)}</span> (${costBasis(options.cost)})`])
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
${videos === "" ? outcomeOf(record, options.pair.serviceName) : `<h2>Video</h2>${videos}`}
<p><a href="/">Back to the tasks</a></p>`,
    script
  )
}

// What a task without a video says about itself: an ended task says why, honestly; only a task
// still under way promises a video.
const outcomeOf = (record: TaskLedger.TaskRecord, serviceName: string): string => {
  const said =
    record.failCode === undefined && record.failMessage === undefined
      ? ""
      : `<p>${escapeHtml(serviceName)} said: <code id="fail-code">${escapeHtml(record.failCode ?? "")}</code> ${escapeHtml(record.failMessage ?? "")}</p>`
  const ended = (heading: string, text: string) =>
    `<section id="outcome" class="outcome failed" role="status"><h3>${heading}</h3><p>${text}</p>${said}</section>`
  switch (record.state) {
    case "failed":
      return ended(
        "This task failed",
        `${escapeHtml(serviceName)} reported that generation failed, so there is no video.`
      )
    case "rejected":
      return ended(
        "The submit was refused",
        `${escapeHtml(serviceName)} refused the submit, so no task was created and there is no video. Fix what it said and submit again.`
      )
    case "ambiguous":
      return ended(
        "The submit's outcome is unknown",
        `The connection broke while the task was being submitted, so ${escapeHtml(serviceName)} may or may not have created it; reelkit did not send it again. Check ${escapeHtml(serviceName)}'s dashboard before submitting it again.`
      )
    case "completed":
      return `<section id="outcome" class="outcome" role="status"><p>The task completed without a stored output.</p></section>`
    default:
      return `<section id="outcome" class="outcome waiting" role="status"><p>The video appears here when the task is done.</p></section>`
  }
}

/** The amount of a cost, as shown. */
const costAmount = (cost: ViduQ3Pricing.Cost) => `${cost.amount.toFixed(4)} ${escapeHtml(cost.currency)}`

const costBasis = (cost: ViduQ3Pricing.Cost) => `${cost.seconds} s at ${cost.pricePerSecond} per second`

/** The form's cost line (HTML), from the CLI's estimate of the fields a price depends on. */
export const estimateLine = (estimate: Cost.Estimate, fields: Cost.Priceable, pricingConfigured: boolean): string => {
  if (estimate._tag === "Priced") {
    return `Estimated cost: <strong id="estimate-amount">${costAmount(estimate.cost)}</strong> (${costBasis(estimate.cost)}, ${escapeHtml(estimate.tier)} ${escapeHtml(estimate.resolution)})`
  }
  // Without both fields the server's undocumented defaults would be billed: say which to choose.
  if (pricingConfigured && (fields.duration === undefined || fields.resolution === undefined)) {
    return "Choose a duration and a resolution to see the cost (apixo does not document its defaults)."
  }
  return `No cost estimate: ${escapeHtml(estimate.reason)}.`
}

const notFoundBody = (text: string) =>
  `<h2>Not found</h2><p class="banner error">${text}</p><p><a id="back" href="/">Back to the playground</a></p>`

/** A page for a task that is not in the ledger. */
export const notFound = (reference: string): string =>
  layout("Not found", notFoundBody(`No task is recorded for "${escapeHtml(reference)}".`))

/** The page of a path the server does not have. */
export const pageNotFound = (path: string): string =>
  layout("Not found", notFoundBody(`There is no page at ${escapeHtml(path)}.`))

/** The page of a form that is refused before it is read: too large, or not made by this server. */
export const formRefused = (text: string): string =>
  layout(
    "Form refused",
    `<h2>Form refused</h2><p class="banner error">${escapeHtml(text)}</p><p><a href="/">Back to the form</a></p>`
  )

/** The tab icon: a film frame with a play mark. */
export const favicon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="2" y="5" width="28" height="22" rx="4" fill="#1f5fbf"/><path d="M13 11v10l8-5z" fill="#fff"/></svg>`
