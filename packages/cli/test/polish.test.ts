/**
 * What a stranger trying the product from the README ran into, as the command lines they typed and what they saw:
 * an empty permissions file, stale group help pages, errors of the wrong kind, a dropped machine blamed on the
 * relay, `--json` failures with nothing on stdout, raw parser messages, grpc-js's own log line.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as PolicyStore from "@cmdop/gate/PolicyStore"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import { RelayError } from "@cmdop/domain/RelayError"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import { eventually, eventuallySync } from "@cmdop/test-helpers/Eventually"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as Table from "../src/CommandTable.js"
import { cli, spawnCli } from "./support.js"
import { live, memory } from "./World.js"

const KEY = "ck_live_AAAAaaaa1111bbbb2222cccc3333dddd"

describe("an empty permissions.yaml is never a policy", () => {
  it.scopedLive("$ cmdop agent start --permissions empty.yaml: an error naming the file, nothing started", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const file = path.join(home, "empty.yaml")
      fs.writeFileSync(file, "  \n")
      const r = yield* cli(home, ["agent", "start", "--permissions", file])
      assert.strictEqual(r.code, 255)
      assert.strictEqual(
        r.stderr,
        `cmdop: ${file}: the file is empty, so the agent would run without its rules (hint: write the policy into it (see docs/permissions.md), or remove the file and restart the agent to run without a gate)\n`
      )
      assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "agent.json")), "no agent identity was created")
    })
  )

  it.scopedLive("$ cmdop agent start --permissions missing.yaml: an error naming the file, nothing started", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const file = path.join(home, "missing.yaml")
      const r = yield* cli(home, ["agent", "start", "--permissions", file])
      assert.strictEqual(r.code, 255)
      assert.strictEqual(
        r.stderr,
        `cmdop: ${file}: no such file, so the agent would run without a gate (keys, users and guests allowed) (hint: fix the --permissions path or write the policy there (see docs/permissions.md); drop --permissions to run without a gate)\n`
      )
      assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "agent.json")), "no agent identity was created")
    })
  )

  it.scopedLive("a running agent's file truncated (cp onto it): the last good policy stays, the error is shown", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const file = path.join(home, "permissions.yaml")
      fs.writeFileSync(file, "rules:\n  - action: deny\n    caller: key\n    command: ['rm *']\n")
      const store = yield* PolicyStore.make({ path: file, watch: false, pollInterval: "1 hour" }).pipe(
        Effect.provide(NodeFileSystem.layer)
      )
      assert.strictEqual((yield* store.status).policy?.rules.length, 1)
      fs.writeFileSync(file, "")
      const status = yield* store.reload
      assert.strictEqual(status.policy?.rules.length, 1, "the rule is still in force")
      assert.strictEqual(status.error?.message.startsWith(`${file}: the file is empty`), true, status.error?.message)
    })
  )
})

/** Every command group of the table, as the words before `--help`. */
const groups = (node: Table.Node, path: ReadonlyArray<string> = []): ReadonlyArray<ReadonlyArray<string>> =>
  node.subcommands === undefined ? [] : [path, ...node.subcommands.flatMap((c) => groups(c, [...path, c.name]))]

describe("group help pages list exactly their subcommands", () => {
  it.scopedLive("$ cmdop <group> --help names every subcommand the command table has", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      for (const words of groups(Table.root)) {
        const r = yield* cli(home, [...words, "--help"])
        const what = `cmdop ${words.join(" ")} --help`
        assert.strictEqual(r.code, 0, what)
        let node = Table.root
        for (const w of words) node = Table.child(node, w)!
        for (const sub of node.subcommands ?? []) {
          const line = words.length === 0 ? `\n  ${sub.name}` : `cmdop ${[...words, sub.name].join(" ")}`
          assert.include(r.stdout, line, `${what} does not list ${sub.name}`)
        }
      }
      const agent = yield* cli(home, ["agent", "--help"])
      for (const sub of ["install", "uninstall", "permissions", "approvals", "approve", "deny"])
        assert.include(agent.stdout, `cmdop agent ${sub}`)
      const relay = yield* cli(home, ["relay", "--help"])
      for (const flag of ["--node-id", "--peer-address", "--peer-port", "--cluster-secret"])
        assert.include(relay.stdout, flag)
      const start = yield* cli(home, ["agent", "start", "--help"])
      assert.notInclude(start.stdout, "Flags for every connect subcommand")
      const permissions = yield* cli(home, ["agent", "permissions", "--help"])
      assert.include(permissions.stdout, "cmdop agent permissions check [path]")
      assert.include(permissions.stdout, "cmdop agent permissions explain")
    })
  )
})

