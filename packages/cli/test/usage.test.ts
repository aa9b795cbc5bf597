/**
 * Errors and help as one product, written as the user's command lines and what they see: unknown commands at
 * every level, flags missing their value, stray flags, curated help pages, the version, shell completions.
 */
import { assert, describe, it } from "@effect/vitest"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { binPath, cli, spawnCli } from "./support.js"
import { live, memory, worlds } from "./World.js"

const KEY = "ck_live_AAAAaaaa1111bbbb2222cccc3333dddd"

describe("usage errors say which level, repeat the typo, suggest, and point at that level's --help", () => {
  it.scopedLive("unknown subcommands, missing values, stray flags", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const run = (args: ReadonlyArray<string>) => cli(home, args, { CMDOP_API_KEY: KEY, CMDOP_SERVER: "127.0.0.1:1" })
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [
          ["connect", "ws", "lst"],
          'cmdop: unknown command "lst" for workspace (did you mean "cmdop connect workspace list"?) — use one of list, use, add, set, remove, sync; see "cmdop connect workspace --help"\n'
        ],
        // A group's command typed without its group: the whole command line to type.
        [
          ["workspace", "list"],
          'cmdop: unknown command "workspace" for cmdop (did you mean "cmdop connect workspace"?) — use one of connect, agent, relay, login, logout, up, completion, version; see "cmdop --help"\n'
        ],
        [
          ["exec", "vm", "--", "ls"],
          'cmdop: unknown command "exec" for cmdop (did you mean "cmdop connect exec"?) — use one of connect, agent, relay, login, logout, up, completion, version; see "cmdop --help"\n'
        ],
        [
          ["serve"],
          'cmdop: unknown command "serve" for cmdop (did you mean "cmdop relay serve"?) — use one of connect, agent, relay, login, logout, up, completion, version; see "cmdop --help"\n'
        ],
        [
          ["agent", "strat"],
          'cmdop: unknown command "strat" for agent (did you mean "cmdop agent start"?) — use one of register, start, stop, status, install, uninstall, permissions, approvals, approve, deny; see "cmdop agent --help"\n'
        ],
        [
          ["connect", "exce", "vm", "--", "ls"],
          'cmdop: unknown command "exce" for connect (did you mean "cmdop connect exec"?) — use one of exec, sessions, share, workspace, ws, key, set-key, whoami, approvals, approve, deny; see "cmdop connect --help"\n'
        ],
        [
          ["connect", "exec", "vm", "--timeout"],
          'cmdop: --timeout needs a value (--timeout DURATION) for exec; see "cmdop connect exec --help"\n'
        ],
        // Longer than the protocol's 32-bit milliseconds: a usage error before dialing (it was a relay failure).
        [
          ["connect", "exec", "--timeout", "100000h", "vm", "--", "true"],
          'cmdop: invalid --timeout "100000h": at most 1193h (0: no timeout)\n'
        ],
        [
          ["connect", "share", "vm", "--ttl"],
          'cmdop: --ttl needs a value (--ttl DURATION) for share; see "cmdop connect share --help"\n'
        ],
        [["connect", "--list", "--bogus"], 'cmdop: unknown option --bogus for connect; see "cmdop connect --help"\n'],
        [
          ["connect", "--onlin"],
          'cmdop: unknown option --onlin for connect (did you mean --online?); see "cmdop connect --help"\n'
        ],
        [["connect", "--wizard"], 'cmdop: unknown option --wizard for connect; see "cmdop connect --help"\n'],
        // ssh's options say what cmdop does instead; a one-letter flag is never "near" another (-t is not -k).
        [
          ["connect", "vm", "-t"],
          'cmdop: unknown option -t for connect: cmdop connect <host> always gives the shell a terminal, and exec never gives one; drop it; see "cmdop connect --help"\n'
        ],
        [
          ["connect", "-p", "2222", "vm"],
          'cmdop: unknown option -p for connect: machines are reached by name through the relay, not by port; the relay\'s own address is --server/-s host:port; see "cmdop connect --help"\n'
        ],
        [["connect", "vm", "-x"], 'cmdop: unknown option -x for connect; see "cmdop connect --help"\n'],
        [
          ["connect", "vm", "uptime"],
          'cmdop: unexpected argument "uptime" for connect; to run a command: cmdop connect exec vm -- uptime …; see "cmdop connect --help"\n'
        ],
        [
          ["relay", "serve", "--max-connections-per-source", "lots"],
          'cmdop: --max-connections-per-source "lots" is not a whole number for serve; see "cmdop relay serve --help"\n'
        ],
        // A port no listener can take is named before anything starts (it was a RangeError from inside).
        [
          ["relay", "serve", "--http-port", "70000"],
          'cmdop: --http-port 70000 is not a port (1 to 65535, or 0 for a free one) for serve; see "cmdop relay serve --help"\n'
        ],
        // A flag typed short or by its last word is found by it, before the nearest spelling (`--port` is not --host).
        [
          ["relay", "serve", "--port", "50051"],
          'cmdop: unknown option --port for serve (did you mean --grpc-port, --http-port or --peer-port?); see "cmdop relay serve --help"\n'
        ],
        [
          ["relay", "serve", "--peer-addr", "h:1"],
          'cmdop: unknown option --peer-addr for serve (did you mean --peer-address?); see "cmdop relay serve --help"\n'
        ],
        // A --db that is not a PostgreSQL URL, or one next to --data-dir: refused before anything opens.
        [
          ["relay", "serve", "--db", "notaurl"],
          "cmdop: --db (or CMDOP_RELAY_DB) is not a PostgreSQL URL: write postgres://user:password@host:5432/database\n"
        ],
        [
          ["relay", "workspace", "list", "--db", "postgres://u:hunter2@127.0.0.1:1/x", "--data-dir", "/tmp"],
          "cmdop: --data-dir is the embedded store's; with --db (or CMDOP_RELAY_DB) the store is PostgreSQL: drop one of them\n"
        ],
        [
          ["relay", "serve", "--grpc-port", "18401", "--http-port", "18401"],
          "cmdop: --grpc-port and --http-port are both 18401: give each its own port\n"
        ],
        // A --public-url without its scheme would make every share link, sign-in link and the OAuth issuer broken.
        [
          ["relay", "serve", "--public-url", "relay.example"],
          'cmdop: --public-url "relay.example" is not an http:// or https:// URL: give the address browsers reach this relay\'s HTTP port at, e.g. https://relay.example or http://10.0.0.5:8080\n'
        ],
        [
          ["relay", "serve", "--http-port", "18401", "--http-port", "18402"],
          'cmdop: --http-port is given twice for serve: keep one; see "cmdop relay serve --help"\n'
        ],
        [
          ["up", "--grpc-port", "65536"],
          'cmdop: --grpc-port 65536 is not a port (1 to 65535, or 0 for a free one) for up; see "cmdop up --help"\n'
        ],
        [
          ["relay", "workspace", "craete", "x"],
          'cmdop: unknown command "craete" for workspace (did you mean "cmdop relay workspace create"?) — use one of create, list; see "cmdop relay workspace --help"\n'
        ]
      ]
      for (const [args, stderr] of cases) {
        const r = yield* run(args)
        assert.strictEqual(r.stderr, stderr, args.join(" "))
        assert.strictEqual(r.code, 2, args.join(" "))
        assert.strictEqual(r.stdout, "")
      }
    })
  )

  it.scopedLive(
    "relay serve --max-connections-per-source takes a whole number from 1, from the flag or its variable",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make()
        const hint = ": use a whole number from 1 to 1048576, e.g. 20000 behind a load balancer\n"
        for (const [args, env, value] of [
          [["--max-connections-per-source", "0"], {}, "0"],
          [[], { CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE: "lots" }, "lots"],
          [[], { CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE: "-5" }, "-5"]
        ] as const) {
          // Refused before anything is opened: no store, no port.
          const r = yield* cli(home, ["relay", "serve", "--grpc-port", "1", "--http-port", "1", ...args], env)
          assert.strictEqual(
            r.stderr,
            `cmdop: invalid --max-connections-per-source (or CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE) "${value}"${hint}`
          )
          assert.strictEqual(r.code, 2)
        }
      })
  )

  it.scopedLive(
    "relay serve --tls-cert/--tls-key that are not a certificate and its key: said before anything listens",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make()
        const fixtures = new URL("../../testkit/fixtures/", import.meta.url).pathname
        const cert = path.join(fixtures, "localhost.crt")
        const otherKey = path.join(home, "other.key")
        const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 })
        fs.writeFileSync(otherKey, privateKey.export({ type: "pkcs8", format: "pem" }))
        const serve = (certFile: string, keyFile: string) =>
          cli(home, [
            "relay",
            "serve",
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--tls-cert",
            certFile,
            "--tls-key",
            keyFile
          ])
        const mismatch = yield* serve(cert, otherKey)
        assert.strictEqual(
          mismatch.stderr,
          `cmdop: --tls-key ${otherKey} is not the key of --tls-cert ${cert} (key values mismatch): give the key the certificate was issued for\n`
        )
        assert.strictEqual(mismatch.code, 2)
        const swapped = yield* serve(otherKey, cert)
        assert.include(
          swapped.stderr,
          `cmdop: --tls-cert ${otherKey} holds a private key, not a certificate: are --tls-cert and --tls-key swapped?`
        )
        assert.notInclude(swapped.stderr, "another relay")
        assert.strictEqual(swapped.code, 2)
      })
  )

  it.scopedLive("connect exce alone is a host that is not found, with a hint at the command it resembles", () =>
    Effect.gen(function* () {
      const w = yield* memory
      const key = yield* w.create("acme")
      const r = yield* w.cli(key, ["exce"])
      assert.strictEqual(r.code, 255)
      assert.include(r.stderr, 'machine "exce" not found')
      assert.include(r.stderr, 'or did you mean "cmdop connect exec"? see "cmdop connect --help"')
    })
  )
})

