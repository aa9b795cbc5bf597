/**
 * The shell parser: mvdan/sh (the parser behind shfmt) compiled to JavaScript, published as `mvdan-sh`. It is
 * synchronous: once loaded (about 60 ms, once per process, see `load`) a parse costs a fraction of a millisecond.
 * This module gives its untyped GopherJS objects the few types the reader needs.
 */

/** A raw GopherJS syntax node; fields are read by name as the Go API spells them (`Args`, `Parts`, `Stmts`, …). */
export type Node = any

export interface Syntax {
  /** Parses a script into its (raw, GopherJS) `*syntax.File`; throws `ShellSyntaxError`. */
  readonly parse: (src: string) => Node
}

/** The node's Go type name without the package: `CallExpr`, `Stmt`, `Lit`, … */
export const nodeType = (node: Node): string => String(node.constructor.string).slice(8)

/** Whether a field holds nothing (a nil pointer or interface). */
export const isNil = (value: Node | null | undefined): boolean =>
  value == null || value.constructor?.string === undefined || value === value.constructor.nil

/** The elements of a Go slice. */
export const items = (slice: Node | null | undefined): ReadonlyArray<Node> =>
  slice == null || slice.$array === undefined ? [] : slice.$array.slice(slice.$offset, slice.$offset + slice.$length)

/** A Go string as JavaScript text (GopherJS keeps strings as UTF-8 bytes). */
export const text = (value: unknown): string => {
  const s = String(value ?? "")
  return /[^\x00-\x7f]/.test(s) ? Buffer.from(s, "latin1").toString("utf8") : s
}

const KIND_INTERFACE = 20
const KIND_PTR = 22
const KIND_SLICE = 23

const isNodeType = (typ: Node): boolean =>
  typ.kind === KIND_INTERFACE || (typ.kind === KIND_PTR && String(typ.string).startsWith("*syntax."))

const childFields = new Map<unknown, ReadonlyArray<{ readonly prop: string; readonly slice: boolean }>>()

/** The fields of a node type that hold nodes, computed once per type from GopherJS's type metadata. */
const childrenOf = (ctor: Node): ReadonlyArray<{ readonly prop: string; readonly slice: boolean }> => {
  let fields = childFields.get(ctor)
  if (fields === undefined) {
    fields = (
      items({
        $array: ctor.elem?.fields ?? [],
        $offset: 0,
        $length: ctor.elem?.fields?.length ?? 0
      }) as ReadonlyArray<Node>
    )
      .filter((f) => isNodeType(f.typ) || (f.typ.kind === KIND_SLICE && isNodeType(f.typ.elem)))
      .map((f) => ({ prop: String(f.prop), slice: f.typ.kind === KIND_SLICE }))
    childFields.set(ctor, fields)
  }
  return fields
}

/**
 * Visits `node` and everything under it, depth first, like Go's `syntax.Walk`, but over the raw objects (the
 * library's own `Walk` converts every node to a JavaScript object and costs ten times more).
 */
export const walk = (node: Node, visit: (node: Node) => void): void => {
  if (isNil(node)) return
  visit(node)
  for (const field of childrenOf(node.constructor)) {
    const value = node[field.prop]
    if (field.slice) for (const item of items(value)) walk(item, visit)
    else walk(value, visit)
  }
}

let loaded: Syntax | undefined
let loading: Promise<Syntax> | undefined

const wrap = (module: any): Syntax => {
  const syntax = (module.default ?? module).syntax
  const parser = syntax.NewParser(syntax.Variant(syntax.LangBash))
  return {
    parse: (src) => {
      try {
        return parser.Parse(src, "").__internal_object__
      } catch (error) {
        const message = typeof (error as Node)?.Error === "function" ? (error as Node).Error() : String(error)
        throw new ShellSyntaxError(String(message))
      }
    }
  }
}

/** Loads the parser once (a dynamic import, so bundles load it only when the gate is used). */
export const load = (): Promise<Syntax> => {
  loading ??= import("mvdan-sh").then((module) => (loaded = wrap(module)))
  return loading
}

/** Whether `load` has completed. */
export const isLoaded = (): boolean => loaded !== undefined

/** The loaded parser; throws `ParserNotLoaded` before `load` has completed. */
export const get = (): Syntax => {
  if (loaded === undefined)
    throw new ParserNotLoaded("the gate's shell parser is not loaded (await Reader.warmUp first)")
  return loaded
}

/** `get` was called before `load` completed. */
export class ParserNotLoaded extends Error {}

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
