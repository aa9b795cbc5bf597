/**
 * `cmdop connect exec <host> <cmd…>`: everything after the host (or after `--`) reaches the remote command
 * untouched, as with ssh — `-k`, `--help`, `--version`, `--`, `--wizard`, spaces and quotes included. A property
 * test in the memory world (fast), and the user's own command lines in both worlds.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Runtime from "effect/Runtime"
import { memory, worlds } from "./World.js"

/** Words the CLI would take for its own if it looked past the host, and words with spaces, quotes and `$`. */
const word = FastCheck.oneof(
  FastCheck.constantFrom(
    "-k",
    "--help",
    "-h",
    "--version",
    "-v",
    "--",
    "--wizard",
    "--json",
    "--timeout",
    "-q",
    "exec"
  ),
  FastCheck.constantFrom("a b", "'quoted'", '"double"', "$HOME", "it's", "", " ", "x=1", "--api-key=k"),
  FastCheck.string({ maxLength: 12 }).filter((s) => !s.includes("\0"))
)

/** What `printf '%s\0' …` printed, as the argv it was given. */
const argvOf = (stdout: string) => stdout.split("\0").slice(0, -1)

describe("exec passes the remote command through untouched", () => {
  it.scopedLive(
    "property: the remote sees exactly the argv after the host, with or without --",
    () =>
      Effect.gen(function* () {
        const w = yield* memory
        const key = yield* w.create("acme")
        yield* w.agent(key, "box")
        const runtime = yield* Effect.runtime<never>()
        yield* Effect.promise(() =>
          FastCheck.assert(
            FastCheck.asyncProperty(
              FastCheck.array(word, { minLength: 1, maxLength: 8 }),
              FastCheck.boolean(),
              async (args, dashes) => {
                const r = await Runtime.runPromise(runtime)(
                  w.cli(key, ["exec", "box", ...(dashes ? ["--"] : []), "printf", "%s\\0", ...args])
                )
                assert.strictEqual(r.code, 0, r.stderr)
                assert.deepStrictEqual(argvOf(r.stdout), args)
              }
            ),
            { numRuns: 60 }
          )
        )
      }),
    120_000
  )

  for (const [worldName, makeWorld] of worlds)
    it.scopedLive(
      `ssh's habits, ${worldName}`,
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const key = yield* w.create("acme")
          yield* w.agent(key, "vm")

          // $ cmdop connect exec vm grep -q root /etc/passwd     (the -q is grep's)
          const grep = yield* w.cli(key, ["exec", "vm", "grep", "-q", "root", "/etc/passwd"])
          assert.strictEqual(grep.code, 0, grep.stderr)
          assert.strictEqual(grep.stdout, "")

          // $ cmdop connect exec vm sort -k 2     (the -k is sort's, not an API key)
          const sort = yield* w.cli(key, ["exec", "vm", "sort", "-k", "2"], "x 2\ny 1\n")
          assert.strictEqual(sort.stdout, "y 1\nx 2\n")

          // $ cmdop connect exec vm -- sh -c 'echo "$@"' x --help --version --wizard -k
          const flags = yield* w.cli(key, [
            "exec",
            "vm",
            "--",
            "sh",
            "-c",
            'echo "$@"',
            "x",
            "--help",
            "--version",
            "--wizard",
            "-k"
          ])
          assert.strictEqual(flags.stdout, "--help --version --wizard -k\n")

          // $ cmdop connect exec vm -- 'echo $HOME'     (one word with shell syntax: the remote user's shell)
          const shell = yield* w.cli(key, ["exec", "vm", "--", "echo $HOME"])
          assert.strictEqual(shell.code, 0, shell.stderr)
          assert.match(shell.stdout, /^\/\S*\n$/)

          // $ cmdop connect exec vm --help     (right after the host, before any command word: exec's help)
          const help = yield* w.cli(key, ["exec", "vm", "--help"])
          assert.strictEqual(help.code, 0)
          assert.match(help.stdout, /^cmdop connect exec — /)

          // $ cmdop connect exec vm --json -- printf x     (exec's own flags right after the host stay the CLI's)
          const json = yield* w.cli(key, ["exec", "vm", "--json", "--", "printf", "x"])
          assert.strictEqual(JSON.parse(json.stdout).stdout, "x")
        }),
      60_000
    )

  for (const [worldName, makeWorld] of worlds)
    it.scopedLive(
      `connect vm with stdin not a terminal runs the login shell without a PTY, ${worldName}`,
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const key = yield* w.create("acme")
          yield* w.agent(key, "vm")

          // $ echo 'echo hi from $0; exit 3' | cmdop connect vm
          const piped = yield* w.cli(key, ["vm"], "echo piped-$((20+1)); exit 3\n")
          assert.strictEqual(piped.stdout, "piped-21\n")
          assert.strictEqual(piped.code, 3)
          assert.notInclude(piped.stderr, "keeps running")

          // $ cmdop connect vm </dev/null: the shell reads EOF and ends; no orphan session is left.
          const empty = yield* w.cli(key, ["vm"], "")
          assert.strictEqual(empty.code, 0, empty.stderr)
          assert.notInclude(empty.stderr, "keeps running")
          const sessions = yield* w.cli(key, ["vm", "--list-sessions", "--json"])
          assert.deepStrictEqual(JSON.parse(sessions.stdout).sessions, [])
        }),
      60_000
    )
})
