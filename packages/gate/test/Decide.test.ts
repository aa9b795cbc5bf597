import { assert, describe, it } from "@effect/vitest"
import { decide, explain } from "../src/Decide.js"
import { ISSUE_EXAMPLE, exec, guest, key, line, policyOf } from "./fixtures.js"

const issue = policyOf(ISSUE_EXAMPLE)
const gitOnly = policyOf(`rules:
  - action: allow
    caller: guest
    command: ["git *", "uptime", "ls *", "echo *", "cat *"]
`)
const wideGuest = policyOf(`rules:
  - action: allow
    caller: guest
`)

describe("Decide: the issue's example", () => {
  it("allows the listed commands for guests and refuses the rest by default", () => {
    const up = exec(issue, guest, "uptime")
    assert.deepStrictEqual(up, {
      action: "allow",
      rule: "/etc/cmdop/permissions.yaml:7",
      reason: 'allow by /etc/cmdop/permissions.yaml:7 ("uptime")',
      configured: true
    })
    assert.strictEqual(exec(issue, guest, "ls", "-la", "/tmp").action, "allow")
    const shadow = exec(issue, guest, "cat", "/etc/shadow")
    assert.deepStrictEqual([shadow.action, shadow.rule], ["deny", "default"])
    assert.strictEqual(shadow.reason, "cat /etc/shadow: no rule matches: default for guest is deny")
  })

  it("sh -c 'uptime; id' is refused: id is not allowed on its own", () => {
    const d = exec(issue, guest, "sh", "-c", "uptime; id")
    assert.deepStrictEqual([d.action, d.rule], ["deny", "default"])
    assert.match(d.reason, /^id: /)
    assert.strictEqual(
      exec(issue, guest, "sh", "-c", "uptime").action,
      "allow",
      "a shell running only allowed commands"
    )
    assert.strictEqual(exec(issue, guest, "bash", "-lc", "uptime && ls /").action, "allow")
  })

  it("ask rules ask; deny > ask > allow", () => {
    const d = line(issue, guest, "systemctl restart nginx")
    assert.deepStrictEqual([d.action, d.rule], ["ask", "/etc/cmdop/permissions.yaml:11"])
    assert.strictEqual(line(issue, guest, "uptime; systemctl restart nginx").action, "ask")
    assert.strictEqual(line(issue, guest, "systemctl restart nginx; id").action, "deny")
    const layered = policyOf(`rules:
  - {action: allow, caller: guest, command: "git *"}
  - {action: ask, caller: guest, command: "git push *"}
  - {action: deny, caller: guest, command: "git push --force *"}
`)
    assert.strictEqual(exec(layered, guest, "git", "log").action, "allow")
    assert.strictEqual(exec(layered, guest, "git", "push", "origin").action, "ask")
    assert.strictEqual(exec(layered, guest, "git", "push", "--force", "origin").action, "deny")
  })

  it("users are matched by email glob; shells and attach are decided as a whole", () => {
    const contractor = { kind: "user" as const, user: "ann@contractor.example" }
    const staff = { kind: "user" as const, user: "bob@example.com" }
    assert.deepStrictEqual(
      [
        decide(issue, { caller: contractor, mode: "shell" }).action,
        decide(issue, { caller: contractor, mode: "shell" }).rule
      ],
      ["deny", "/etc/cmdop/permissions.yaml:14"]
    )
    assert.strictEqual(decide(issue, { caller: staff, mode: "shell" }).action, "allow")
    assert.strictEqual(decide(issue, { caller: contractor, mode: "exec", argv: ["id"] }).action, "allow")
    assert.strictEqual(
      decide(issue, { caller: guest, mode: "shell" }).action,
      "deny",
      "no rule without command for guests"
    )
    assert.strictEqual(decide(wideGuest, { caller: guest, mode: "shell" }).action, "allow")
    assert.strictEqual(decide(issue, { caller: key, mode: "attach" }).action, "allow")
  })

  it("a share id narrows a rule to one link", () => {
    const policy = policyOf("rules:\n  - {action: allow, share: shr_vendor, command: 'uptime'}\n")
    assert.strictEqual(exec(policy, { kind: "guest", shareId: "shr_vendor" }, "uptime").action, "allow")
    assert.strictEqual(exec(policy, { kind: "guest", shareId: "shr_other" }, "uptime").action, "deny")
  })

  it("with no file: keys and users allowed, guests exec, shell and attach (the relay scopes them), and it says no gate", () => {
    const d = exec(undefined, guest, "cat", "/etc/shadow")
    assert.deepStrictEqual([d.action, d.rule, d.configured], ["allow", "default", false])
    assert.match(d.reason, /no gate is configured/)
    assert.strictEqual(decide(undefined, { caller: guest, mode: "shell" }).action, "allow")
    assert.strictEqual(decide(undefined, { caller: guest, mode: "attach" }).action, "allow")
    assert.strictEqual(decide(undefined, { caller: key, mode: "attach" }).action, "allow")
    assert.strictEqual(exec(undefined, key, "rm", "-rf", "/").rule, "floor", "the floor holds without a file")
  })
})

