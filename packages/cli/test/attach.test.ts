/**
 * The real CLI in a real terminal: tmux runs `cmdop connect <host>` against a relay and an agent (real processes);
 * the test types with send-keys and reads the screen with capture-pane.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Processes from "@cmdop/testkit/Processes"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import { terminal, terminalEnv, waitFor } from "./Tmux.js"
import { live, relayUp, sharedLive } from "./World.js"

// One relay for the tests that leave it running (each names its workspace apart); the restart test has its own.
const shared = sharedLive()

describe("cmdop connect <host> in a real terminal (tmux)", () => {
  it.scopedLive(
    "attach, stty size after a resize, Ctrl-C interrupts sleep, ~. detaches, reattach shows the output",
    () =>
      Effect.gen(function* () {
        execFileSync("tmux", ["-V"])
        const w = yield* shared
        const key = yield* w.create("acme")
        yield* w.agent(key, "box-1")
        const env = terminalEnv(w, key)
        const t = yield* terminal("a", `${process.execPath} ${Processes.binPath} connect box-1`, env)
        const attached = yield* waitFor(t.screen, /attached to box-1, session ([0-9a-f-]{36})/, "the attached line")
        const sessionId = /session ([0-9a-f-]{36})/.exec(attached)![1]!
        assert.match(attached, /resolving box-1/)
        assert.match(attached, /dialing relay/)
        assert.match(attached, /auth ok: workspace acme/)
        assert.match(attached, /detach with ~\. at the start of a line \(~\? lists escapes\)/)

        t.send("echo marker-$((6*7))", "Enter")
        yield* waitFor(t.screen, /marker-42/, "the echoed marker")

        t.resize(120, 40)
        yield* Effect.sleep("300 millis")
        t.send("stty size", "Enter")
        yield* waitFor(t.screen, /^40 120\s*$/m, "stty size after the resize")

        t.send("sleep 30; echo not-interrupted", "Enter")
        yield* Effect.sleep("500 millis")
        t.send("C-c")
        t.send("echo interrupted-ok", "Enter")
        const afterInterrupt = yield* waitFor(t.screen, /^interrupted-ok\s*$/m, "the shell back after Ctrl-C")
        assert.notMatch(afterInterrupt, /^not-interrupted/m)

        t.type("~.")
        const detached = yield* waitFor(t.screen, /detached; session/, "the detach message")
        assert.include(detached, sessionId)

        // The session kept running; it is listed, and a new attach shows what was on the screen.
        const listed = yield* Processes.run(w.client, ["connect", "box-1", "--list-sessions", "--json"], {
          env: { CMDOP_API_KEY: key, CMDOP_SERVER: w.server }
        })
        assert.deepStrictEqual(
          JSON.parse(listed.stdout).sessions.map((s: { session_id: string }) => s.session_id),
          [sessionId]
        )
        const again = yield* terminal(
          "b",
          `${process.execPath} ${Processes.binPath} connect box-1 --session ${sessionId}`,
          env
        )
        const replayed = yield* waitFor(again.screen, /marker-42[\s\S]*interrupted-ok/, "the earlier output replayed")
        assert.match(replayed, /attached to box-1, session/)
        again.send("exit", "Enter")
        yield* waitFor(again.screen, /session ended \(exited, exit 0\)/, "the end of the session")
      }),
    90_000
  )

  it.scopedLive(
    "the relay restarts under an attached client: it reconnects and resumes, nothing lost or repeated",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const key = yield* w.create("acme")
        yield* w.agent(key, "box-2")
        const env = terminalEnv(w, key)
        const t = yield* terminal("c", `${process.execPath} ${Processes.binPath} connect box-2`, env)
        yield* waitFor(t.screen, /attached to box-2/, "the attached line")
        t.send("echo before-$((1+1))", "Enter")
        yield* waitFor(t.screen, /^before-2\s*$/m, "output before the restart")

        yield* w.relay.stop("SIGKILL")
        yield* waitFor(t.screen, /connection lost; reconnecting/, "the reconnect notice")
        yield* relayUp(w.dir, w.grpcPort, w.httpPort)
        yield* waitFor(t.screen, /reconnected/, "the reconnection", 40_000)
        t.send("echo after-$((2+1))", "Enter")
        const screen = yield* waitFor(t.screen, /^after-3\s*$/m, "output after the restart")
        // Exactly one copy of the earlier output: the resume started at the byte the client had.
        assert.strictEqual(screen.match(/^before-2\s*$/gm)?.length, 1)
        // One status line for the outage, however many tries it took.
        assert.strictEqual(screen.match(/connection lost; reconnecting/g)?.length, 1)
      }),
    90_000
  )

  it.scopedLive(
    "with no host in a terminal: a fuzzy picker, a confirm line, then the shell",
    () =>
      Effect.gen(function* () {
        const w = yield* shared
        const key = yield* w.create("acme-picker")
        yield* w.agent(key, "alpha-web")
        yield* w.agent(key, "beta-db")
        const env = terminalEnv(w, key)
        const t = yield* terminal("p", `${process.execPath} ${Processes.binPath} connect`, env)
        const listed = yield* waitFor(t.screen, /pick a machine:[\s\S]*alpha-web[\s\S]*beta-db/, "the picker")
        assert.match(listed, /online/)
        // Fuzzy: "bdb" matches beta-db only.
        t.send("bdb")
        const filtered = yield* waitFor(t.screen, /pick a machine: bdb\s*\n> beta-db/, "the filtered list")
        assert.notMatch(filtered.split("pick a machine: bdb").pop()!, /alpha-web/)
        t.send("Enter")
        yield* waitFor(
          t.screen,
          /connect to beta-db \(beta-db, online, last heartbeat \d+s ago\)\? \[Y\/n\]/,
          "the confirm line"
        )
        t.send("y")
        yield* waitFor(t.screen, /attached to beta-db, session/, "the attach")
        t.send("echo picked-$((2+2))", "Enter")
        yield* waitFor(t.screen, /^picked-4\s*$/m, "the shell on the picked machine")
        t.send("exit", "Enter")
        yield* waitFor(t.screen, /session ended/, "the end")
      }),
    60_000
  )

  it.scopedLive(
    "a guest's shell cut off by the link's revocation: a line that says so and exit 255, not the shell's 0",
    () =>
      Effect.gen(function* () {
        const w = yield* shared
        const key = yield* w.create("acme-cut")
        yield* w.agent(key, "box-cut")
        const token = JSON.parse((yield* w.cli(key, ["share", "box-cut", "--json"])).stdout)
        const env = terminalEnv(w, token.token)
        const t = yield* terminal(
          "g",
          `${process.execPath} ${Processes.binPath} connect box-cut; echo "cli-exit=$?"`,
          env
        )
        yield* waitFor(t.screen, /attached to box-cut, session/, "the guest's attach")
        t.send("echo guest-$((3*3))", "Enter")
        yield* waitFor(t.screen, /^guest-9\s*$/m, "the guest's shell")
        const revoked = yield* w.cli(key, ["share", "revoke", token.id])
        assert.strictEqual(revoked.code, 0, revoked.stderr)
        const screen = yield* waitFor(t.screen, /cli-exit=\d+/, "the guest CLI's exit")
        assert.match(screen, /cut off from session [0-9a-f-]{36} on box-cut: share link revoked/)
        assert.match(screen, /cli-exit=255/)
        assert.notMatch(screen, /session ended/)
      }),
    60_000
  )

  it.scopedLive(
    "SIGTERM to an attached CLI detaches: the reattach line, exit 143, the session keeps running",
    () =>
      Effect.gen(function* () {
        const w = yield* shared
        const key = yield* w.create("acme-term")
        yield* w.agent(key, "box-term")
        const env = terminalEnv(w, key)
        const t = yield* terminal(
          "k",
          `${process.execPath} ${Processes.binPath} connect box-term; echo "cli-exit=$?"`,
          env
        )
        const attached = yield* waitFor(t.screen, /attached to box-term, session ([0-9a-f-]{36})/, "the attach")
        const sessionId = /session ([0-9a-f-]{36})/.exec(attached)![1]!
        t.send("echo before-$((5*5))", "Enter")
        yield* waitFor(t.screen, /^before-25\s*$/m, "the shell")
        // The CLI is the pane's shell's child (`env` execs node).
        const shell = execFileSync("tmux", ["-L", t.socket, "display", "-p", "-t", "k", "#{pane_pid}"], {
          encoding: "utf8"
        }).trim()
        const cli = execFileSync("pgrep", ["-P", shell], { encoding: "utf8" }).trim().split("\n")[0]!
        process.kill(Number(cli), "SIGTERM")
        const screen = yield* waitFor(t.screen, /cli-exit=\d+/, "the CLI's exit")
        assert.match(screen, new RegExp(`terminated; detached; session ${sessionId} keeps running — reattach with`))
        assert.match(screen, /cli-exit=143/)
        const listed = yield* Processes.run(w.client, ["connect", "box-term", "--list-sessions", "--json"], {
          env: { CMDOP_API_KEY: key, CMDOP_SERVER: w.server }
        })
        assert.deepStrictEqual(
          JSON.parse(listed.stdout).sessions.map((s: { session_id: string }) => s.session_id),
          [sessionId]
        )
      }),
    60_000
  )

  it.scopedLive("without a terminal and without a host, the CLI asks for a host", () =>
    Effect.gen(function* () {
      const w = yield* shared
      const key = yield* w.create("acme-no-host")
      const r = yield* w.cli(key, [])
      assert.strictEqual(r.code, 2)
      assert.include(r.stderr, "no host given")
    })
  )
})