describe("help and version", () => {
  it.scopedLive(
    "every --help page is curated: plain when piped, no $ usage line, no placeholder text, no --wizard",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make()
        const pages: ReadonlyArray<ReadonlyArray<string>> = [
          [],
          ["connect"],
          ["connect", "exec"],
          ["connect", "share"],
          ["connect", "share", "list"],
          ["connect", "share", "revoke"],
          ["connect", "workspace"],
          ["connect", "ws", "add"],
          ["connect", "workspace", "set"],
          ["connect", "key"],
          ["connect", "key", "set"],
          ["connect", "whoami"],
          ["connect", "set-key"],
          ["agent"],
          ["agent", "start"],
          ["agent", "register"],
          ["relay"],
          ["relay", "serve"],
          ["relay", "workspace", "create"],
          ["relay", "signing-key", "retire"],
          ["up"],
          ["completion"]
        ]
        for (const words of pages) {
          // The real binary with stdout a pipe.
          const r = yield* spawnCli(home, [...words, "--help"])
          const what = `cmdop ${words.join(" ")} --help`
          assert.strictEqual(r.code, 0, what)
          assert.match(
            r.stdout,
            new RegExp(`^cmdop${words.length ? " " : ""}${words.join(" ").replace("ws", "workspace")} — `),
            what
          )
          assert.notMatch(r.stdout, /\x1b\[/, what)
          assert.notMatch(r.stdout, /^\$ /m, what)
          assert.notInclude(r.stdout, "A user-defined piece of text", what)
          assert.notInclude(r.stdout, "--wizard", what)
          assert.include(r.stdout, "Usage:", what)
        }
        const serve = yield* spawnCli(home, ["relay", "serve", "--help"])
        assert.match(serve.stdout, /--max-connections-per-source N\n +gRPC connections one address may hold \(1024\)/)
        assert.include(serve.stdout, "Behind a TCP load balancer or NAT every agent reaches the relay from one address")
        const exec = yield* spawnCli(home, ["connect", "exec", "--help"])
        assert.include(exec.stdout, "Every word after <host> (or after --) is the remote command's, untouched")
        assert.include(
          exec.stdout,
          "<host>: exact hostname or name, a prefix of one (2+ characters), the id or a prefix of it (4+)"
        )
      })
  )

  it.scopedLive("--version is one line; -v and version too", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      for (const flag of ["--version", "-v", "version"]) {
        const r = yield* spawnCli(home, [flag])
        assert.strictEqual(r.code, 0)
        assert.match(r.stdout, /^cmdop \d+\.\d+\.\d+\n$/, flag)
      }
    })
  )
})

