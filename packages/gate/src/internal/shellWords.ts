/**
 * Turning mvdan/sh word nodes into the words a command will receive: quotes and backslashes removed, and a word
 * marked unknown when its value is only decided when it runs (`$x`, `$(…)`, `$((…))`, `<(…)`, `{a,b}`, `$'…'`).
 * Unquoted glob characters (`*`, `?`, `[`) are kept as text and flagged, so the gate can match them as text.
 */
import type { Node } from "./mvdan.js"
import { items, nodeType, text as goText } from "./mvdan.js"

export interface Word {
  readonly text: string
  readonly known: boolean
  /** The word has an unquoted `*`, `?` or `[` the shell will expand into file names. */
  readonly glob: boolean
}

/** Source text of a node (mvdan/sh offsets are UTF-8 byte offsets). */
export const sourceOf = (src: Buffer, node: Node): string =>
  src.subarray(node.Pos().Offset(), node.End().Offset()).toString("utf8")

const unquotedLit = (raw: string): { readonly text: string; readonly glob: boolean } => {
  let text = ""
  let glob = false
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!
    if (ch === "\\" && i + 1 < raw.length) {
      i++
      if (raw[i] !== "\n") text += raw[i]
    } else {
      if (ch === "*" || ch === "?" || ch === "[") glob = true
      text += ch
    }
  }
  return { text, glob }
}

const quotedLit = (raw: string): string => raw.replace(/\\([$`"\\\n])/g, (_, c: string) => (c === "\n" ? "" : c))

/** Brace expansion (`{a,b}`, `{1..9}`) turns one word into several: its value is not the text. */
const hasBraceExpansion = (raw: string): boolean => /\{[^{}]*(,|\.\.)[^{}]*\}/.test(raw)

/** Reads one word. */
export const readWord = (src: Buffer, word: Node): Word => {
  let text = ""
  let known = true
  let glob = false
  for (const part of items(word.Parts)) {
    const type = nodeType(part)
    if (type === "Lit") {
      const raw = goText(part.Value)
      if (hasBraceExpansion(raw)) known = false
      const lit = unquotedLit(raw)
      text += lit.text
      glob ||= lit.glob
    } else if (type === "SglQuoted" && part.Dollar !== true) {
      text += goText(part.Value)
    } else if (type === "DblQuoted") {
      for (const inner of items(part.Parts)) {
        if (nodeType(inner) === "Lit") text += quotedLit(goText(inner.Value))
        else known = false
      }
    } else {
      known = false
    }
  }
  return known ? { text, known, glob } : { text: sourceOf(src, word), known, glob }
}
