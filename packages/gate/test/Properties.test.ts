import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { decide } from "../src/Decide.js"
import type { Action, CallerKind, Mode, Policy, Rule } from "../src/Policy.js"
import type { Caller } from "../src/Request.js"

const ACTIONS: ReadonlyArray<Action> = ["allow", "deny", "ask"]
const KINDS: ReadonlyArray<CallerKind> = ["key", "user", "guest"]
const PATTERNS = [
  "*",
  "git *",
  "git status",
  "ls *",
  "rm *",
  "rm -rf *",
  "uptime",
  "cat /var/log/*",
  "sh *",
  "sudo *",
  "env *",
  "echo *",
  "id",
  "* *"
]

const arbRule = (i: number): fc.Arbitrary<Rule> =>
  fc
    .record({
      action: fc.constantFrom(...ACTIONS),
      callers: fc.subarray([...KINDS]),
      modes: fc.subarray<Mode>(["exec", "shell", "attach"]),
      commands: fc.oneof(fc.constant([] as Array<string>), fc.subarray(PATTERNS, { minLength: 1 }))
    })
    .map((r) => ({
      ...r,
      source: `p.yaml:${i + 2}`,
      users: [],
      shares: [],
      modes: r.commands.length > 0 ? r.modes.filter((m) => m === "exec") : r.modes
    }))

const arbPolicy: fc.Arbitrary<Policy> = fc
  .tuple(
    fc.record({
      key: fc.constantFrom(...ACTIONS),
      user: fc.constantFrom(...ACTIONS),
      guest: fc.constantFrom(...ACTIONS)
    }),
    fc.integer({ min: 0, max: 8 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbRule(i))))
  )
  .map(([defaults, rules]) => ({ file: "p.yaml", defaults, rules }))

const arbCaller: fc.Arbitrary<Caller> = fc.constantFrom<Caller>(
  { kind: "key" },
  { kind: "user", user: "a@example.com" },
  { kind: "guest", shareId: "shr_1" }
)

const WORDS = [
  "git",
  "status",
  "log",
  "ls",
  "-la",
  "/tmp",
  "rm",
  "-rf",
  "~",
  "uptime",
  "cat",
  "/var/log/syslog",
  "id",
  "sudo",
  "echo",
  "a b",
  "*"
]
const arbArgv = fc.array(fc.constantFrom(...WORDS), { minLength: 1, maxLength: 5 })

/** Spellings of the floor, dressed in wrappers and shell syntax. */
const FLOOR_CORES = [
  "rm -rf /",
  "rm -fr /",
  "rm -r -f /*",
  "rm --recursive --force /",
  "rm -rf --no-preserve-root /",
  "mkfs.ext4 /dev/sda1",
  "dd if=/dev/zero of=/dev/sda",
  "echo x > /dev/nvme0n1",
  "chmod -R 777 /",
  ":(){ :|:& };:",
  "boom(){ boom|boom & }; boom"
]
const WRAPPERS = ["", "sudo ", "sudo -u root ", "env A=1 ", "nice -n 10 ", "timeout 9 ", "nohup ", "command ", "exec "]
const DRESSES = [
  (c: string) => c,
  (c: string) => `uptime; ${c}`,
  (c: string) => `uptime && ${c}`,
  (c: string) => `echo "$(${c})"`,
  (c: string) => `(${c})`,
  (c: string) => `sh -c '${c}'`,
  (c: string) => `bash -lc '${c}' x`
]
const arbFloorLine = fc
  .tuple(fc.constantFrom(...FLOOR_CORES), fc.constantFrom(...WRAPPERS), fc.constantFrom(...DRESSES))
  .map(([core, wrapper, dress]) => dress(core.includes("(){") || core.includes(">") ? core : wrapper + core))

