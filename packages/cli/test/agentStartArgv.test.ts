/**
 * The agent daemon's own bundle (`dist/agent.cjs`): which command lines it takes on (`AgentStartArgv`), and that
 * through it `agent start --foreground` fails exactly as through the whole CLI — same exit code, same stderr, same
 * `--json` document. The `--flag=value` form of the same command line is left to the whole CLI, which makes the
 * comparison.
 */
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import * as AgentStartArgv from "../src/AgentStartArgv.js"

describe("AgentStartArgv", () => {
  it("takes agent start --foreground with its flags, each once, values as separate words", () => {
    assert.deepStrictEqual(AgentStartArgv.parse(["agent", "start", "--foreground"]), {
      apiKey: undefined,
      server: undefined,
      workspace: undefined,
      json: false,
      sessionIdle: undefined,
      permissions: undefined
    })
    assert.deepStrictEqual(
      AgentStartArgv.parse([
        "agent",
        "start",
        "-k",
        "key",
        "--foreground",
        "-s",
        "a:1,b:2",
        "--workspace",
        "w",
        "--session-idle",
        "30m",
        "--permissions",
        "p.yaml",
        "--json",
        "-q"
      ]),
      { apiKey: "key", server: "a:1,b:2", workspace: "w", json: true, sessionIdle: "30m", permissions: "p.yaml" }
    )
  })

  it("leaves everything else to the whole CLI", () => {
    for (const args of [
      ["agent", "start"],
      ["agent", "status", "--foreground"],
      ["agent", "start", "--foreground", "--help"],
      ["agent", "start", "--foreground", "--session-idle=1h"],
      ["agent", "start", "--foreground", "--server"],
      ["agent", "start", "--foreground", "--server", "--json"],
      ["agent", "start", "--foreground", "--server", ""],
      ["agent", "start", "--foreground", "-s", "a:1", "--server", "b:1"],
      ["agent", "start", "--foreground", "--foreground"],
      ["agent", "start", "--foreground", "true"],
      ["agent", "start", "--foreground", "--"],
      ["agent", "start", "--foreground", "-qk", "x"],
      ["--json", "agent", "start", "--foreground"],
      ["agent", "start", "--foreground", "--toString"]
    ])
      assert.isUndefined(AgentStartArgv.parse(args), args.join(" "))
  })
})

describe("agent start --foreground from the daemon's bundle", () => {
  it.scopedLive("fails as the whole CLI does: bad flags, an empty policy, a daemon already running", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-agent-argv-")
      const policy = join(home, "empty.yaml")
      writeFileSync(policy, "\n")
      /** The command line through the daemon's bundle, and the same one (`--api-key=` form) through the whole CLI. */
      const same = (args: ReadonlyArray<string>, code: number, says: string) =>
        Effect.gen(function* () {
          const start = ["agent", "start", "--foreground", "--json", ...args]
          const daemon = yield* Processes.run(home, [...start, "--api-key", "unused"])
          assert.isDefined(AgentStartArgv.parse([...start, "--api-key", "unused"]))
          assert.isUndefined(AgentStartArgv.parse([...start, "--api-key=unused"]))
          const whole = yield* Processes.run(home, [...start, "--api-key=unused"])
          assert.strictEqual(daemon.code, code, daemon.stderr)
          assert.include(daemon.stderr, says)
          assert.deepStrictEqual(daemon, whole)
          assert.strictEqual(JSON.parse(daemon.stdout).exit_code, code)
        })
      yield* same(["--session-idle", "soon"], 2, 'invalid --session-idle "soon"')
      yield* same(["--server", "relay-1:50051,relay-2"], 255, '"relay-2" is not a relay address')
      yield* same(["--permissions", policy], 255, "the file is empty")
      // A daemon that cannot reach its relay keeps retrying, holding cmdop.pid: a second one is refused.
      const first = yield* Processes.daemon(
        home,
        ["agent", "start", "--foreground", "-s", "127.0.0.1:1", "-k", "k"],
        /agent daemon started/
      )
      yield* same([], 255, `the agent daemon is already running (pid ${first.child.pid}`)
    })
  )
})