describe("Decide: commands are matched on what really runs", () => {
  it("git status; rm -rf ~ under a rule allowing git * is denied", () => {
    const d = line(gitOnly, guest, "git status; rm -rf ~")
    assert.deepStrictEqual([d.action, d.rule], ["deny", "default"])
    assert.match(d.reason, /^rm -rf ~: /)
    assert.strictEqual(exec(gitOnly, guest, "bash", "-c", "git status; rm -rf ~").action, "deny")
    assert.strictEqual(
      exec(gitOnly, guest, "git", "status;", "rm", "-rf", "~").action,
      "allow",
      "argv: `;` is just an argument to git"
    )
  })

  it("every simple command is decided: operators, substitutions, subshells, functions, here-docs", () => {
    const denied = [
      "git status && id",
      "git status || id",
      "git status | id",
      "git status & id",
      "git status\nid",
      "git log $(id)",
      "git log `id`",
      'git log "$(id)"',
      "(id)",
      "{ id; }",
      "f() { id; }",
      "if true; then id; fi",
      "for x in a; do id; done",
      "while id; do :; done",
      "case x in x) id;; esac",
      "cat <(id)",
      "cat <<EOF\n$(id)\nEOF",
      "x=$(id) git status",
      "git status > $(id)",
      "! id",
      "time id",
      "coproc id"
    ]
    for (const script of denied) assert.strictEqual(line(gitOnly, guest, script).action, "deny", script)
    const allowed = [
      "git status && git log",
      "git log | cat",
      "(git status)",
      "cat <<'EOF'\n$(id)\nEOF",
      "echo 'a; id'",
      "echo a\\;id"
    ]
    for (const script of allowed) assert.strictEqual(line(gitOnly, guest, script).action, "allow", script)
  })

  it("constructs the gate cannot see through need a rule without command", () => {
    const hidden = [
      "eval git status",
      "source ./x.sh",
      ". ./x.sh",
      "$CMD status",
      "$(echo git) status",
      "`echo git` status",
      "/usr/bin/gi? status",
      "bash <<EOF\ngit status\nEOF",
      "bash <<< 'git status'",
      "echo git status | sh",
      'sh -c "$X"',
      "sh script.sh",
      "alias ls=id",
      "trap id EXIT",
      "PATH=/tmp/evil git status",
      "LD_PRELOAD=/tmp/x.so git status",
      "export PATH=/tmp",
      "git log > /tmp/out",
      "cat < /etc/shadow",
      "sudo -s",
      "bash --rcfile /tmp/x -ic 'git status'",
      "command eval git status",
      "\\eval git status",
      "e''val git status",
      "$'\\x65val' git status",
      'set -- id; "$@"',
      "sudo /usr/bin/gi? status",
      "nice nice nice nice nice git status",
      "env -S 'git status'",
      "echo $((x))",
      "echo ${a[$i]}",
      "echo ${x@P}"
    ]
    for (const script of hidden) {
      const d = line(gitOnly, guest, script)
      assert.strictEqual(d.action, "deny", script)
      const e = explain(gitOnly, { caller: guest, mode: "exec", argv: [script], shell: true })
      assert.isTrue(
        e.units.some((u) => u.unit._tag === "Hidden"),
        `${script} has a part the gate cannot read`
      )
      assert.strictEqual(line(wideGuest, guest, script).action, "allow", `${script} under a rule without command`)
    }
  })

  it("argv that is itself a shell is read, through wrappers too", () => {
    for (const argv of [
      ["sh", "-c", "git status; id"],
      ["/bin/sh", "-c", "git status; id"],
      ["bash", "-lc", "git status; id"],
      ["bash", "-o", "pipefail", "-c", "git status | id"],
      ["env", "FOO=1", "sh", "-c", "git status; id"],
      ["env", "sh", "-c", "sh -c 'git status; id'"]
    ])
      assert.strictEqual(
        exec(policyOf("rules:\n  - {action: allow, caller: guest, command: ['git *', 'env *']}\n"), guest, ...argv)
          .action,
        "deny",
        argv.join(" ")
      )
    assert.strictEqual(exec(gitOnly, guest, "sh", "-c", "$0", "id").action, "deny")
  })

  it("reads non-ASCII words and quotes as the shell does", () => {
    const policy = policyOf(
      "rules:\n  - {action: allow, caller: guest, command: ['echo héllo wörld', 'echo \"a b\"']}\n"
    )
    assert.strictEqual(line(policy, guest, "echo héllo 'wörld'").action, "allow")
    assert.strictEqual(line(policy, guest, 'echo "a b"').action, "allow")
    assert.strictEqual(line(policy, guest, "echo a\\ b").action, "allow")
    assert.strictEqual(line(policy, guest, "echo a b").action, "deny", "two words are not the one word `a b`")
  })

  it("a caller-set environment that can change what runs needs a rule without command", () => {
    const d = decide(gitOnly, { caller: guest, mode: "exec", argv: ["git", "status"], env: { PATH: "/tmp/evil" } })
    assert.strictEqual(d.action, "deny")
    assert.strictEqual(
      decide(gitOnly, { caller: guest, mode: "exec", argv: ["git", "status"], env: { LANG: "C" } }).action,
      "allow"
    )
    assert.strictEqual(
      decide(gitOnly, { caller: guest, mode: "exec", argv: ["git", "status"], env: { SHELL: "/tmp/x" }, shell: true })
        .action,
      "deny"
    )
  })

  it("a shell line that does not parse is a deny with a clear reason", () => {
    const d = line(wideGuest, guest, "echo (")
    assert.deepStrictEqual([d.action, d.rule], ["deny", "floor"])
    assert.match(d.reason, /^the shell line does not parse: /)
    assert.strictEqual(line(wideGuest, guest, "echo 'unclosed").action, "deny")
    assert.strictEqual(exec(wideGuest, guest).action, "deny")
  })

  it("with default allow, hidden code passes only when the file denies no commands of that caller", () => {
    const denyList = policyOf("default: {guest: allow}\nrules:\n  - {action: deny, caller: guest, command: 'rm *'}\n")
    assert.strictEqual(line(denyList, guest, "rm -rf ~").action, "deny")
    const hidden = line(denyList, guest, "eval 'rm -rf ~'")
    assert.strictEqual(hidden.action, "deny")
    assert.match(hidden.reason, /denies some commands of this caller/)
    assert.strictEqual(line(policyOf("default: {key: allow}\n"), key, "eval make > build.log").action, "allow")
  })

  it("an extended glob is a part the gate cannot read: zsh, the agent's $SHELL on many machines, runs code in it", () => {
    for (const script of ["ls *(e:id:)", "ls ?(e:'id':)", "echo +(x) @(y) !(z)"]) {
      const d = line(gitOnly, guest, script)
      assert.deepStrictEqual([d.action, d.rule], ["deny", "default"], script)
      assert.match(d.reason, /extended glob/, script)
    }
    assert.strictEqual(line(gitOnly, guest, "ls *.log").action, "allow")
    assert.strictEqual(line(wideGuest, guest, "ls *(e:id:)").action, "allow")
  })

  it("a deny or ask rule also catches its command behind a wrapper or by path; allow rules match as written", () => {
    const denyList = policyOf(`default: {key: allow}
rules:
  - {action: deny, caller: key, command: ["rm *", "id"]}
  - {action: ask, caller: key, command: "systemctl restart *"}
  - {action: allow, caller: key, command: "sudo systemctl restart nginx"}
`)
    for (const argv of [
      ["/bin/rm", "-rf", "/srv/app"],
      ["./id"],
      ["/usr/bin/../bin/id"],
      ["env", "id"],
      ["env", "-i", "FOO=1", "/usr/bin/id"],
      ["nice", "-n", "5", "rm", "-rf", "/srv/app"],
      ["sudo", "-u", "root", "id"],
      ["timeout", "5", "nohup", "id"],
      ["find", ".", "-exec", "rm", "{}", ";"]
    ])
      assert.strictEqual(exec(denyList, key, ...argv).action, "deny", JSON.stringify(argv))
    for (const script of ["command id", "exec id", "exec -a x /bin/rm -rf /srv/app", "xargs -0 rm < /dev/null"])
      assert.strictEqual(line(denyList, key, script).action, "deny", script)
    assert.strictEqual(exec(denyList, key, "sudo", "systemctl", "restart", "nginx").action, "ask")
    assert.strictEqual(exec(denyList, key, "/usr/bin/systemctl", "restart", "app").action, "ask")
    assert.strictEqual(exec(denyList, key, "env", "uptime").action, "allow")
    assert.strictEqual(exec(denyList, key, "/usr/bin/idle").action, "allow")
    assert.strictEqual(exec(gitOnly, guest, "/usr/bin/git", "status").action, "deny", "allow rules match as written")
    assert.strictEqual(exec(gitOnly, guest, "env", "git", "status").action, "deny", "allow rules match as written")
  })
})