const OPERATORS = [
  (a: string, d: string) => `${a}; ${d}`,
  (a: string, d: string) => `${a} && ${d}`,
  (a: string, d: string) => `${a} || ${d}`,
  (a: string, d: string) => `${a} | ${d}`,
  (a: string, d: string) => `${a} & ${d}`,
  (a: string, d: string) => `${a}\n${d}`,
  (a: string, d: string) => `${a} $(${d})`,
  (a: string, d: string) => `${a} "$(${d})"`,
  (a: string, d: string) => `${a} \`${d}\``,
  (a: string, d: string) => `${a}; (${d})`,
  (a: string, d: string) => `(${a}; ${d})`,
  (a: string, d: string) => `${a} <(${d})`,
  (a: string, d: string) => `f() { ${d}; }; ${a}`
]
/** The operators that make the second command part of the first one's arguments. */
const EMBEDS = new Set([OPERATORS[6], OPERATORS[7], OPERATORS[8], OPERATORS[11]])
const ALLOWED = ["git status", "git log --oneline", "ls -la /tmp", "uptime", "echo hello"]
const DENIED = ["id", "rm -rf ~", "curl http://x | sh", "cat /etc/shadow", "python3 -c 'print(1)'", "nc -l 4444"]
const allowList = {
  file: "p.yaml",
  defaults: { key: "allow", user: "allow", guest: "deny" },
  rules: [
    {
      action: "allow",
      source: "p.yaml:3",
      callers: ["guest"],
      users: [],
      shares: [],
      modes: [],
      commands: ["git *", "ls *", "uptime", "echo *"]
    }
  ]
} satisfies Policy

const TOKENS = [
  "git",
  "status",
  "id",
  "rm",
  "-rf",
  "/",
  "~",
  ";",
  "&&",
  "||",
  "|",
  "&",
  "\n",
  "$(",
  ")",
  "`",
  "(",
  "{",
  "}",
  "'",
  '"',
  "$x",
  "${a[i]}",
  "$((1+x))",
  "[[",
  "]]",
  "-eq",
  "<<EOF\nhi $(id)\nEOF\n",
  "<<<",
  ">",
  "2>&1",
  "<(",
  "f()",
  "function g",
  "eval",
  "sh -c",
  "bash -lc",
  "sudo",
  "env A=1",
  "for i in *; do",
  "done",
  "case $x in a)",
  ";;",
  "esac",
  "if",
  "then",
  "fi",
  "coproc",
  "select s in a; do",
  "time",
  "!",
  "x=1",
  "export",
  "declare -a",
  "@(a|b)",
  "\\",
  "é"
]
const arbScript = fc.array(fc.constantFrom(...TOKENS), { maxLength: 14 }).map((t) => t.join(" "))

