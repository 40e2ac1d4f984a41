// Turns a Schema parse failure into core's `InvalidInput`: the first issue's path under `input`, and
// its rule. Models state their rules as `message` annotations next to the schema, so those texts
// come out verbatim; Effect's default wording is rephrased into the same "must be ..." style.
import { TaskError } from "@reelkit/core"
import * as ParseResult from "effect/ParseResult"

const expectedPattern = /^Expected (.+), actual (.+)$/s

const rephrase = (issue: ParseResult.ArrayFormatterIssue): string => {
  switch (issue._tag) {
    case "Missing":
      return issue.message === "is missing" ? "is required" : issue.message
    case "Unexpected":
      return "is not a field of this model"
    default: {
      const match = expectedPattern.exec(issue.message)
      if (match === null) return issue.message
      // The top level of a union describes every member at length; say what matters instead.
      return issue.path.length === 0 ? "must be an object" : `must be ${match[1]} (got ${match[2]})`
    }
  }
}

/** The first issue of a parse failure as `InvalidInput { path: "input.<field>", rule }`. */
export const toInvalidInput = (error: ParseResult.ParseError, root = "input"): TaskError.InvalidInput => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return new TaskError.InvalidInput({ path: root, rule: "is invalid" })
  return new TaskError.InvalidInput({
    path: [root, ...first.path.map(String)].join("."),
    rule: rephrase(first)
  })
}
