/**
 * Text codec of the store file shared by every `WorkspaceStore` layer, so the in-memory twin rejects exactly the
 * files the durable one rejects, with the same messages.
 */
import * as Effect from "effect/Effect"
import * as Jsonc from "jsonc-parser"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Workspace from "../Workspace.js"
import { WorkspaceStoreError } from "../WorkspaceStoreError.js"

// JSON.parse's messages carry no position on every Node version; jsonc-parser (strict mode) reports the offset
// of the first error, which we turn into a line number for the message.
const lineOf = (text: string): number | undefined => {
  const errors: Array<Jsonc.ParseError> = []
  Jsonc.parse(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })
  const first = errors[0]
  return first === undefined ? undefined : text.slice(0, first.offset).split("\n").length
}

/** Decodes the file's text; `undefined` (no file) is the empty store. */
export const decode = (
  path: string,
  text: string | undefined
): Effect.Effect<Workspace.WorkspaceFile, WorkspaceStoreError> => {
  if (text === undefined) return Effect.succeed(Workspace.empty)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    void e
    const line = lineOf(text)
    return Effect.fail(
      new WorkspaceStoreError({
        reason: "Corrupt",
        path,
        detail: line === undefined ? "is not valid JSON" : `is not valid JSON (line ${line})`
      })
    )
  }
  return Schema.decodeUnknown(
    Workspace.WorkspaceFile,
    Workspace.preserveUnknown
  )(json).pipe(
    Effect.mapError(
      (error) =>
        new WorkspaceStoreError({
          reason: "Corrupt",
          path,
          detail: `does not have the expected shape (${ParseResult.ArrayFormatter.formatErrorSync(error)
            .map((issue) => `${issue.path.length ? issue.path.join(".") + ": " : ""}${issue.message}`)
            .join("; ")})`
        })
    )
  )
}

/** Encodes the store as the file's text: two-space JSON with a trailing newline, unknown fields kept. */
export const encode = (file: Workspace.WorkspaceFile): string =>
  JSON.stringify(Schema.encodeSync(Workspace.WorkspaceFile, Workspace.preserveUnknown)(file), null, 2) + "\n"