describe("Properties", () => {
  it.prop(
    "any shell text gets a decision from the reader; text that does not parse is denied",
    { script: arbScript, caller: arbCaller, policy: arbPolicy },
    ({ script, caller, policy }) => {
      const d = decide(policy, { caller, mode: "exec", argv: [script], shell: true })
      assert.oneOf(d.action, ["allow", "deny", "ask"])
      assert.notMatch(d.reason, /the gate could not read/, "the reader handles everything the parser accepts")
      if (d.reason.startsWith("the shell line does not parse"))
        assert.deepStrictEqual([d.action, d.rule], ["deny", "floor"])
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "a deny rule for the command wins over every allow, wherever it sits",
    { policy: arbPolicy, caller: arbCaller, argv: arbArgv, at: fc.nat() },
    ({ policy, caller, argv, at }) => {
      const deny: Rule = {
        action: "deny",
        source: "p.yaml:99",
        callers: [caller.kind],
        users: [],
        shares: [],
        modes: ["exec"],
        commands: ["*"]
      }
      const rules = [...policy.rules]
      rules.splice(at % (rules.length + 1), 0, deny)
      const d = decide({ ...policy, rules }, { caller, mode: "exec", argv })
      assert.strictEqual(d.action, "deny")
    }
  )

  it.prop(
    "a deny by a rule stays a deny whatever allow rules are added",
    { policy: arbPolicy, extra: fc.array(arbRule(50), { maxLength: 4 }), caller: arbCaller, argv: arbArgv },
    ({ policy, extra, caller, argv }) => {
      const before = decide(policy, { caller, mode: "exec", argv })
      if (before.action !== "deny" || before.rule === "default") return
      const allows = extra.map((r) => ({ ...r, action: "allow" as const }))
      assert.strictEqual(
        decide({ ...policy, rules: [...allows, ...policy.rules, ...allows] }, { caller, mode: "exec", argv }).action,
        "deny"
      )
    }
  )

  it.prop(
    "the floor is never opened by any rule set",
    { policy: arbPolicy, caller: arbCaller, script: arbFloorLine, asArgv: fc.boolean() },
    ({ policy, caller, script, asArgv }) => {
      const request = asArgv
        ? { caller, mode: "exec" as const, argv: ["bash", "-c", script] }
        : { caller, mode: "exec" as const, argv: [script], shell: true }
      for (const p of [policy, undefined]) {
        const d = decide(p, request)
        assert.deepStrictEqual([d.action, d.rule], ["deny", "floor"], script)
      }
    }
  )

  it.prop(
    "an allowed command joined with a denied one by any shell operator is denied",
    {
      a: fc.constantFrom(...ALLOWED),
      d: fc.constantFrom(...DENIED),
      op: fc.constantFrom(...OPERATORS),
      swap: fc.boolean(),
      viaSh: fc.boolean()
    },
    ({ a, d, op, swap, viaSh }) => {
      const guest: Caller = { kind: "guest", shareId: "shr_1" }
      const script = swap ? op(d, a) : op(a, d)
      const request = viaSh
        ? { caller: guest, mode: "exec" as const, argv: ["sh", "-c", script] }
        : { caller: guest, mode: "exec" as const, argv: [script], shell: true }
      assert.strictEqual(decide(allowList, { caller: guest, mode: "exec", argv: [a], shell: true }).action, "allow", a)
      assert.strictEqual(decide(allowList, request).action, "deny", script)
    }
  )

  it.prop(
    "under any rule set: a line joining a command it allows and one it denies, by any operator, is denied",
    {
      policy: arbPolicy,
      caller: arbCaller,
      a: fc.constantFrom(...ALLOWED),
      d: fc.constantFrom(...DENIED),
      op: fc.constantFrom(...OPERATORS),
      swap: fc.boolean(),
      viaSh: fc.boolean(),
      at: fc.tuple(fc.nat(), fc.nat())
    },
    ({ policy, caller, a, d, op, swap, viaSh, at }) => {
      // The random rules, plus one allowing a's program and one denying d's, anywhere among them.
      const byProgram = (action: Action, command: string, line: number): Rule => ({
        action,
        source: `p.yaml:${line}`,
        callers: [caller.kind],
        users: [],
        shares: [],
        modes: ["exec"],
        commands: [`${command.split(" ")[0]} *`]
      })
      const rules = [...policy.rules]
      rules.splice(at[0] % (rules.length + 1), 0, byProgram("allow", a, 98))
      rules.splice(at[1] % (rules.length + 1), 0, byProgram("deny", d, 99))
      const p = { ...policy, rules }
      const alone = (command: string) => decide(p, { caller, mode: "exec", argv: [command], shell: true }).action
      assert.strictEqual(alone(d), "deny", d)
      // A random rule may deny or ask for a too; then there is no allowed command to join.
      fc.pre(alone(a) === "allow")
      // Operators that put one command inside the other's arguments (`a $(d)`, `a <(d)`) keep the denied one
      // inside: as the outer command it would be another command (`git status <(…)` is not `git status`).
      const script = swap && !EMBEDS.has(op) ? op(d, a) : op(a, d)
      const request = viaSh
        ? { caller, mode: "exec" as const, argv: ["sh", "-c", script] }
        : { caller, mode: "exec" as const, argv: [script], shell: true }
      assert.strictEqual(decide(p, request).action, "deny", script)
    },
    { fastCheck: { numRuns: 300 } }
  )
})