describe("errors of the right kind", () => {
  it.scopedLive(
    "$ cmdop connect sessions vm --kill-session nope; connect vm --session nope; connect approve nope",
    () =>
      Effect.gen(function* () {
        const w = yield* memory
        const key = yield* w.create("acme")
        yield* w.agent(key, "vm")
        const kill = yield* w.cli(key, ["sessions", "vm", "--kill-session", "nope"])
        assert.deepStrictEqual(
          [kill.code, kill.stderr],
          [255, "cmdop: no session nope on vm; list them with cmdop connect sessions vm\n"]
        )
        const attach = yield* w.cli(key, ["vm", "--session", "nope"])
        assert.strictEqual(attach.code, 255)
        assert.isTrue(
          attach.stderr.endsWith("\ncmdop: no session nope on vm; list them with cmdop connect sessions vm\n"),
          attach.stderr
        )
        const approve = yield* w.cli(key, ["approve", "nope"])
        assert.deepStrictEqual(
          [approve.code, approve.stderr],
          [255, "cmdop: no pending approval nope; list them with cmdop connect approvals\n"]
        )
      })
  )

  it("a machine dropped during a session is not blamed on the relay (and still reads as UNAVAILABLE)", () => {
    const lost = new RelayError({
      reason: "MachineLost",
      server: "127.0.0.1:50951",
      detail: "machine m2 disconnected during the session"
    })
    const status = ErrorCodec.toStatus(lost)
    assert.strictEqual(status.code, 14)
    const seen = ErrorCodec.fromStatus(status, "127.0.0.1:50951")
    assert.strictEqual(
      seen.message,
      'machine m2 disconnected during the session (its agent stopped or lost its network; the relay is fine); see "cmdop connect --list"'
    )
    assert.notInclude(seen.message, "relay serve")
  })
})

describe("a machine that drops during exec", () => {
  it.scopedLive(
    "$ cmdop connect exec m2 -- sleep 30, and the agent is killed with kill -9: the machine dropped, not the relay",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const key = yield* w.create("acme")
        const home = yield* TempHome.make("cmdop-polish-m2-")
        const reg = yield* Processes.run(home, ["agent", "register", "--hostname", "m2", "-k", key, "-s", w.server])
        assert.strictEqual(reg.code, 0, reg.stderr)
        // The -k key is not stored, so the next step must carry it (docs/cluster.md once said a plain start).
        assert.include(reg.stderr, '"cmdop agent start -k <key>": a key given with -k is not stored')
        const agent = yield* Processes.daemon(
          home,
          ["agent", "start", "--foreground", "-k", key, "-s", w.server],
          /connected to relay/
        )
        const pidFile = path.join(home, "sleep.pid")
        const exec = yield* Effect.fork(
          w.cli(key, ["exec", "m2", "--", "sh", "-c", `echo $$ > ${pidFile}; exec sleep 30`])
        )
        const pid = yield* eventuallySync("the remote command running", () =>
          fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, "utf8").trim()) || undefined : undefined
        )
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            try {
              process.kill(pid, "SIGKILL") // the killed agent's orphan
            } catch {
              // already gone
            }
          })
        )
        yield* agent.stop("SIGKILL")
        const r = yield* Fiber.join(exec)
        assert.strictEqual(r.code, 255)
        assert.strictEqual(
          r.stderr,
          'cmdop: machine m2 disconnected during the session (its agent stopped or lost its network; the relay is fine); see "cmdop connect --list"\n'
        )
      })
  )
})

