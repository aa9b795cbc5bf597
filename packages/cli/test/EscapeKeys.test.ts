/**
 * The keys an attached shell keeps for itself: ssh's escapes at the start of a line, an optional detach chord, and
 * every other byte (Ctrl-D included) forwarded in order; and the terminal's own replies dropped during a replay.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as EscapeKeys from "../src/EscapeKeys.js"
import * as TerminalReplies from "../src/TerminalReplies.js"

const bytes = (s: string) => new Uint8Array(Buffer.from(s, "latin1"))
const text = (a: Uint8Array) => Buffer.from(a).toString("latin1")

/** Feeds `chunks` and describes the outcome: forwarded text, then "<detach>" / "<help>" markers. */
const typed = (chunks: ReadonlyArray<string>, chord = "") => {
  const parsed = EscapeKeys.parseDetachKeys(chord)
  assert(typeof parsed !== "string", String(parsed))
  const keys = EscapeKeys.make(parsed)
  let out = ""
  for (const chunk of chunks)
    for (const a of keys.feed(bytes(chunk))) out += a._tag === "Forward" ? text(a.data) : `<${a._tag.toLowerCase()}>`
  return out
}

describe("EscapeKeys", () => {
  it("Ctrl-D is forwarded like any key", () => {
    assert.strictEqual(typed(["abc\x04", "\x04"]), "abc\x04\x04")
  })

  it("~. at the start of a line detaches; elsewhere it is typed", () => {
    assert.strictEqual(typed(["~."]), "<detach>")
    assert.strictEqual(typed(["ls\r", "~", "."]), "ls\r<detach>")
    assert.strictEqual(typed(["a~.b"]), "a~.b")
  })

  it("~? lists the escapes, ~~ sends one tilde, ~x sends both", () => {
    assert.strictEqual(typed(["~?"]), "<help>")
    assert.strictEqual(typed(["~~/x"]), "~/x")
    assert.strictEqual(typed(["~x"]), "~x")
    assert.strictEqual(typed(["\n~~~."]), "\n~~.")
  })

  it("--detach-keys: the chord detaches, a broken chord is forwarded", () => {
    assert.strictEqual(typed(["ab\x10\x11"], "ctrl-p,ctrl-q"), "ab<detach>")
    assert.strictEqual(typed(["\x10x"], "ctrl-p,ctrl-q"), "\x10x")
    assert.strictEqual(typed(["\x10", "\x10\x11"], "ctrl-p,ctrl-q"), "\x10<detach>")
    assert.strictEqual(typed(["cat\r\x04"], "ctrl-d"), "cat\r<detach>")
    assert.strictEqual(
      EscapeKeys.parseDetachKeys("ctrl-1"),
      'invalid --detach-keys "ctrl-1": ctrl-1 is not a control key (use ctrl-a … ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_)'
    )
  })

  it.prop(
    "without a tilde or a chord key, the bytes go through unchanged, however they are split",
    [FastCheck.array(FastCheck.string({ minLength: 0, maxLength: 10 }).map((s) => s.replaceAll("~", "")))],
    ([chunks]) => {
      assert.strictEqual(typed(chunks), chunks.join(""))
    }
  )

  it.prop(
    "~~ after a newline types one tilde, and nothing else changes",
    [FastCheck.string({ maxLength: 20 }).map((s) => s.replaceAll("~", ""))],
    ([rest]) => {
      assert.strictEqual(typed(["\r~~" + rest]), "\r~" + rest)
    }
  )
})

describe("TerminalReplies", () => {
  it("drops cursor position reports, device attributes and OSC colour replies, keeps keys", () => {
    const keys = "\x1b[A" + "ls\r" + "\x1b[15~"
    const replies = "\x1b[2;1R" + "\x1b[?1;2c" + "\x1b[>41;380;0c" + "\x1b]11;rgb:0000/0000/0000\x1b\\" + "\x1b[0n"
    assert.strictEqual(text(TerminalReplies.strip(bytes(replies + keys + "\x1b[24;80R"))), keys)
  })
})
