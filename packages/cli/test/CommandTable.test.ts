/**
 * The command table (help pages, usage checks, completions) and the @effect/cli command tree agree: the same
 * commands at every level, and every flag a command parses is in the table.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import * as CliConfig from "@effect/cli/CliConfig"
import * as HelpDoc from "@effect/cli/HelpDoc"
import { root } from "../src/Cli.js"
import * as Table from "../src/CommandTable.js"

/** Commands the table has that the @effect/cli tree does not (handled by `main` before parsing). */
const HANDLED_BY_MAIN = new Set(["completion", "version"])
/** @effect/cli's built-in flags: `Usage.check` refuses them before @effect/cli sees them. */
const BUILT_IN = new Set(["--completions", "--log-level", "--wizard", "--help", "--version"])

/** The shape of @effect/cli's descriptor instructions this test walks (its public getters flatten them). */
interface Instruction {
  readonly _tag: string
  readonly name?: string
  readonly parent?: Instruction
  readonly children?: ReadonlyArray<Instruction>
  readonly command?: Instruction
}
const unwrap = (i: Instruction): Instruction => (i._tag === "Map" ? unwrap(i.command!) : i)
const own = (i: Instruction): Instruction => (unwrap(i)._tag === "Subcommands" ? own(unwrap(i).parent!) : unwrap(i))
const childrenOf = (i: Instruction) => (unwrap(i)._tag === "Subcommands" ? unwrap(i).children! : [])

const walk = (path: string, node: Table.Node, command: Instruction) => {
  const children = new Map(childrenOf(command).map((c) => [own(c).name!, c] as const))
  const table = (node.subcommands ?? [])
    .filter((c) => !HANDLED_BY_MAIN.has(c.name))
    .flatMap((c) => [c.name, ...(c.aliases ?? [])])
    .sort()
  assert.deepStrictEqual(table, [...children.keys()].sort(), `subcommands of ${path}`)
  const help = HelpDoc.toAnsiText(
    Descriptor.getHelp(own(command) as unknown as Descriptor.Command<unknown>, CliConfig.defaultConfig)
  )
  for (const flag of (help.match(/--[a-z][a-z-]+/g) ?? []).filter((f) => !BUILT_IN.has(f)))
    assert.isDefined(Table.flag(node, flag), `${path} ${flag} is missing from the command table`)
  for (const [name, child] of children) walk(`${path} ${name}`, Table.child(node, name)!, child)
}

describe("CommandTable", () => {
  it("matches the @effect/cli command tree, level by level, flag by flag", () => {
    walk("cmdop", Table.root, root.descriptor as unknown as Instruction)
  })
})
