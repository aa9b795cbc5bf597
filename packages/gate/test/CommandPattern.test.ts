import { assert, describe, it } from "@effect/vitest"
import type { ArgWord } from "../src/CommandPattern.js"
import { compile, matches } from "../src/CommandPattern.js"

const words = (...texts: ReadonlyArray<string>): ReadonlyArray<ArgWord> => texts.map((text) => ({ text, known: true }))

const test = (pattern: string, ...argv: ReadonlyArray<string>): boolean => {
  const compiled = compile(pattern)
  if (typeof compiled === "string") throw new Error(compiled)
  return matches(compiled, words(...argv))
}

describe("CommandPattern", () => {
  it("a trailing * is any further arguments, zero or more", () => {
    assert.isTrue(test("ls *", "ls"))
    assert.isTrue(test("ls *", "ls", "-la", "/tmp"))
    assert.isTrue(test("ls *", "ls", "/"))
    assert.isFalse(test("ls *", "lsof"))
    assert.isTrue(test("journalctl -u nginx *", "journalctl", "-u", "nginx", "--since", "1 hour ago"))
    assert.isFalse(test("journalctl -u nginx *", "journalctl", "-u", "sshd"))
  })

  it("a lone * is any command the gate can read", () => {
    assert.isTrue(test("*", "anything", "at", "all"))
    assert.isFalse(matches(compile("*") as never, [{ text: "$cmd", known: false }]))
  })

  it("without a trailing *, the word count is exact", () => {
    assert.isTrue(test("uptime", "uptime"))
    assert.isFalse(test("uptime", "uptime", "-p"))
    assert.isFalse(test("uptime", "/usr/bin/uptime"), "the program is matched as written")
  })

  it("a wildcard inside a word stays inside one argument and does not cross /", () => {
    assert.isTrue(test("cat /var/log/*", "cat", "/var/log/syslog"))
    assert.isFalse(test("cat /var/log/*", "cat", "/var/log/x", "/etc/shadow"), "one * never spans two arguments")
    assert.isFalse(test("cat /var/log/*", "cat", "/var/log/../../etc/shadow"))
    assert.isFalse(test("cat /var/log/**", "cat", "/var/log/../../etc/shadow"), "** never matches ..")
    assert.isTrue(test("cat /var/log/**", "cat", "/var/log/nginx/access.log"))
    assert.isFalse(test("cat /var/log/*", "cat", "/var/log/nginx/access.log"))
    assert.isTrue(test("systemctl restart nginx*", "systemctl", "restart", "nginx.service"))
  })

  it("argv words are not split: an argument with spaces is one word", () => {
    assert.isFalse(test("git status", "git status"))
    assert.isFalse(test("rm -i *", "rm", "-i x"), "`-i x` is one word, not -i")
    assert.isTrue(test("echo 'a b'", "echo", "a b"), "quotes in a pattern keep a word together")
  })

  it("a word the gate cannot know only matches inside the trailing *", () => {
    const compiled = compile("cat *") as never
    const alsoFixed = compile("cat * x") as never
    assert.isTrue(
      matches(compiled, [
        { text: "cat", known: true },
        { text: "$f", known: false }
      ])
    )
    assert.isFalse(
      matches(alsoFixed, [
        { text: "cat", known: true },
        { text: "$f", known: false },
        { text: "x", known: true }
      ])
    )
  })

  it("negation and braces are not pattern syntax", () => {
    assert.isFalse(test("!rm", "ls"))
    assert.isFalse(test("{ls,rm}", "rm"))
  })

  it("refuses a pattern with an unclosed quote", () => {
    assert.strictEqual(compile("ls 'x"), "unclosed ' quote")
  })
})
