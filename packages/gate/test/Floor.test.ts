import { assert, describe, it } from "@effect/vitest"
import { explain } from "../src/Decide.js"
import { render } from "../src/Explain.js"
import { FLOOR } from "../src/Floor.js"
import { exec, guest, key, line, policyOf } from "./fixtures.js"

/** Everything allowed for everyone, by rules without command and with command "*": the floor still holds. */
const openPolicy = policyOf(`default: {key: allow, user: allow, guest: allow}
rules:
  - {action: allow}
  - {action: allow, command: "*"}
`)

const floorOf = (script: string): string | undefined => {
  const d = line(openPolicy, key, script)
  return d.rule === "floor" && d.action === "deny" ? d.reason : undefined
}

describe("Floor", () => {
  it("rm -rf / in its spellings, as argv and as shell lines, through wrappers", () => {
    const spellings = [
      "rm -rf /",
      "rm -fr /",
      "rm -r -f /",
      "rm -Rf /",
      "rm -rf /*",
      "rm -rf //",
      "rm -rf /.",
      "rm --recursive --force /",
      "rm -r --no-preserve-root /",
      "rm --no-preserve-root -rf /tmp/x",
      "rm -rf -- /",
      'rm -rf "/"',
      "sudo rm -rf /",
      "sudo -u root rm -rf /",
      "env X=1 nice -n 5 rm -rf /",
      "timeout 5 rm -rf /",
      "xargs rm -rf /",
      "echo ok; rm -rf /",
      "echo $(rm -rf /)",
      "sh -c 'rm -rf /'",
      "find / -delete"
    ]
    for (const s of spellings) assert.isDefined(floorOf(s), s)
    assert.strictEqual(exec(openPolicy, key, "/bin/rm", "-rf", "/").rule, "floor")
    assert.strictEqual(exec(openPolicy, key, "rm", "-rf", "/*").rule, "floor")
  })

  it("filesystems and raw disks", () => {
    for (const s of [
      "mkfs.ext4 /dev/sda1",
      "mkfs -t xfs /dev/nvme0n1",
      "mke2fs /dev/vdb",
      "wipefs -a /dev/sdb",
      "dd if=/dev/zero of=/dev/sda bs=1M",
      "dd if=x.img of=/dev/nvme0n1",
      "echo x > /dev/sda",
      "cat x.img >> /dev/vda",
      "tee /dev/sdb < x",
      "cp x.img /dev/mmcblk0"
    ])
      assert.isDefined(floorOf(s), s)
  })

  it("a fork bomb under any name, and chmod -R 777 /", () => {
    for (const s of [
      ":(){ :|:& };:",
      "bomb(){ bomb | bomb & }; bomb",
      "f() { f & f; }; f",
      "x(){ x|x; }",
      "chmod -R 777 /",
      "chown -R nobody /"
    ])
      assert.isDefined(floorOf(s), s)
  })

  it("lookalikes are not the floor", () => {
    for (const s of [
      "rm -rf /tmp/build",
      "rm -f /",
      "rm -rf ~",
      "dd if=/dev/sda of=disk.img",
      "echo x > /dev/null",
      "f(){ echo; }; f | f",
      "chmod -R 755 /srv",
      "find /tmp -delete"
    ])
      assert.isUndefined(floorOf(s), s)
  })

  it("explain lists the floor and shows the hit", () => {
    const text = render(explain(openPolicy, { caller: guest, mode: "exec", argv: ["sudo", "rm", "-rf", "/"] }))
    assert.include(text, "decision: DENY (rule: floor)")
    assert.include(text, "floor hits:\n  rm-root: rm -rf /")
    for (const entry of FLOOR) assert.include(text, entry.description)
  })
})