describe("shell completions", () => {
  it.scopedLive("bash, zsh and fish scripts; every level and flag; machine names from the relay, cached", () =>
    Effect.gen(function* () {
      const w = yield* memory
      const key = yield* w.create("acme")
      yield* w.agent(key, "web-alpha")
      yield* w.agent(key, "db-1")
      const complete = (...words: ReadonlyArray<string>) =>
        Effect.map(w.bare(["__complete", ...words]), (r) => r.stdout.trim().split("\n").filter(Boolean))

      assert.deepStrictEqual(yield* complete(""), [
        "connect",
        "agent",
        "relay",
        "login",
        "logout",
        "up",
        "completion",
        "version"
      ])
      assert.deepStrictEqual(yield* complete("connect", "ex"), ["exec"])
      assert.deepStrictEqual(yield* complete("connect", "ws", ""), ["list", "use", "add", "set", "remove", "sync"])
      assert.deepStrictEqual(yield* complete("relay", "signing-key", "r"), ["rotate", "retire"])
      assert.deepStrictEqual(yield* complete("connect", "exec", "--ti"), ["--timeout"])
      assert.include(yield* complete("agent", "start", "--"), "--foreground")
      // A flag's value is not completed with commands.
      assert.deepStrictEqual(yield* complete("connect", "exec", "--timeout", ""), [])

      // Machine names, where a host goes: from the relay this client's credential reaches.
      const hosts = (...words: ReadonlyArray<string>) =>
        Effect.map(w.cmdop(key, ["__complete", ...words]), (r) => r.stdout.trim().split("\n").filter(Boolean))
      assert.deepStrictEqual(yield* hosts("connect", "exec", "we"), ["web-alpha"])
      assert.deepStrictEqual(yield* hosts("connect", ""), [
        "exec",
        "sessions",
        "share",
        "workspace",
        "key",
        "set-key",
        "whoami",
        "approvals",
        "approve",
        "deny",
        "db-1",
        "web-alpha"
      ])
      assert.deepStrictEqual(yield* hosts("connect", "share", "d"), ["db-1"])
      assert.deepStrictEqual(yield* hosts("connect", "sessions", "d"), ["db-1"])
      // Cached: a machine that comes later shows up once the cache is a minute old, not on every TAB.
      yield* w.agent(key, "web-gamma")
      assert.deepStrictEqual(yield* hosts("connect", "exec", "web-"), ["web-alpha"])

      for (const shell of ["bash", "zsh", "fish"]) {
        const r = yield* w.bare(["completion", shell])
        assert.strictEqual(r.code, 0)
        assert.include(r.stdout, "__complete")
      }
      const bad = yield* w.bare(["completion", "tcsh"])
      assert.strictEqual(bad.code, 2)
      assert.include(bad.stderr, "use cmdop completion bash|zsh|fish")
    })
  )

  it.scopedLive("bash really completes with the script (real binary)", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const bin = yield* TempHome.make("cmdop-bin-")
      execFileSync("ln", ["-s", binPath, `${bin}/cmdop`])
      const script = execFileSync(process.execPath, [binPath, "completion", "bash"], { encoding: "utf8" })
      const out = execFileSync(
        "bash",
        ["-c", `${script}\nCOMP_WORDS=(cmdop connect ws l); COMP_CWORD=3; _cmdop; printf '%s\\n' "\${COMPREPLY[@]}"`],
        { encoding: "utf8", env: { PATH: `${bin}:${process.env.PATH}`, HOME: home, CMDOP_SERVER: "127.0.0.1:1" } }
      )
      assert.strictEqual(out, "list\n")
    })
  )
})

