/**
 * Every command line a message tells the user to run exists: each `cmdop …` in a string of the CLI's, the agent's
 * and the relay's sources names a command of the command table, level by level (a level that takes arguments ends
 * the check). A message pointing at a command that does not exist ("run cmdop login" before there was one) fails.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as CommandTable from "../src/CommandTable.js"

const packages = fileURLToPath(new URL("../../", import.meta.url))
const sources = (dir: string): ReadonlyArray<string> =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? sources(path.join(dir, e.name))
        : e.name.endsWith(".ts") && !e.name.includes(".generated.")
          ? [path.join(dir, e.name)]
          : []
    )

/** The string literals of a source file (double, single and back quotes). */
const literals = (text: string) => text.match(/"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`|'(?:[^'\\\n]|\\.)*'/g) ?? []

/** "cmdop" as a word of prose, not a command line: "when cmdop itself fails", "another cmdop process". */
const PROSE = new Set(["itself", "is", "process", "script", "with"])

/**
 * Whether `words` walk the command table to a command. After a command that takes arguments, or a leaf, the rest
 * is arguments or prose ("run cmdop login again"); a level with subcommands and no arguments needs one of them.
 */
const exists = (words: ReadonlyArray<string>): boolean => {
  if (PROSE.has(words[0]!)) return true
  let node = CommandTable.root
  for (const word of words) {
    const next = CommandTable.child(node, word)
    if (next !== undefined) node = next
    else return (node.args?.length ?? 0) > 0 || node.rest !== undefined || node.subcommands === undefined
  }
  return true
}

describe("messages point at commands that exist", () => {
  it("every `cmdop …` in a message names a real command", () => {
    const files = ["cli", "agent", "relay", "domain", "node"].flatMap((p) => sources(path.join(packages, p, "src")))
    const seen: Array<string> = []
    const broken: Array<string> = []
    for (const file of files)
      for (const literal of literals(fs.readFileSync(file, "utf8")).filter((l) => !l.includes("realm=")))
        for (const m of literal.matchAll(/(?<![\w@/.~-])cmdop((?: [a-z][a-z0-9-]*)+)/g)) {
          seen.push(m[0])
          if (!exists(m[1]!.trim().split(" "))) broken.push(`${path.relative(packages, file)}: ${m[0]}`)
        }
    assert.deepStrictEqual(broken, [], broken.join("\n"))
    // The check saw the messages it is about.
    for (const expected of ["cmdop agent start", "cmdop connect --list", "cmdop relay workspace create"])
      assert.isTrue(
        seen.some((s) => s.startsWith(expected.split(" --")[0]!)),
        expected
      )
    assert.isAbove(seen.length, 50)
  })
})
