import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { decide, explain } from "../src/Decide.js"
import { render } from "../src/Explain.js"
import type { Caller } from "../src/Request.js"
import { ISSUE_EXAMPLE, policyOf } from "./fixtures.js"

const doc = fs.readFileSync(fileURLToPath(new URL("../../../docs/permissions.md", import.meta.url)), "utf8")
const readme = fs.readFileSync(fileURLToPath(new URL("../../../README.md", import.meta.url)), "utf8")

/** The first yaml block after a heading of docs/permissions.md. */
const exampleAfter = (heading: string) => {
  const from = doc.indexOf(heading)
  assert.isAtLeast(from, 0, heading)
  const block = /```yaml\n([\s\S]*?)```/.exec(doc.slice(from))
  return policyOf(block![1]!, "docs.yaml")
}

const guest: Caller = { kind: "guest", shareId: "shr_vendor" }
const key: Caller = { kind: "key" }
const run = (policy: ReturnType<typeof policyOf>, caller: Caller, script: string) =>
  decide(policy, { caller, mode: "exec", argv: [script], shell: true }).action

describe("docs/permissions.md examples say what they do", () => {
  it("the file section is the issue's example", () => {
    assert.deepStrictEqual(
      exampleAfter("## The file").rules.map((r) => [r.action, r.commands]),
      policyOf(ISSUE_EXAMPLE).rules.map((r) => [r.action, r.commands])
    )
  })

  it("vendor support", () => {
    const vendor = exampleAfter("## Example: vendor support")
    assert.strictEqual(run(vendor, guest, "journalctl -u nginx --since today"), "allow")
    assert.strictEqual(run(vendor, guest, "tail -n 100 /var/log/nginx/error.log"), "allow")
    assert.strictEqual(run(vendor, guest, "journalctl -u nginx --since today | grep 502"), "deny")
    assert.strictEqual(run(vendor, guest, "cat /etc/shadow"), "deny")
    assert.strictEqual(decide(vendor, { caller: guest, mode: "exec", argv: ["sh", "-c", "uptime; id"] }).action, "deny")
    assert.strictEqual(run(vendor, guest, "systemctl restart nginx"), "ask")
    assert.strictEqual(decide(vendor, { caller: guest, mode: "shell" }).action, "deny")
  })

  it("CI", () => {
    const ci = exampleAfter("## Example: CI")
    assert.strictEqual(run(ci, key, "/srv/app/bin/deploy v1.2.3 --canary"), "allow")
    assert.strictEqual(run(ci, key, "systemctl restart app"), "allow")
    assert.strictEqual(run(ci, key, "ls /srv"), "deny")
    assert.strictEqual(
      decide(ci, { caller: { kind: "user", user: "ann@contractor.example" }, mode: "shell" }).action,
      "deny"
    )
    assert.strictEqual(decide(ci, { caller: { kind: "user", user: "bob@example.com" }, mode: "shell" }).action, "allow")
    const wider = policyOf(
      `${doc.slice(doc.indexOf("## Example: CI")).split("```yaml\n")[1]!.split("```")[0]}  - {action: allow, caller: key, mode: exec}\n`
    )
    assert.strictEqual(run(wider, key, "make > build.log"), "allow")
    assert.strictEqual(run(wider, key, "rm -rf /srv/app/releases/old"), "deny")
  })

  it("testing a policy: the explain sample is what explain prints for the file section's policy", () => {
    const section = doc.slice(doc.indexOf("## Testing a policy"))
    const sample = /```\n(request:[\s\S]*?)```/.exec(section)![1]!
    const request = {
      caller: { kind: "guest", shareId: "shr_1", name: "share shr_1" },
      mode: "exec",
      argv: ["uptime; ls -la | systemctl restart nginx; id"],
      shell: true
    } as const
    const printed = render(explain(exampleAfter("## The file"), request)).replaceAll(
      "docs.yaml",
      "/etc/cmdop/permissions.yaml"
    )
    // The sample shows the start of the floor's list, then "…".
    const shown = sample.trimEnd().replace(/\n {2}…$/, "")
    assert.isTrue(printed.startsWith(shown), `docs:\n${shown}\n\nexplain:\n${printed}`)
  })
})

describe("README's gate section says what it does", () => {
  it("the vendor-support link: looks at nginx, restarts it only when approved, nothing else", () => {
    const section = readme.slice(readme.indexOf("### The machine's gate"))
    const vendor = policyOf(/```yaml\n([\s\S]*?)```/.exec(section)![1]!, "readme.yaml")
    assert.strictEqual(run(vendor, guest, "uptime"), "allow")
    assert.strictEqual(run(vendor, guest, "journalctl -u nginx --since today"), "allow")
    assert.strictEqual(run(vendor, guest, "systemctl status nginx"), "allow")
    assert.strictEqual(run(vendor, guest, "systemctl restart nginx"), "ask")
    assert.strictEqual(run(vendor, guest, "uptime; id"), "deny")
    assert.strictEqual(run(vendor, guest, "cat /etc/shadow"), "deny")
    assert.strictEqual(decide(vendor, { caller: guest, mode: "shell" }).action, "deny")
    assert.strictEqual(run(vendor, key, "id"), "allow")
  })
})
