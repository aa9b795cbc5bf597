import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { parsePolicy } from "../src/PolicyFile.js"
import { ISSUE_EXAMPLE, policyOf } from "./fixtures.js"

const errorOf = (text: string): string => {
  const parsed = parsePolicy(text, "p.yaml")
  assert.isTrue(Either.isLeft(parsed), "expected the file to be refused")
  return Either.isLeft(parsed) ? parsed.left.message : ""
}

describe("PolicyFile", () => {
  it("reads the issue's example, keeping each rule's file:line", () => {
    const policy = policyOf(ISSUE_EXAMPLE, "/home/a/.cmdop/permissions.yaml")
    assert.deepStrictEqual(policy.defaults, { key: "allow", user: "allow", guest: "deny" })
    assert.deepStrictEqual(
      policy.rules.map((r) => r.source),
      ["/home/a/.cmdop/permissions.yaml:7", "/home/a/.cmdop/permissions.yaml:11", "/home/a/.cmdop/permissions.yaml:14"]
    )
    assert.deepStrictEqual(policy.rules[0]!.commands, ["uptime", "ls *", "journalctl -u nginx *"])
    assert.deepStrictEqual(policy.rules[1]!.commands, ["systemctl restart *"])
    assert.deepStrictEqual(policy.rules[2]!.callers, ["user"], "a user glob implies caller user")
    assert.deepStrictEqual(policy.rules[2]!.modes, ["shell"])
  })

  it("a file of only comments is the file defaults with no rules; an empty one is refused (a write in progress)", () => {
    const policy = policyOf("# no rules yet\n")
    assert.deepStrictEqual(policy.defaults, { key: "allow", user: "allow", guest: "deny" })
    assert.strictEqual(policy.rules.length, 0)
    for (const text of ["", "  \n\t\n"]) assert.include(errorOf(text), "p.yaml: the file is empty")
  })

  it("a share id implies caller guest; lists work for caller and mode", () => {
    const policy = policyOf(
      "rules:\n  - action: allow\n    share: shr_9\n  - action: deny\n    caller: [key, user]\n    mode: [shell, attach]\n"
    )
    assert.deepStrictEqual(policy.rules[0]!.callers, ["guest"])
    assert.deepStrictEqual(policy.rules[1]!.callers, ["key", "user"])
    assert.deepStrictEqual(policy.rules[1]!.modes, ["shell", "attach"])
  })

  it("errors name the file, the line and what is wrong, with a hint, on one line", () => {
    assert.strictEqual(
      errorOf("rules:\n  - action: allw\n"),
      'p.yaml:2: rules[0].action: "allw" is not valid (hint: action is one of allow, deny, ask)'
    )
    assert.strictEqual(
      errorOf("rules:\n  - action: allow\n    comand: ls\n"),
      "p.yaml:3: rules[0].comand: unknown key (hint: rule keys are action, caller, user, share, mode, command, note)"
    )
    assert.strictEqual(
      errorOf("default:\n  key: allow\n  guest: maybe\n"),
      'p.yaml:3: default.guest: "maybe" is not valid (hint: default maps key, user and guest to allow, deny or ask)'
    )
    assert.strictEqual(
      errorOf("rules:\n  - caller: guest\n"),
      "p.yaml:2: rules[0].action: is missing (hint: action is one of allow, deny, ask)"
    )
    assert.match(
      errorOf("rules:\n  - action: allow\n    mode: shell\n    command: ls\n"),
      /^p\.yaml:4: `command` only applies to mode exec/
    )
    assert.match(
      errorOf('rules:\n  - action: allow\n    command: "ls \'x"\n'),
      /^p\.yaml:3: command "ls 'x": unclosed ' quote/
    )
    assert.match(
      errorOf("rules:\n  - action: allow\n    caller: key\n    user: a@b\n"),
      /^p\.yaml:4: `user` only applies to caller user/
    )
    assert.match(errorOf("rules: [\n"), /^p\.yaml:\d+: not valid YAML: .*\(hint: check indentation and quoting\)$/)
    assert.match(
      errorOf("rules:\n  - action: allow\nrules: []\n"),
      /^p\.yaml:3: not valid YAML: Map keys must be unique/
    )
    assert.match(
      errorOf("rulez: []\n"),
      /^p\.yaml:1: rulez: unknown key \(hint: top-level keys are default and rules\)$/
    )
    for (const text of ["rules:\n  - action: allw\n", "rules: [\n", "rulez: 1\n"])
      assert.notInclude(errorOf(text), "\n")
  })
})