for (const [worldName, makeWorld] of worlds)
  describe(`what the output says, ${worldName}`, () => {
    it.scopedLive(
      "exec --json carries timed_out and error; --ttl rounding is said; share shows the guest's command line",
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const key = yield* w.create("acme")
          yield* w.agent(key, "vm")

          const slow = yield* w.cli(key, ["exec", "vm", "--json", "--timeout", "1s", "--", "sleep", "30"])
          assert.strictEqual(slow.code, 124)
          assert.strictEqual(JSON.parse(slow.stdout).timed_out, true)

          // A program the machine does not have: its 127, with the failure document's error and hint keys.
          const notThere = yield* w.cli(key, ["exec", "vm", "--json", "--", "no-such-program-xyz"])
          assert.strictEqual(notThere.code, 127)
          const absent = JSON.parse(notThere.stdout)
          assert.strictEqual(absent.exit_code, 127)
          assert.include(absent.error, "no-such-program-xyz")
          assert.property(absent, "hint")

          const missing = yield* w.cli(key, ["exec", "nope", "--json", "--", "true"])
          assert.strictEqual(missing.code, 255)
          const failed = JSON.parse(missing.stdout)
          assert.strictEqual(failed.exit_code, 255)
          assert.strictEqual(failed.timed_out, false)
          assert.include(failed.error, 'machine "nope" not found')
          assert.deepStrictEqual(failed.command, ["true"])
          assert.include(missing.stderr, 'machine "nope" not found')

          const rounded = yield* w.cli(key, ["share", "vm", "--ttl", "90m"])
          assert.strictEqual(rounded.code, 0, rounded.stderr)
          assert.include(rounded.stderr, "note: --ttl 90m rounds up to whole hours: the link lives 2h")
          assert.match(
            rounded.stdout,
            new RegExp(
              `guest CLI: cmdop connect --api-key eyJ\\S+ --server ${w.server.replace(/\./g, "\\.")} exec vm -- uptime`
            )
          )
          const exact = yield* w.cli(key, ["share", "vm", "--ttl", "2h"])
          assert.notInclude(exact.stderr, "rounds up")
        }),
      60_000
    )
  })

describe("a bad --server", () => {
  it.scopedLive("TLS against a plaintext relay, or the HTTP port: one line with a hint, no dump", () =>
    Effect.gen(function* () {
      const w = yield* live
      const key = yield* w.create("acme")
      for (const server of [`https://127.0.0.1:${w.grpcPort}`, `127.0.0.1:${w.httpPort}`]) {
        const r = yield* w.cli(key, ["--list", "--server", server])
        assert.strictEqual(r.code, 255, server)
        assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr)
        assert.match(
          r.stderr,
          /^cmdop: relay 127\.0\.0\.1:\d+ (does not answer TLS|answered, but not as a relay's gRPC port).*--server/,
          r.stderr
        )
        assert.notMatch(r.stderr, /OPENSSL|DeprecationWarning|Resolution note|at \S+:\d+:\d+/, r.stderr)
      }
    })
  )
})