describe("--json failures are one JSON document on stdout", () => {
  it.scopedLive("$ cmdop connect ws use nope --json; connect --list --json; share nope --json; exec nope --json", () =>
    Effect.gen(function* () {
      const w = yield* memory
      const key = yield* w.create("acme")
      yield* w.agent(key, "vm")
      const checks: ReadonlyArray<readonly [ReadonlyArray<string>, number, string]> = [
        [["share", "nope", "--json"], 255, 'machine "nope" not found'],
        [["--list", "--json", "-k", "ck_live_ZZZZzzzz9999yyyy8888xxxx7777wwww"], 255, "ck_l"],
        [["workspace", "use", "nope", "--json"], 255, "nope"],
        [["workspace", "add", "../evil", "--json"], 2, "invalid workspace name"],
        [["exec", "--json"], 2, "missing <host>"]
      ]
      for (const [args, code, text] of checks) {
        const r = yield* w.cli(key, args)
        const what = `cmdop connect ${args.join(" ")}`
        assert.strictEqual(r.code, code, `${what}: ${r.stderr}`)
        const doc = JSON.parse(r.stdout)
        assert.strictEqual(doc.exit_code, code, what)
        assert.include(doc.error, text, what)
        assert.strictEqual(`cmdop: ${doc.error}\n`, r.stderr, what)
        assert.isTrue(doc.hint === null || doc.error.endsWith(doc.hint), what)
      }
      const exec = yield* w.cli(key, ["exec", "nope", "--json", "--", "true"])
      const doc = JSON.parse(exec.stdout)
      assert.strictEqual(doc.exit_code, 255)
      assert.include(doc.hint, "cmdop connect --list")
    })
  )
})

describe("usage errors are one line with a hint, exit 2", () => {
  it.scopedLive("missing arguments, bad flag values, bad keys and names", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [
          ["connect", "exec"],
          'missing <host> for exec: cmdop connect exec <host> -- <command> [args…]; see "cmdop connect exec --help"'
        ],
        [
          ["connect", "exec", "--", "uptime"],
          'no command after the host "uptime": cmdop connect exec <host> -- <command> [args…] (if "uptime" is the command, the host is missing)'
        ],
        [
          ["agent", "permissions", "explain", "--caller", "bogus", "--", "ls"],
          '--caller "bogus" is not one of key, user, guest for explain; see "cmdop agent permissions explain --help"'
        ],
        [
          ["connect", "share", "list", "--limit", "abc"],
          '--limit "abc" is not a whole number for list; see "cmdop connect share list --help"'
        ],
        [
          ["connect", "key", "set", "garbage"],
          "invalid API key ****: a key looks like ck_live_ (or ck_test_) followed by at least 32 letters and digits, or is a share token; nothing was stored"
        ],
        [
          ["connect", "workspace", "add", "../evil", "-k", KEY],
          `invalid workspace name "../evil": use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`
        ],
        [
          ["connect", "workspace", "use"],
          'missing <name> for use: cmdop connect workspace use <name>; see "cmdop connect workspace use --help"'
        ]
      ]
      for (const [args, line] of cases) {
        const r = yield* cli(home, args)
        assert.deepStrictEqual([r.code, r.stderr], [2, `cmdop: ${line}\n`], `cmdop ${args.join(" ")}`)
      }
    })
  )
})

describe("a busy port", () => {
  it.scopedLive("$ cmdop relay serve --grpc-port <busy>: one line, no grpc-js log line before it", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const server = yield* Effect.acquireRelease(
        Effect.async<net.Server>((resume) => {
          const s = net.createServer()
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.sync(() => s.close())
      )
      const port = (server.address() as net.AddressInfo).port
      const r = yield* spawnCli(home, [
        "relay",
        "serve",
        "--grpc-port",
        String(port),
        "--http-port",
        "0",
        "--data-dir",
        path.join(home, "relay")
      ])
      assert.strictEqual(r.code, 255)
      assert.notInclude(r.stderr, "E No address added")
      assert.match(r.stderr, /^cmdop: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*\n$/)
      // The HTTP port taken instead: the reason is said too (it once printed "(HTTP): ; pick --http-port").
      const http = yield* spawnCli(home, [
        "relay",
        "serve",
        "--grpc-port",
        "0",
        "--http-port",
        String(port),
        "--data-dir",
        path.join(home, "relay")
      ])
      assert.strictEqual(http.code, 255)
      assert.match(
        http.stderr,
        /^cmdop: cannot listen on 127\.0\.0\.1:\d+ \(HTTP\): listen EADDRINUSE.*; pick --http-port\n$/
      )
    })
  )
})

