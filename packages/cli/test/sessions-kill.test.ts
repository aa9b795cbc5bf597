/**
 * `cmdop connect sessions <host>` and `--kill-session <id>`, as the user types them: a shell attached in a real
 * terminal (tmux) with a background job, listed, then ended from another command line; the shell and its job are
 * gone from the machine and the attached terminal says so. A guest cannot end the owner's session; an unknown id
 * is one clear line.
 */
import { assert, describe, it } from "@effect/vitest"
import { AttachInput } from "@cmdop/domain/RelayClient"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import { eventually, eventuallySync } from "@cmdop/test-helpers/Eventually"
import { isRunning as alive } from "@cmdop/test-helpers/Liveness"
import * as Processes from "@cmdop/testkit/Processes"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import { terminal, terminalEnv, waitFor } from "./Tmux.js"
import { live as world } from "./World.js"

describe("connect sessions", () => {
  it.scopedLive("a command line holding terminal escapes is listed with them shown as \\xHH, never sent raw", () =>
    Effect.gen(function* () {
      const w = yield* world
      const key = yield* w.create("acme-esc")
      yield* w.agent(key, "box-esc")
      // Anyone who may open a shell names its command; another person's listing must not run what it holds.
      const relay = yield* RelayClientGrpc.make({ server: w.server, apiKey: Redacted.make(key) })
      const input = yield* Queue.unbounded<AttachInput>()
      yield* relay
        .attach(
          { machine: "box-esc", cols: 80, rows: 24, command: ["sh", "-c", "sleep 30 # \x1b]0;pwned\x07\x1b[31mred"] },
          Stream.fromQueue(input)
        )
        .pipe(Stream.runDrain, Effect.ignore, Effect.forkScoped)
      const listed = yield* eventually(
        "the session listed",
        Effect.map(
          Processes.run(w.client, ["connect", "sessions", "box-esc"], {
            env: { CMDOP_API_KEY: key, CMDOP_SERVER: w.server }
          }),
          (r) => (r.stdout.includes("sleep 30") ? r : undefined)
        ),
        { timeout: "20 seconds", interval: "200 millis" }
      )
      assert.notMatch(listed.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
      assert.include(listed.stdout, "sh -c sleep 30 # \\x1b]0;pwned\\x07\\x1b[31mred")
    })
  )

  it.scopedLive("list, --kill-session ends the shell and its processes; guests and unknown ids refused", () =>
    Effect.gen(function* () {
      const w = yield* world
      const key = yield* w.create("acme")
      yield* w.agent(key, "box-1")
      const client = (args: ReadonlyArray<string>) =>
        Processes.run(w.client, ["connect", ...args], { env: { CMDOP_API_KEY: key, CMDOP_SERVER: w.server } })

      // $ cmdop connect sessions box-1        (nothing open yet)
      const none = yield* client(["sessions", "box-1"])
      assert.strictEqual(none.code, 0, none.stderr)
      assert.include(none.stderr, 'no interactive sessions on box-1; start one with "cmdop connect box-1"')

      const t = yield* terminal("kill", `${process.execPath} ${Processes.binPath} connect box-1`, terminalEnv(w, key))
      const attached = yield* waitFor(t.screen, /attached to box-1, session ([0-9a-f-]{36})/, "the attached line")
      const sessionId = /session ([0-9a-f-]{36})/.exec(attached)![1]!
      const pidFile = path.join(w.client, "job.pid")
      t.send(`sleep 300 & echo $! > ${pidFile}; echo shell-pid-$$`, "Enter")
      const shellPid = Number(/shell-pid-(\d+)/.exec(yield* waitFor(t.screen, /shell-pid-\d+/, "the shell's pid"))![1])
      const jobPid = yield* eventuallySync("the job's pid file", () =>
        fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, "utf8").trim()) || undefined : undefined
      )
      assert.isTrue(alive(shellPid) && alive(jobPid))

      // $ cmdop connect sessions box-1
      const listed = yield* client(["sessions", "box-1"])
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.match(listed.stdout, /^SESSION\s+COMMAND\s+SIZE\s+VIEWERS\s+IDLE\s+OWNER\n/)
      assert.match(listed.stdout, new RegExp(`^${sessionId}\\s+login shell\\s+\\d+x\\d+\\s+1\\s`, "m"))

      // $ cmdop connect sessions box-1 --kill-session <bogus>
      const unknown = yield* client(["sessions", "box-1", "--kill-session", "0000-nope"])
      assert.strictEqual(unknown.code, 255)
      assert.strictEqual(unknown.stdout, "")
      assert.strictEqual(
        unknown.stderr,
        "cmdop: no session 0000-nope on box-1; list them with cmdop connect sessions box-1\n"
      )
      assert.strictEqual(unknown.stderr.trimEnd().split("\n").length, 1, unknown.stderr)

      // A guest of a machine link cannot end (or see) the owner's session.
      const share = JSON.parse((yield* client(["share", "box-1", "--json"])).stdout)
      const guest = yield* w.bare([
        "connect",
        "sessions",
        "box-1",
        "--kill-session",
        sessionId,
        "-k",
        share.token,
        "-s",
        w.server
      ])
      assert.strictEqual(guest.code, 255)
      assert.include(guest.stderr, `no session ${sessionId} on box-1`)
      assert.isTrue(alive(shellPid) && alive(jobPid), "the guest's call changed nothing")

      // A guest of a link for this one session (pair debugging) joined it but did not open it: it cannot end it.
      const pair = JSON.parse((yield* client(["share", "box-1", "--session", sessionId, "--json"])).stdout)
      const pairKill = yield* w.bare([
        "connect",
        "sessions",
        "box-1",
        "--kill-session",
        sessionId,
        "-k",
        pair.token,
        "-s",
        w.server
      ])
      assert.strictEqual(pairKill.code, 255)
      assert.include(pairKill.stderr, "did not open it; only its owner can end it")

      // A guest ends the session its own link opened.
      const g = yield* terminal(
        "guest",
        `${process.execPath} ${Processes.binPath} connect box-1 -k ${share.token} -s ${w.server}`,
        {
          HOME: w.client,
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          TERM: "xterm-256color"
        }
      )
      const guestAttached = yield* waitFor(
        g.screen,
        /attached to box-1, session ([0-9a-f-]{36})/,
        "the guest's attached line"
      )
      const guestSession = /session ([0-9a-f-]{36})/.exec(guestAttached)![1]!
      const guestListed = JSON.parse(
        (yield* w.bare(["connect", "sessions", "box-1", "--json", "-k", share.token, "-s", w.server])).stdout
      )
      assert.deepStrictEqual(
        guestListed.sessions.map((x: { session_id: string }) => x.session_id),
        [guestSession]
      )
      const guestKill = yield* w.bare([
        "connect",
        "sessions",
        "box-1",
        "--kill-session",
        guestSession,
        "--json",
        "-k",
        share.token,
        "-s",
        w.server
      ])
      assert.strictEqual(guestKill.code, 0, guestKill.stderr)
      assert.strictEqual(JSON.parse(guestKill.stdout).ended, true)
      yield* waitFor(g.screen, /session ended \(closed, exit \d+\)/, "the guest's end line")

      // $ cmdop connect sessions box-1 --kill-session <id>
      const killed = yield* client(["sessions", "box-1", "--kill-session", sessionId])
      assert.strictEqual(killed.code, 0, killed.stderr)
      assert.match(
        killed.stdout,
        new RegExp(
          `^ended session ${sessionId} on box-1: its shell and processes are gone \\((SIG\\w+, )?exit \\d+\\)\\n$`
        )
      )
      // The machine: the shell and its background job are gone (the agent reported the end only after).
      yield* eventuallySync("the shell and its job gone", () => (!alive(shellPid) && !alive(jobPid) ? true : undefined))
      // The attached terminal sees its session end.
      yield* waitFor(t.screen, /session ended \(closed, exit \d+\)/, "the attached client's end line")
      const after = JSON.parse((yield* client(["box-1", "--list-sessions", "--json"])).stdout)
      assert.deepStrictEqual(after.sessions, [])

      // $ cmdop connect box-1 --kill-session <id> --json     (the same, from connect's own flags; now gone)
      const again = yield* client(["box-1", "--kill-session", sessionId, "--json"])
      assert.strictEqual(again.code, 255)
      assert.include(again.stderr, `no session ${sessionId} on box-1`)
      assert.include(JSON.parse(again.stdout).error, `no session ${sessionId} on box-1`)
    })
  )
})
