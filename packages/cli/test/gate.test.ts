/**
 * The machine's gate end to end, with real processes: a `cmdop relay serve`, an agent daemon started with
 * `--permissions PATH`, the owner's and a guest's CLI as processes, and the operator's `cmdop agent approve` from
 * another process. The file allows guests only `uptime` and `ls *`, asks for `echo *`, and says nothing of shells
 * (so the guest default, deny, decides them); edits are picked up without restarting the agent, and a broken edit
 * keeps the last good policy.
 */
import { assert, describe, it } from "@effect/vitest"
import { eventually, eventuallySync } from "@cmdop/test-helpers/Eventually"
import * as Processes from "@cmdop/testkit/Processes"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { cli } from "./support.js"
import * as Tmux from "./Tmux.js"
import { live } from "./World.js"

const POLICY = `# the e2e gate
default: {key: allow, user: allow, guest: deny}
rules:
  - action: allow
    caller: guest
    mode: exec
    command: ["uptime", "ls *"]
  - action: ask
    caller: guest
    command: "echo *"
`

const REFUSED = "refused by the machine's permissions"

type LiveWorld = Effect.Effect.Success<typeof live>

/**
 * A machine of workspace `workspace` behind a gate: `policy` in its `permissions.yaml`, registered as `hostname`
 * (with `register` added to the command line) and its agent started with it and connected.
 */
const gatedMachine = (
  w: LiveWorld,
  workspace: string,
  hostname: string,
  options: { readonly policy?: string; readonly register?: ReadonlyArray<string> } = {}
) =>
  Effect.gen(function* () {
    const key = yield* w.create(workspace)
    const home = yield* TempHome.make(`cmdop-e2e-gate-${workspace}-`)
    const policyFile = path.join(home, "etc", "permissions.yaml")
    fs.mkdirSync(path.dirname(policyFile), { recursive: true })
    fs.writeFileSync(policyFile, options.policy ?? POLICY)
    const reg = yield* Processes.run(home, [
      "agent",
      "register",
      "--hostname",
      hostname,
      ...(options.register ?? []),
      "-k",
      key,
      "-s",
      w.server
    ])
    assert.strictEqual(reg.code, 0, reg.stderr)
    yield* Processes.daemon(
      home,
      ["agent", "start", "--foreground", "--permissions", policyFile, "-k", key, "-s", w.server],
      /connected to relay/
    )
    return { key, home, policyFile }
  })

