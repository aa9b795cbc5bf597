/**
 * Last touches on the lines a user reads: no pointer at a command that does not exist yet (`cmdop login`), and
 * a hint when a "machine not found" was probably a mistyped command (`cmdop connect exce`).
 */
import * as Usage from "./Usage.js"

/** Flip once `cmdop login` exists: messages may point at it again. */
export const LOGIN_EXISTS = false

/** A store file of the wrong shape: one line saying what was expected instead of the Schema's definition. */
const SHAPE = /^(.*) does not have the expected shape \(Expected [\s\S]*, actual ([\s\S]*?)\)(: left unchanged[\s\S]*)$/

const shortShape = (message: string): string => {
  const m = SHAPE.exec(message)
  if (m === null) return message
  const actual = m[2]!.length > 40 ? `${m[2]!.slice(0, 40)}…` : m[2]!
  return `${m[1]} does not have the expected shape (line 1): expected an object {"active": "<name>", "workspaces": [{"name": …, "api_key": …, "server": …}]}, found ${actual}${m[3]}`
}

/** `message` as one line: no Schema dumps, no advice to run commands that do not exist. */
export const forUser = (raw: string): string => {
  const message = shortShape(raw)
  return LOGIN_EXISTS
    ? message
    : message
        .replace(
          'run "cmdop login", "cmdop connect key set <key>", or pass --api-key',
          'run "cmdop connect key set <key>" or pass --api-key'
        )
        .replace(" or cmdop login", "")
}

/** An extra hint for `error` given the command words `args`, or "". */
export const hintFor = (error: unknown, args: ReadonlyArray<string>): string => {
  if (typeof error !== "object" || error === null) return ""
  const e = error as { readonly _tag?: string; readonly reason?: string; readonly query?: string }
  if (e._tag === "MachineError" && e.reason === "NotFound" && e.query !== undefined)
    return Usage.commandHint(args, e.query)
  return ""
}