describe("agent register", () => {
  it.scopedLive("says the display name the listings show, and the hostname where it differs", () =>
    Effect.gen(function* () {
      const w = yield* live
      const key = yield* w.create("acme")
      const home = yield* TempHome.make("cmdop-polish-register-")
      const reg = yield* Processes.run(home, [
        "agent",
        "register",
        "--name",
        "m2",
        "--hostname",
        "host-two",
        "-k",
        key,
        "-s",
        w.server
      ])
      assert.strictEqual(reg.code, 0, reg.stderr)
      assert.match(reg.stdout, /^registered m2 \(hostname host-two\) as [0-9a-f-]{36} in workspace acme\n/)
      const listed = JSON.parse((yield* w.cli(key, ["--list", "--json"])).stdout).machines as Array<{ name: string }>
      assert.deepStrictEqual(
        listed.map((m) => m.name),
        ["m2"]
      )
      const plain = yield* Processes.run(yield* TempHome.make("cmdop-polish-register-"), [
        "agent",
        "register",
        "--hostname",
        "host-three",
        "-k",
        key,
        "-s",
        w.server
      ])
      assert.match(plain.stdout, /^registered host-three as [0-9a-f-]{36} in workspace acme\n/)
    })
  )
})

describe("the agent's hints fit the failure", () => {
  it.scopedLive(
    "a second machine registering a taken hostname: register fails with the rename hint; start runs, retries and says why (no key hint)",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const key = yield* w.create("acme")
        yield* w.agent(key, "vm")
        const home = yield* TempHome.make("cmdop-polish-agent-")
        // $ cmdop agent register --hostname vm        (on another machine)
        const reg = yield* Processes.run(home, ["agent", "register", "--hostname", "vm", "-k", key, "-s", w.server])
        assert.strictEqual(reg.code, 255)
        assert.include(reg.stderr, 'hostname "vm" is already the hostname or name of machine')
        assert.include(reg.stderr, '"cmdop agent register --hostname <hostname>"')
        assert.notInclude(reg.stderr, "key set")
        // $ cmdop agent start --foreground --hostname… is not a flag: the daemon registers in its Hello and is
        // refused the same way; it keeps retrying (the clash may be resolved on the relay) and says why.
        const daemon = yield* Processes.daemon(
          home,
          ["agent", "start", "--foreground", "-k", key, "-s", w.server],
          /refused to register this machine/
        )
        // The status file gets the refusal a moment after the log line: read it until it is there.
        const s = yield* eventually(
          "the refusal in agent status",
          Effect.map(Processes.run(home, ["agent", "status", "--json", "-k", key, "-s", w.server]), (status) => {
            const parsed = JSON.parse(status.stdout) as { state: string; last_error?: string }
            return parsed.last_error === undefined ? undefined : parsed
          })
        )
        assert.strictEqual(s.state, "CONNECTING")
        assert.include(s.last_error, "refused to register this machine: ")
        assert.notInclude(s.last_error, "key set")
        yield* daemon.stop("SIGTERM")
        // $ cmdop agent start        (in the background): started, and told it is not online yet and why to look
        const started = yield* Processes.run(home, ["agent", "start", "-k", key, "-s", w.server])
        yield* Effect.addFinalizer(() => Effect.ignore(Processes.run(home, ["agent", "stop"])))
        assert.strictEqual(started.code, 0, started.stderr)
        assert.match(started.stdout, /^agent started \(pid \d+\), connecting to /)
        assert.include(started.stderr, 'not online yet; it keeps retrying on its own — "cmdop agent status" says why')
      })
  )
})