describe("the machine's gate end to end (real processes)", () => {
  it.scopedLive(
    "a file invalid since the start: agent start warns, status says its defaults are in force, and they decide",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const key = yield* w.create("acme-broken")
        const home = yield* TempHome.make("cmdop-e2e-gate-broken-")
        const policyFile = path.join(home, ".cmdop", "permissions.yaml")
        const env = { CMDOP_API_KEY: key, CMDOP_SERVER: w.server }
        assert.strictEqual((yield* Processes.run(home, ["agent", "register", "--hostname", "broken"], { env })).code, 0)
        fs.writeFileSync(policyFile, POLICY + "  - action: alow\n")
        const started = yield* Processes.run(home, ["agent", "start"], { env })
        yield* Effect.addFinalizer(() => Effect.ignore(Processes.run(home, ["agent", "stop"])))
        assert.strictEqual(started.code, 0, started.stderr)
        assert.include(started.stderr, `warning: ${policyFile}:11: rules[2].action: "alow" is not valid`)
        assert.include(started.stderr, "the file defaults are in force (keys and users allowed, guests denied)")
        const status = yield* eventually(
          "the gate error in agent status",
          Effect.map(Processes.run(home, ["agent", "status"]), (r) =>
            r.stdout.includes("gate error") ? r.stdout : undefined
          ),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        assert.include(status, "no version of it has loaded yet, so the file defaults are in force")
        assert.notInclude(status, "the last good policy")
        // The defaults decide: the key holder runs, a guest (even for what the file's first rule allows) does not.
        yield* eventually(
          "the machine online",
          Effect.map(w.cli(key, ["exec", "broken", "--", "true"]), (r) => (r.code === 0 ? r : undefined)),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        const token = JSON.parse((yield* w.cli(key, ["share", "broken", "--json"])).stdout).token as string
        const guest = yield* w.bare([
          "connect",
          "--api-key",
          token,
          "--server",
          w.server,
          "exec",
          "broken",
          "--",
          "uptime"
        ])
        assert.strictEqual(guest.code, 126, guest.stderr)
      }),
    60_000
  )

  it.scopedLive(
    "guest link: allowed runs, others refused, shell per the file, ask approved from another terminal, live edits",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const { key, home, policyFile } = yield* gatedMachine(w, "acme", "box")
        const onMachine = (args: ReadonlyArray<string>) => Processes.run(home, ["agent", ...args])

        const minted = yield* w.cli(key, ["share", "box", "--json"])
        assert.strictEqual(minted.code, 0, minted.stderr)
        const token = JSON.parse(minted.stdout).token as string
        const guest = (args: ReadonlyArray<string>) =>
          w.bare(["connect", "--api-key", token, "--server", w.server, ...args])

        const uptime = yield* guest(["exec", "box", "--", "uptime"])
        assert.strictEqual(uptime.code, 0, uptime.stderr)
        assert.match(uptime.stdout, /load average/)
        const ls = yield* guest(["exec", "box", "--", "ls", "/"])
        assert.strictEqual(ls.code, 0, ls.stderr)

        for (const argv of [
          ["cat", "/etc/shadow"],
          ["sh", "-c", "uptime; id"]
        ]) {
          const refused = yield* guest(["exec", "box", "--", ...argv])
          assert.strictEqual(refused.code, 126, `${argv.join(" ")}: ${refused.stderr}`)
          assert.strictEqual(refused.stdout, "")
          assert.include(refused.stderr, `${REFUSED}: not allowed for this link`)
          // A guest never sees the policy or the rule.
          assert.notInclude(refused.stderr, "permissions.yaml")
          assert.notInclude(refused.stderr, "default")
        }
        // The owner's key is allowed by default; a refusal would name the rule.
        const owner = yield* w.cli(key, ["exec", "box", "--", "id"])
        assert.strictEqual(owner.code, 0, owner.stderr)

        // An interactive shell: the file has no shell rule, so the guest default (deny) decides.
        execFileSync("tmux", ["-V"])
        const socket = `cmdop-gate-${process.pid}`
        const shellCommand = `${process.execPath} ${Processes.binPath} connect --api-key ${token} --server ${w.server} box`
        const tmux = (...args: ReadonlyArray<string>) =>
          execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8" })
        yield* Effect.acquireRelease(
          Effect.sync(() =>
            tmux(
              "new-session",
              "-d",
              "-s",
              "g",
              "-x",
              "100",
              "-y",
              "30",
              `env HOME=${w.client} TERM=xterm ${shellCommand}; sleep 60`
            )
          ),
          () => Effect.sync(() => void tmux("kill-server"))
        )
        const screen = yield* eventually(
          "the refused shell",
          Effect.sync(() => {
            const text = tmux("capture-pane", "-p", "-t", "g")
            return text.includes(REFUSED) ? text : undefined
          }),
          { timeout: "20 seconds", interval: "100 millis" }
        )
        assert.notInclude(screen, "permissions.yaml")

        // Ask: the guest's exec waits; an operator on the machine approves it from another process.
        const held = yield* Effect.fork(guest(["exec", "box", "--", "echo", "approved"]))
        const pending = yield* eventually(
          "a pending approval",
          Effect.map(onMachine(["approvals", "--json"]), (r) => JSON.parse(r.stdout).pending?.[0]),
          { timeout: "20 seconds", interval: "100 millis" }
        )
        assert.strictEqual(pending.command, '["echo","approved"]')
        assert.strictEqual(pending.caller_kind, "guest")
        const listed = yield* onMachine(["approvals"])
        assert.include(listed.stdout, pending.id)
        const approved = yield* onMachine(["approve", pending.id])
        assert.strictEqual(approved.code, 0, approved.stderr)
        const ran = yield* Fiber.join(held)
        assert.strictEqual(ran.code, 0, ran.stderr)
        assert.strictEqual(ran.stdout, "approved\n")
        assert.include(ran.stderr, "waiting for approval on box…")
        assert.notInclude(ran.stderr, "approve")

        // Remotely: a workspace key holder answers through the relay, from another terminal, where
        // `approvals --watch --json` reports each request as it comes and again once it is settled.
        const watcher = yield* Processes.daemon(
          w.client,
          ["connect", "approvals", "--watch", "--json"],
          /watching for requests/,
          { env: { CMDOP_API_KEY: key, CMDOP_SERVER: w.server } }
        )
        const humanWatcher = yield* Processes.daemon(
          w.client,
          ["connect", "approvals", "--watch"],
          /watching for requests/,
          { env: { CMDOP_API_KEY: key, CMDOP_SERVER: w.server } }
        )
        const watched = (event: string) =>
          watcher
            .output()
            .split("\n")
            .filter((l) => l.startsWith("{"))
            .map((l) => JSON.parse(l))
            .find((e) => e.event === event)
        const held3 = yield* Effect.fork(guest(["exec", "box", "--", "echo", "remote"]))
        const remote = yield* eventually(
          "the pending approval at the relay",
          Effect.map(w.cli(key, ["approvals", "--json"]), (r) => JSON.parse(r.stdout).approvals?.[0]),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        assert.strictEqual(remote.machine, "box")
        assert.strictEqual(remote.command, '["echo","remote"]')
        const notGuests = yield* guest(["approvals"])
        assert.strictEqual(notGuests.code, 255)
        assert.include(notGuests.stderr, "a share link cannot see approvals")
        // Both watchers poll the relay about once a second: each must have shown the request as pending before it
        // is answered (with a fast CLI, the approval below can come sooner than the watchers' next poll).
        const seenPending = yield* eventuallySync("the watcher's pending line", () => watched("pending"))
        yield* eventuallySync("the human watcher's pending line", () =>
          humanWatcher
            .output()
            .split("\n")
            .find((l) => l.startsWith(`pending  ${remote.id}`))
        )
        const remoteApproved = yield* w.cli(key, ["approve", remote.id])
        assert.strictEqual(remoteApproved.code, 0, remoteApproved.stderr)
        assert.include(remoteApproved.stdout, `approved ${remote.id} on box`)
        const ran3 = yield* Fiber.join(held3)
        assert.strictEqual(ran3.stdout, "remote\n", ran3.stderr)
        assert.strictEqual(seenPending.id, remote.id)
        assert.strictEqual(seenPending.command, '["echo","remote"]')
        const seenSettled = yield* eventuallySync("the watcher's settled line", () => watched("settled"), {
          timeout: "20 seconds"
        })
        assert.deepStrictEqual(seenSettled, { event: "settled", id: remote.id, machine: "box" })
        const humanLines = yield* eventuallySync("the human watcher's lines", () => {
          const lines = humanWatcher.output().split("\n")
          return lines.some((l) => l.startsWith(`settled  ${remote.id}`)) ? lines : undefined
        })
        assert.include(
          humanLines,
          `pending  ${remote.id} on box: guest ${remote.share_id}, exec ["echo","remote"] (${remote.rule}), expires in ${remote.expires_in_s}s — cmdop connect approve ${remote.id} | deny ${remote.id}`.replace(
            /expires in \d+s/,
            humanLines.find((l) => l.startsWith("pending"))?.match(/expires in \d+s/)?.[0] ?? ""
          )
        )
        assert.include(humanLines, `settled  ${remote.id} on box (answered, expired, or its session went away)`)
        yield* humanWatcher.stop("SIGINT").pipe(Effect.timeout("10 seconds"))
        // Ctrl-C ends the watch at once, cleanly.
        yield* watcher.stop("SIGINT").pipe(Effect.timeout("10 seconds"))
        assert.include([0, 130], watcher.child.exitCode ?? (watcher.child.signalCode === "SIGINT" ? 130 : -1))
        const none = yield* w.cli(key, ["approvals", "--json"])
        assert.deepStrictEqual(JSON.parse(none.stdout).approvals, [])

        // A denied ask is refused.
        const held2 = yield* Effect.fork(guest(["exec", "box", "--", "echo", "no"]))
        const pending2 = yield* eventually(
          "a second pending approval",
          Effect.map(onMachine(["approvals", "--json"]), (r) => JSON.parse(r.stdout).pending?.[0]),
          { timeout: "20 seconds", interval: "100 millis" }
        )
        assert.strictEqual((yield* onMachine(["deny", pending2.id])).code, 0)
        const denied = yield* Fiber.join(held2)
        assert.strictEqual(denied.code, 126)
        assert.include(denied.stderr, `${REFUSED}: the request was not approved`)

        // An edit changes the next decision, without restarting the agent.
        fs.writeFileSync(policyFile, POLICY.replace('["uptime", "ls *"]', '["uptime", "ls *", "id"]'))
        yield* eventually(
          "id allowed after the edit",
          Effect.map(guest(["exec", "box", "--", "id"]), (r) => (r.code === 0 ? r : undefined)),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        // A broken edit keeps the last good policy, and `agent status` says so.
        fs.writeFileSync(policyFile, POLICY + "  - action: alow\n")
        const status = yield* eventually(
          "the gate error in agent status",
          Effect.map(onMachine(["status"]), (r) => (r.stdout.includes("gate error") ? r.stdout : undefined)),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        assert.include(status, `${policyFile}:11: rules[2].action: "alow" is not valid`)
        assert.include(status, "the last good policy stays in force")
        const still = yield* guest(["exec", "box", "--", "id"])
        assert.strictEqual(still.code, 0, still.stderr)
        const stillRefused = yield* guest(["exec", "box", "--", "cat", "/etc/shadow"])
        assert.strictEqual(stillRefused.code, 126)

        // A file that asks for guest shells: the guest's terminal says it waits, a workspace key holder approves
        // from another terminal (`cmdop connect approve`), and the shell runs.
        fs.writeFileSync(
          policyFile,
          POLICY.replace('["uptime", "ls *"]', '["uptime", "ls *", "id", "whoami"]') +
            "  - action: ask\n    caller: guest\n    mode: shell\n"
        )
        yield* eventually(
          "the shell-asking file in force",
          Effect.map(guest(["exec", "box", "--", "whoami"]), (r) => (r.code === 0 ? r : undefined)),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        tmux(
          "new-session",
          "-d",
          "-s",
          "g2",
          "-x",
          "100",
          "-y",
          "30",
          `env HOME=${w.client} TERM=xterm ${shellCommand}`
        )
        yield* eventually(
          "the waiting line on the guest's terminal",
          Effect.sync(() =>
            tmux("capture-pane", "-p", "-t", "g2").includes("waiting for approval on box…") ? true : undefined
          ),
          { timeout: "20 seconds", interval: "100 millis" }
        )
        const heldShell = yield* eventually(
          "the held shell at the relay",
          Effect.map(w.cli(key, ["approvals", "--json"]), (r) =>
            (JSON.parse(r.stdout).approvals as ReadonlyArray<{ id: string; mode: string }>).find(
              (a) => a.mode === "shell"
            )
          ),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        const shellApproved = yield* w.cli(key, ["approve", heldShell.id])
        assert.strictEqual(shellApproved.code, 0, shellApproved.stderr)
        yield* eventually(
          "the approved shell answering",
          Effect.sync(() => {
            tmux("send-keys", "-t", "g2", "echo gate-$((6*7))", "Enter")
            return tmux("capture-pane", "-p", "-t", "g2").includes("gate-42") ? true : undefined
          }),
          { timeout: "20 seconds", interval: "500 millis" }
        )

        // The link's own audit at the relay says "denied by gate", never the command's arguments.
        const links = yield* w.cli(key, ["share", "list", "--json"])
        const events = JSON.parse(links.stdout).links[0].events as ReadonlyArray<{ kind: string; detail: string }>
        assert.isTrue(
          events.some((e) => e.detail === "denied by gate"),
          JSON.stringify(events)
        )
        assert.notInclude(JSON.stringify(events), "shadow")
        // The relay knows the machine runs with a gate; a machine without one is named when a link is minted.
        const listed2 = yield* w.cli(key, ["--list", "--json"])
        assert.strictEqual(JSON.parse(listed2.stdout).machines[0].gate_configured, true)
        const boxShare = yield* w.cli(key, ["share", "box"])
        assert.notInclude(boxShare.stderr, "no gate configured")
        yield* w.agent(key, "open-box")
        const openShare = yield* w.cli(key, ["share", "open-box"])
        assert.strictEqual(openShare.code, 0, openShare.stderr)
        assert.include(openShare.stderr, "open-box has no gate configured (no permissions.yaml)")
        // What "any command" means there: the agent's user holds the workspace key, and so would the guest.
        assert.include(openShare.stderr, "as the agent's user, who can read this workspace's key")

        // Every decision is a line of the machine's audit log; the command itself is only a digest.
        const audit = fs
          .readFileSync(path.join(home, ".local", "state", "cmdop", "audit.log"), "utf8")
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line))
          .filter((e) => e.event === "gate")
        const guestLines = audit.filter((e) => e.caller_kind === "guest")
        assert.isTrue(guestLines.some((e) => e.decision === "deny" && e.rule === "default" && e.mode === "exec"))
        assert.isTrue(guestLines.some((e) => e.decision === "deny" && e.mode === "shell"))
        assert.isTrue(guestLines.some((e) => e.decision === "allow" && e.approver?.includes("(on the machine)")))
        assert.isTrue(guestLines.some((e) => e.decision === "allow" && e.approver?.endsWith("(through the relay)")))
        for (const e of guestLines) {
          assert.isNotNull(e.share_id)
          if (e.mode === "exec") assert.match(e.command_digest, /^[0-9a-f]{64}$/)
        }
        assert.notInclude(JSON.stringify(audit), "shadow")
      }),
    300_000
  )

  it.scopedLive(
    "a held exec names its machine by hostname, as the lists do; its client gone, it is no longer pending anywhere",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        // A display name other than the hostname: every line about the machine names it by hostname.
        const { key, home } = yield* gatedMachine(w, "acme-gone", "held-box", { register: ["--name", "Held Box"] })
        const onMachine = (args: ReadonlyArray<string>) => Processes.run(home, ["agent", ...args])
        const token = JSON.parse((yield* w.cli(key, ["share", "held-box", "--json"])).stdout).token as string
        const [machine] = JSON.parse((yield* w.cli(key, ["--list", "--json"])).stdout).machines
        assert.deepStrictEqual([machine.hostname, machine.name], ["held-box", "Held Box"])
        const guestHome = yield* TempHome.make("cmdop-e2e-gate-gone-guest-")
        const atRelay = Effect.map(
          w.cli(key, ["approvals", "--json"]),
          (r) => JSON.parse(r.stdout).approvals as ReadonlyArray<{ id: string; machine: string; command: string }>
        )
        const onTheMachine = Effect.map(
          onMachine(["approvals", "--json"]),
          (r) => JSON.parse(r.stdout).pending as ReadonlyArray<{ id: string }>
        )

        // SIGTERM: the CLI gives up on the call, as at a second Ctrl-C; SIGKILL: its connection just drops.
        for (const how of ["gave up", "killed"] as const) {
          const word = how === "killed" ? "killed" : "terminated"
          const client = yield* Processes.daemon(
            guestHome,
            ["connect", "--api-key", token, "--server", w.server, "exec", "held-box", "--", "echo", word],
            /waiting for approval on/
          )
          assert.include(client.output(), "waiting for approval on held-box…")
          const held = yield* eventually(
            `the ${how} client's request at the relay`,
            Effect.map(atRelay, (l) => l.find((a) => a.command === `["echo","${word}"]`)),
            { timeout: "20 seconds", interval: "200 millis" }
          )
          assert.strictEqual(held.machine, "held-box")
          assert.deepStrictEqual(
            (yield* onTheMachine).map((p) => p.id),
            [held.id]
          )
          yield* client.stop(how === "killed" ? "SIGKILL" : "SIGTERM")
          if (how === "gave up") assert.strictEqual(client.child.exitCode, 143, client.output())
          // Gone at once, not at its expiry a minute later.
          const started = Date.now()
          yield* eventually(
            "nothing pending at the relay",
            Effect.map(atRelay, (l) => (l.length === 0 ? true : undefined)),
            { timeout: "20 seconds", interval: "100 millis" }
          )
          yield* eventually(
            "nothing pending on the machine",
            Effect.map(onTheMachine, (l) => (l.length === 0 ? true : undefined)),
            { timeout: "20 seconds", interval: "100 millis" }
          )
          assert.isBelow(Date.now() - started, 15_000)
          const late = yield* w.cli(key, ["approve", held.id])
          assert.strictEqual(late.code, 255, late.stdout)
          assert.include(late.stderr, `no pending approval ${held.id}`)
          const lateOnMachine = yield* onMachine(["approve", held.id])
          assert.notStrictEqual(lateOnMachine.code, 0)
          assert.include(lateOnMachine.stderr, `no request ${held.id} waits for approval`)
        }

        // Neither command ran: the machine's audit has their asks, and no session of theirs opened.
        const audit = fs
          .readFileSync(path.join(home, ".local", "state", "cmdop", "audit.log"), "utf8")
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line))
        assert.deepStrictEqual(
          audit.filter((e) => e.event === "gate").map((e) => e.decision),
          ["ask", "ask"]
        )
        assert.isUndefined(audit.find((e) => e.event === "session_open"))
      }),
    120_000
  )

  it.scopedLive(
    "one Ctrl-C while an exec, a new shell or a join waits for approval withdraws it: one line, exit 130, nothing pending, nothing ran",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const { key, home } = yield* gatedMachine(w, "acme-withdraw", "wd-box", {
          policy:
            POLICY +
            "  - action: ask\n    caller: guest\n    mode: shell\n  - action: ask\n    caller: guest\n    mode: attach\n"
        })
        const token = JSON.parse((yield* w.cli(key, ["share", "wd-box", "--json"])).stdout).token as string
        const guestHome = yield* TempHome.make("cmdop-e2e-gate-withdraw-guest-")
        const atRelay = Effect.map(
          w.cli(key, ["approvals", "--json"]),
          (r) => JSON.parse(r.stdout).approvals as ReadonlyArray<{ id: string; mode: string; command: string }>
        )
        const onTheMachine = Effect.map(
          Processes.run(home, ["agent", "approvals", "--json"]),
          (r) => JSON.parse(r.stdout).pending as ReadonlyArray<{ id: string }>
        )
        /** Nothing pending at the relay and on the machine, already when the client has ended (not a moment later). */
        const noneLeft = (id: string) =>
          Effect.gen(function* () {
            assert.deepStrictEqual(yield* atRelay, [])
            assert.deepStrictEqual(yield* onTheMachine, [])
            const late = yield* w.cli(key, ["approve", id])
            assert.strictEqual(late.code, 255, late.stdout)
            assert.include(late.stderr, `no pending approval ${id}`)
          })

        // $ cmdop connect exec wd-box -- echo withdrawn      (waiting for approval on wd-box…)  ^C
        const client = yield* Processes.daemon(
          guestHome,
          ["connect", "--api-key", token, "--server", w.server, "exec", "wd-box", "--", "echo", "withdrawn"],
          /waiting for approval on wd-box…/
        )
        const heldExec = yield* eventually(
          "the held exec at the relay",
          Effect.map(atRelay, (l) => l[0]),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        assert.strictEqual(heldExec.command, '["echo","withdrawn"]')
        // One SIGINT, as a terminal sends on Ctrl-C; the CLI must end by itself, well before the request's expiry.
        client.child.kill("SIGINT")
        const code = yield* eventuallySync("the CLI's exit", () => client.child.exitCode ?? undefined, {
          timeout: "15 seconds"
        })
        assert.strictEqual(code, 130, client.output())
        const lines = client.output().trimEnd().split("\n")
        assert.deepStrictEqual(lines, [
          "waiting for approval on wd-box…",
          "cmdop: withdrew the request waiting for approval on wd-box (SIGINT); nothing ran"
        ])
        yield* noneLeft(heldExec.id)

        // A new shell the file asks about: Ctrl-C on the waiting terminal withdraws it too.
        const shell = yield* Tmux.terminal(
          "withdraw",
          `${process.execPath} ${Processes.binPath} connect --api-key ${token} --server ${w.server} wd-box; echo "exit=$?"`,
          { HOME: guestHome, PATH: process.env.PATH ?? "/usr/bin:/bin", TERM: "xterm-256color" }
        )
        yield* Tmux.waitFor(shell.screen, /waiting for approval on wd-box…/, "the waiting line on the guest's terminal")
        const heldShell = yield* eventually(
          "the held shell at the relay",
          Effect.map(atRelay, (l) => l.find((a) => a.mode === "shell")),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        shell.send("C-c")
        const screen = yield* Tmux.waitFor(shell.screen, /exit=\d+/, "the CLI's exit on the guest's terminal")
        // One line, the last before the CLI's exit.
        assert.include(
          screen,
          "\ncmdop: withdrew the request waiting for approval on wd-box (Ctrl-C); nothing ran\nexit=130"
        )
        assert.notInclude(screen, "session ended")
        yield* noneLeft(heldShell.id)

        // Joining a live session the file asks about: its terminal is not raw yet while the check is held.
        const owners = yield* Tmux.terminal(
          "withdraw-owner",
          `${process.execPath} ${Processes.binPath} connect wd-box`,
          Tmux.terminalEnv(w, key)
        )
        yield* Tmux.waitFor(owners.screen, /attached to wd-box/, "the owner's shell")
        const [live1] = JSON.parse((yield* w.cli(key, ["sessions", "wd-box", "--json"])).stdout).sessions
        const joinToken = JSON.parse(
          (yield* w.cli(key, ["share", "wd-box", "--session", live1.session_id, "--json"])).stdout
        ).token as string
        const joiner = yield* Tmux.terminal(
          "withdraw-join",
          `${process.execPath} ${Processes.binPath} connect --api-key ${joinToken} --server ${w.server} wd-box --session ${live1.session_id}; echo "exit=$?"`,
          { HOME: guestHome, PATH: process.env.PATH ?? "/usr/bin:/bin", TERM: "xterm-256color" }
        )
        yield* Tmux.waitFor(
          joiner.screen,
          /waiting for approval on wd-box…/,
          "the waiting line on the joiner's terminal"
        )
        const heldJoin = yield* eventually(
          "the held attach at the relay",
          Effect.map(atRelay, (l) => l.find((a) => a.mode === "attach")),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        joiner.send("C-c")
        const joinScreen = yield* Tmux.waitFor(joiner.screen, /exit=\d+/, "the joiner's exit")
        assert.include(joinScreen, "\ncmdop: withdrew the request waiting for approval on wd-box (Ctrl-C)\nexit=130")
        // The owner's shell goes on, without the guest.
        owners.type("echo still-$((6*7))\r")
        yield* Tmux.waitFor(owners.screen, /still-42/, "the owner's shell answering")
        assert.strictEqual(
          JSON.parse((yield* w.cli(key, ["sessions", "wd-box", "--json"])).stdout).sessions[0].viewers,
          1
        )
        yield* noneLeft(heldJoin.id)

        // Nothing ran: the machine's audit has the two asks, and no session of theirs opened.
        const audit = fs
          .readFileSync(path.join(home, ".local", "state", "cmdop", "audit.log"), "utf8")
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line))
        assert.deepStrictEqual(
          audit.filter((e) => e.event === "gate" && e.caller_kind === "guest").map((e) => [e.mode, e.decision]),
          [
            ["exec", "ask"],
            ["shell", "ask"],
            ["attach", "ask"]
          ]
        )
        // The owner's shell is the one session that opened.
        assert.deepStrictEqual(
          audit.filter((e) => e.event === "session_open").map((e) => [e.caller_kind, e.mode]),
          [["key", "pty"]]
        )
      }),
    120_000
  )

  it.scoped("without a permissions.yaml, agent status says no gate is configured; check and explain work offline", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-gate-status-")
      const status = yield* cli(home, ["agent", "status"])
      assert.strictEqual(status.code, 0, status.stderr)
      assert.match(status.stdout, /gate\s+no gate configured: keys, users and guests allowed exec and shell/)
      const json = yield* cli(home, ["agent", "status", "--json"])
      assert.strictEqual(JSON.parse(json.stdout).gate.configured, false)

      fs.mkdirSync(path.join(home, ".cmdop"), { recursive: true })
      fs.writeFileSync(path.join(home, ".cmdop", "permissions.yaml"), POLICY)
      const check = yield* cli(home, ["agent", "permissions", "check"])
      assert.strictEqual(check.code, 0, check.stderr)
      assert.include(check.stdout, "ok, 2 rules; default key allow, user allow, guest deny")
      const explain = yield* cli(home, [
        "agent",
        "permissions",
        "explain",
        "--caller",
        "guest",
        "--",
        "git status; rm -rf ~"
      ])
      assert.strictEqual(explain.code, 0, explain.stderr)
      assert.include(explain.stdout, "decision: DENY")
      const shell = yield* cli(home, [
        "agent",
        "permissions",
        "explain",
        "--caller",
        "guest",
        "--shell",
        "--json",
        "--",
        "uptime; ls -la | echo hi"
      ])
      const decided = JSON.parse(shell.stdout)
      assert.strictEqual(decided.decision, "ask")
      assert.deepStrictEqual(
        decided.parts.map((p: { text: string; decision: string }) => [p.text, p.decision]),
        [
          ["uptime", "allow"],
          ["ls -la", "allow"],
          ["echo hi", "ask"]
        ]
      )
      const floor = yield* cli(home, ["agent", "permissions", "explain", "--caller", "key", "--", "rm", "-rf", "/"])
      assert.include(floor.stdout, "decision: DENY (rule: floor)")
    })
  )
})
