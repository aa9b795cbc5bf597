import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { AuditRecord, commandDigest, fromDecision, toJsonLine } from "../src/AuditRecord.js"
import { explain } from "../src/Decide.js"
import { checkFile, render, summary, warnings } from "../src/Explain.js"
import { ISSUE_EXAMPLE, guest, policyOf } from "./fixtures.js"

const issue = policyOf(ISSUE_EXAMPLE)

describe("Explain", () => {
  it("renders which rules matched, which decided, each part's verdict, and the floor", () => {
    const text = render(
      explain(issue, {
        caller: guest,
        mode: "exec",
        argv: ["uptime; ls -la | systemctl restart nginx; id"],
        shell: true
      })
    )
    const lines = text.split("\n")
    assert.strictEqual(
      lines[0],
      'request:  guest share shr_1, shell line ["uptime; ls -la | systemctl restart nginx; id"]'
    )
    assert.strictEqual(lines[1], "policy:   /etc/cmdop/permissions.yaml")
    assert.strictEqual(lines[2], "decision: DENY (rule: default)")
    assert.strictEqual(lines[3], "reason:   id: no rule matches: default for guest is deny")
    assert.include(text, '  allow command: uptime\n        allow by /etc/cmdop/permissions.yaml:7 ("uptime")')
    assert.include(
      text,
      '  ask   command: systemctl restart nginx\n        ask by /etc/cmdop/permissions.yaml:11 ("systemctl restart *")'
    )
    assert.include(text, "  deny  command: id\n")
    assert.include(text, "floor (no rule opens these):\n  - rm -r of / or /*")
  })

  it("shows rules that matched but did not decide", () => {
    const policy = policyOf(
      "rules:\n  - {action: allow, caller: guest, command: 'git *'}\n  - {action: deny, caller: guest, command: 'git push *'}\n"
    )
    const text = render(explain(policy, { caller: guest, mode: "exec", argv: ["git", "push", "origin"] }))
    assert.include(text, "decision: DENY (rule: /etc/cmdop/permissions.yaml:3)")
    assert.include(text, 'also matched: allow /etc/cmdop/permissions.yaml:2 ("git *")')
  })

  it("check warns about patterns that let a program run any command", () => {
    const policy = policyOf(
      "rules:\n  - {action: allow, command: ['sudo *', 'env *', 'xargs *', 'bash *', 'find *', 'git *', 'sudo systemctl restart *']}\n  - {action: deny, command: 'sudo *'}\n"
    )
    assert.deepStrictEqual(warnings(policy), [
      '/etc/cmdop/permissions.yaml:2: "sudo *" lets sudo run any command; name the commands instead',
      '/etc/cmdop/permissions.yaml:2: "env *" lets env run any command; name the commands instead',
      '/etc/cmdop/permissions.yaml:2: "xargs *" lets xargs run any command; name the commands instead',
      '/etc/cmdop/permissions.yaml:2: "bash *" lets bash run any command; name the commands instead',
      '/etc/cmdop/permissions.yaml:2: "find *" lets find run any command; name the commands instead'
    ])
  })

  it("says when no gate is configured", () => {
    const text = render(explain(undefined, { caller: guest, mode: "shell" }))
    assert.include(text, "policy:   no permissions.yaml: no gate is configured")
    assert.include(text, "decision: ALLOW (rule: default)")
  })

  it.scopedLive("check reads a file and names the line of a mistake", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gate-check-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const good = path.join(dir, "good.yaml")
      const bad = path.join(dir, "bad.yaml")
      fs.writeFileSync(good, ISSUE_EXAMPLE)
      fs.writeFileSync(bad, "rules:\n  - action: allow\n    mode: ssh\n")
      const policy = yield* checkFile(good).pipe(Effect.provide(NodeFileSystem.layer))
      assert.strictEqual(summary(policy), `${good}: ok, 3 rules; default key allow, user allow, guest deny`)
      const error = yield* checkFile(bad).pipe(Effect.flip, Effect.provide(NodeFileSystem.layer))
      assert.strictEqual(
        error.message,
        `${bad}:3: rules[0].mode: "ssh" is not valid (hint: mode is exec, shell or attach (or a list of them); omit it for any)`
      )
      const missing = yield* checkFile(path.join(dir, "none.yaml")).pipe(
        Effect.flip,
        Effect.provide(NodeFileSystem.layer)
      )
      assert.match(missing.message, /none\.yaml: cannot read: .* \(hint: check the path and its permissions\)$/)
    })
  )
})

describe("AuditRecord", () => {
  it("one JSON line per decision, with the argv digest and the deciding rule", () => {
    const request = {
      caller: { kind: "guest" as const, shareId: "shr_1", name: "vendor link" },
      mode: "exec" as const,
      argv: ["systemctl", "restart", "nginx"]
    }
    const decision = explain(issue, request).decision
    const record = fromDecision(request, decision, Date.UTC(2026, 10, 26, 12, 0, 0), "owner@example.com")
    const json = JSON.parse(toJsonLine(record))
    assert.deepStrictEqual(json, {
      ts: "2026-11-26T12:00:00.000Z",
      decision: "ask",
      caller: "vendor link",
      caller_kind: "guest",
      share_id: "shr_1",
      user: null,
      mode: "exec",
      command_digest: commandDigest(["systemctl", "restart", "nginx"]),
      rule: "/etc/cmdop/permissions.yaml:11",
      approver: "owner@example.com"
    })
    assert.match(json.command_digest, /^[0-9a-f]{64}$/)
    assert.notStrictEqual(commandDigest(["a b"]), commandDigest(["a", "b"]), "word boundaries are part of the digest")
    const decoded = Schema.decodeUnknownEither(AuditRecord)(json)
    assert.isTrue(Either.isRight(decoded))
    assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(AuditRecord)({ ...json, command_digest: "nope" })))
  })
})
