/**
 * The shell parser: mvdan/sh (the parser behind shfmt) compiled to JavaScript, published as `mvdan-sh`. It is
 * synchronous, so once loaded (about 60 ms, once per process) a parse costs a fraction of a millisecond.
 * This module gives its untyped GopherJS objects the few types the reader needs.
 */
import { createRequire } from "node:module"

/** A syntax node; fields are read by name as the Go API spells them (`Args`, `Parts`, `Stmts`, …). */
export interface Node {
  readonly [field: string]: any
}

export interface Syntax {
  readonly parse: (src: string) => Node
  readonly nodeType: (node: Node) => string
  readonly walk: (node: Node, visit: (node: Node | null) => boolean) => void
}

let loaded: Syntax | undefined

/** Loads the parser once; later calls return the same instance. */
export const load = (): Syntax => {
  if (loaded !== undefined) return loaded
  const { syntax } = createRequire(import.meta.url)("mvdan-sh")
  const parser = syntax.NewParser(syntax.Variant(syntax.LangBash))
  loaded = {
    parse: (src) => {
      try {
        return parser.Parse(src, "")
      } catch (error) {
        const message = typeof (error as Node)?.Error === "function" ? (error as Node).Error() : String(error)
        throw new ShellSyntaxError(String(message))
      }
    },
    nodeType: (node) => syntax.NodeType(node),
    walk: (node, visit) => syntax.Walk(node, visit)
  }
  return loaded
}

/** The script is not valid shell; `message` is the parser's, e.g. `1:6: "foo(" must be followed by )`. */
export class ShellSyntaxError extends Error {}

/** mvdan/sh token numbers for the operators the reader cares about (stable across its v3 releases). */
export const Op = {
  RdrIn: 56,
  RdrOut: 54,
  AppOut: 55,
  RdrInOut: 57,
  DplIn: 58,
  DplOut: 59,
  ClbOut: 60,
  Hdoc: 61,
  DashHdoc: 62,
  WordHdoc: 63,
  RdrAll: 64,
  AppAll: 65,
  Pipe: 12,
  PipeAll: 13,
  Transform: 84
} as const
