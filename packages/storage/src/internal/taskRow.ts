// A row of the tasks table as a Schema: what the SQL ledgers read (decoded, never cast) and what
// they write (encoded), so a bad row is a typed LedgerError naming the column, not a defect.
import { TaskError, TaskLedger, TaskProvider } from "@reelkit/core"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

// PostgreSQL returns BIGINT as text, SQLite as a number; epoch milliseconds fit a double.
const NumberColumn = Schema.Union(Schema.Number, Schema.NumberFromString)
const OptionalNumberColumn = Schema.NullOr(NumberColumn)
const OptionalText = Schema.NullOr(Schema.String)
const ResultUrlsColumn = Schema.parseJson(Schema.Array(Schema.String))
const ArtifactsColumn = Schema.parseJson(Schema.Array(TaskLedger.StoredArtifact))
const RequestColumn = Schema.NullOr(Schema.parseJson(TaskProvider.WireRequest))

/** The columns of `reelkit_tasks`, as a driver returns them. */
const Columns = Schema.Struct({
  task_key: Schema.String,
  provider_id: Schema.String,
  model_id: Schema.String,
  idempotency_key: OptionalText,
  state: TaskLedger.TaskState,
  input: Schema.parseJson(),
  request: RequestColumn,
  callback_url: OptionalText,
  remote_task_id: OptionalText,
  billable_seconds: OptionalNumberColumn,
  created_at: NumberColumn,
  updated_at: NumberColumn,
  submitted_at: OptionalNumberColumn,
  completed_at: OptionalNumberColumn,
  fail_code: OptionalText,
  fail_message: OptionalText,
  result_urls: ResultUrlsColumn,
  result_expires_at: OptionalNumberColumn,
  artifacts: ArtifactsColumn,
  lease_owner: OptionalText,
  lease_expires_at: OptionalNumberColumn,
  version: NumberColumn
})

const absent = <A>(value: A | null): A | undefined => (value === null ? undefined : value)
const orNull = <A>(value: A | undefined): A | null => (value === undefined ? null : value)

/** A row of `reelkit_tasks` <-> a `TaskRecord`. */
export const TaskRow = Schema.transform(Columns, Schema.typeSchema(TaskLedger.TaskRecord), {
  strict: true,
  decode: (row) =>
    new TaskLedger.TaskRecord(
      {
        taskKey: row.task_key,
        providerId: row.provider_id,
        modelId: row.model_id,
        idempotencyKey: absent(row.idempotency_key),
        state: row.state,
        input: row.input,
        request: absent(row.request),
        callbackUrl: absent(row.callback_url),
        remoteTaskId: absent(row.remote_task_id),
        billableSeconds: absent(row.billable_seconds),
        createdAt: row.created_at,
        updatedAt: row.updated_at,
        submittedAt: absent(row.submitted_at),
        completedAt: absent(row.completed_at),
        failCode: absent(row.fail_code),
        failMessage: absent(row.fail_message),
        resultUrls: row.result_urls,
        resultExpiresAt: absent(row.result_expires_at),
        artifacts: row.artifacts,
        leaseOwner: absent(row.lease_owner),
        leaseExpiresAt: absent(row.lease_expires_at),
        version: row.version
      },
      // Every field was just decoded by its column's schema.
      true
    ),
  encode: (record) => ({
    task_key: record.taskKey,
    provider_id: record.providerId,
    model_id: record.modelId,
    idempotency_key: orNull(record.idempotencyKey),
    state: record.state,
    input: record.input,
    request: orNull(record.request),
    callback_url: orNull(record.callbackUrl),
    remote_task_id: orNull(record.remoteTaskId),
    billable_seconds: orNull(record.billableSeconds),
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    submitted_at: orNull(record.submittedAt),
    completed_at: orNull(record.completedAt),
    fail_code: orNull(record.failCode),
    fail_message: orNull(record.failMessage),
    result_urls: record.resultUrls,
    result_expires_at: orNull(record.resultExpiresAt),
    artifacts: record.artifacts,
    lease_owner: orNull(record.leaseOwner),
    lease_expires_at: orNull(record.leaseExpiresAt),
    version: record.version
  })
})

const encodeResultUrls = Schema.encode(ResultUrlsColumn)
const encodeArtifacts = Schema.encode(ArtifactsColumn)

/**
 * The column values a patch sets (absent fields are left out; `null` clears a column). Fails with
 * a `ParseError` when a field cannot be encoded (e.g. an artifact missing a field).
 */
export const patchColumns = (patch: TaskLedger.TaskPatch) =>
  Effect.gen(function* () {
    const columns: Record<string, unknown> = {}
    const set = (column: string, value: unknown) => {
      if (value !== undefined) columns[column] = value
    }
    set("state", patch.state)
    set("remote_task_id", patch.remoteTaskId)
    set("callback_url", patch.callbackUrl)
    set("submitted_at", patch.submittedAt)
    set("completed_at", patch.completedAt)
    set("fail_code", patch.failCode)
    set("fail_message", patch.failMessage)
    if (patch.resultUrls !== undefined) columns.result_urls = yield* encodeResultUrls(patch.resultUrls)
    set("result_expires_at", patch.resultExpiresAt)
    if (patch.artifacts !== undefined) columns.artifacts = yield* encodeArtifacts(patch.artifacts)
    set("lease_owner", patch.leaseOwner)
    set("lease_expires_at", patch.leaseExpiresAt)
    return columns
  })

/**
 * A `LedgerError` for a row (or a value to write) that does not match the row schema. It names the
 * columns and the rules they broke, never their values: a row holds callback tokens and inputs.
 */
export const invalidRow = (operation: string, error: ParseResult.ParseError): TaskError.LedgerError => {
  const problems = ParseResult.ArrayFormatter.formatErrorSync(error).map(
    (issue) =>
      `${issue.path.join(".") || "row"}: ${
        issue.message.startsWith("Expected") ? issue.message.replace(/, actual [\s\S]*$/, "") : "is not valid"
      }`
  )
  return new TaskError.LedgerError({
    operation,
    message: `a task row (as read, or to be written) does not match the schema of the tasks table (${problems.join("; ")})`
  })
}
