/**
 * Guests get a machine, not the owner's sessions, end to end (issue 9): a real relay on loopback, a real agent
 * daemon, real shells, and the bundled CLI as the guest and the owner would run it. The owner has a shell open;
 * a share-link guest opens its own and starts a long `sleep` in it. The guest's `--list-sessions` shows only its
 * own session (no owner key prefix), joining the owner's shell is refused as if it did not exist, and after
 * `share revoke` (which says it ended one session) no process of the guest's session is left under the agent,
 * while the owner's shell goes on. Then the owner shares that one shell (`share --session`): that link lists it
 * (without the owner's key prefix) and cannot run commands.
 */
import { assert, describe, it } from "@effect/vitest"
import type { AttachEvent, RelayClient } from "@cmdop/domain/RelayClient"
import { AttachInput } from "@cmdop/domain/RelayClient"
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import * as Processes from "@cmdop/testkit/Processes"
import { eventually, eventuallySync } from "@cmdop/test-helpers/Eventually"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { execFileSync } from "node:child_process"

const waitFor = <A>(what: string, probe: () => A | undefined, millis = 15_000): Effect.Effect<A> =>
  eventuallySync(what, probe, { timeout: Duration.millis(millis) }).pipe(Effect.orDieWith((e) => new Error(e.message)))

/** Attaches in the background, collecting every event; `type` sends keystrokes. */
const view = (client: RelayClient["Type"], request: Parameters<RelayClient["Type"]["attach"]>[0]) =>
  Effect.gen(function* () {
    const input = yield* Queue.unbounded<AttachInput>()
    const events: Array<AttachEvent> = []
    const failures: Array<unknown> = []
    yield* client.attach(request, Stream.fromQueue(input)).pipe(
      Stream.runForEach((event) => Effect.sync(() => events.push(event))),
      Effect.catchAll((e) => Effect.sync(() => failures.push(e))),
      Effect.forkScoped
    )
    return {
      events,
      failures,
      type: (text: string) => Queue.offer(input, AttachInput.Data({ data: Buffer.from(text) })).pipe(Effect.asVoid),
      text: () =>
        Buffer.concat(events.flatMap((e) => (e._tag === "Output" ? [Buffer.from(e.data)] : []))).toString("latin1"),
      attached: () => {
        const head = events[0]
        return head?._tag === "Attached" ? head : undefined
      }
    }
  })

/** The processes descended from `root` (this test process runs the agent daemon), as `pid args` lines. */
const descendants = (root: number): ReadonlyArray<{ readonly pid: number; readonly args: string }> => {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" })
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .flatMap((m) => (m ? [{ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }] : []))
  const found: Array<{ pid: number; args: string }> = []
  const walk = (pid: number) => {
    for (const row of rows)
      if (row.ppid === pid) {
        found.push({ pid: row.pid, args: row.args })
        walk(row.pid)
      }
  }
  walk(root)
  return found
}

describe("guest isolation", () => {
  it.scopedLive(
    "a guest sees and joins only its own sessions; revoke kills its shell and everything under it",
    () =>
      Effect.gen(function* () {
        const relay = yield* LoopbackRelay.make()
        const key = yield* relay.createWorkspace("guests")
        yield* relay.startAgent(key, "guest-box")
        yield* relay.waitOnline(key, ["guest-box"])
        const home = yield* TempHome.make("cmdop-guest-cli-")
        const cli = (credential: string, args: ReadonlyArray<string>) =>
          Processes.run(home, ["connect", "--server", relay.address, "--api-key", credential, ...args])

        const owner = yield* relay.client(key)
        const ownerWho = yield* owner.whoami
        const ownerShell = yield* view(owner, { machine: "guest-box", cols: 80, rows: 24, command: ["/bin/sh"] })
        const ownerSession = (yield* waitFor("the owner's shell", ownerShell.attached)).sessionId

        const minted = yield* owner.createShare("guest-box", 3600)
        const guest = yield* relay.client(minted.token)
        const guestShell = yield* view(guest, { machine: "guest-box", cols: 80, rows: 24, command: ["/bin/sh"] })
        const guestSession = (yield* waitFor("the guest's shell", guestShell.attached)).sessionId
        const marker = String(3_000_000 + Math.floor(Math.random() * 6_000_000))
        yield* guestShell.type(`sleep ${marker}\n`)
        const sleeper = yield* waitFor("the guest's sleep under the agent", () =>
          descendants(process.pid).find((p) => p.args === `sleep ${marker}`)
        )

        // The guest's `--list-sessions` (the real CLI): its own session only, and nothing of the owner's.
        const listed = yield* cli(minted.token, ["guest-box", "--list-sessions", "--json"])
        assert.strictEqual(listed.code, 0, listed.stderr)
        const sessions = (JSON.parse(listed.stdout) as { sessions: Array<{ session_id: string; owner: string }> })
          .sessions
        assert.deepStrictEqual(
          sessions.map((s) => [s.session_id, s.owner]),
          [[guestSession, `share ${minted.link.id}`]]
        )
        assert.notInclude(listed.stdout, ownerSession)
        assert.notInclude(listed.stdout, ownerWho.principal)
        const ownerList = yield* cli(key, ["guest-box", "--list-sessions", "--json"])
        assert.include(ownerList.stdout, ownerSession)
        assert.include(ownerList.stdout, guestSession)

        // Joining the owner's shell is refused exactly like a session that does not exist.
        const intruder = yield* view(guest, { machine: "guest-box", sessionId: ownerSession, cols: 80, rows: 24 })
        const nobody = yield* view(guest, { machine: "guest-box", sessionId: "no-such-session", cols: 80, rows: 24 })
        yield* waitFor("both refusals", () =>
          intruder.failures.length + nobody.failures.length === 2 ? true : undefined
        )
        assert.lengthOf(intruder.events, 0)
        const [refused] = intruder.failures as Array<{ _tag: string; message: string }>
        const [absent] = nobody.failures as Array<{ _tag: string; message: string }>
        assert.strictEqual(refused!._tag, "MachineError")
        assert.strictEqual(refused!.message.replace(ownerSession, "X"), absent!.message.replace("no-such-session", "X"))

        // Revoke (the real CLI, with the owner's key): it says what it ended, and it is true on the machine.
        const revoked = yield* cli(key, ["share", "revoke", minted.link.id])
        assert.strictEqual(revoked.code, 0, revoked.stderr)
        assert.include(revoked.stdout, `revoked share link ${minted.link.id} for guest-box; ended 1 guest session`)
        yield* waitFor("no process of the guest's session left", () =>
          descendants(process.pid).some((p) => p.args === `sleep ${marker}` || p.pid === sleeper.pid) ? undefined : true
        )
        yield* waitFor("the guest told why", () =>
          guestShell.events.some((e) => e._tag === "Ended" && e.reason === "share link revoked") ? true : undefined
        )
        // Gone from the relay's list once the agent reported the shell's end (a moment after its processes died:
        // the guest is told at the revocation itself, before the machine has answered).
        yield* eventually(
          "the guest's session gone from the machine's list",
          Effect.map(owner.listSessions("guest-box"), (listed) =>
            listed.sessions.some((x) => x.sessionId === guestSession) ? undefined : true
          ),
          { timeout: "15 seconds", interval: "50 millis" }
        )

        // The owner's shell goes on; revoking again says so.
        yield* ownerShell.type("echo owner-still-here\n")
        yield* waitFor("the owner's shell answers", () =>
          /(?<!echo )owner-still-here\r\n/.test(ownerShell.text()) ? true : undefined
        )
        const again = yield* cli(key, ["share", "revoke", minted.link.id])
        assert.strictEqual(again.code, 0, again.stderr)
        assert.include(again.stdout, "was already revoked")

        // Pair debugging stays an explicit act: the owner shares that one shell (the real CLI, --session).
        const shared = yield* cli(key, ["share", "guest-box", "--session", ownerSession, "--json"])
        assert.strictEqual(shared.code, 0, shared.stderr)
        const pair = JSON.parse(shared.stdout) as { token: string; session_id: string }
        assert.strictEqual(pair.session_id, ownerSession)
        const pairList = yield* cli(pair.token, ["guest-box", "--list-sessions", "--json"])
        assert.strictEqual(pairList.code, 0, pairList.stderr)
        assert.deepStrictEqual(
          (JSON.parse(pairList.stdout) as { sessions: Array<{ session_id: string; owner: string }> }).sessions.map(
            (s) => [s.session_id, s.owner]
          ),
          [[ownerSession, "shared with you"]]
        )
        assert.notInclude(pairList.stdout, ownerWho.principal)
        const pairExec = yield* cli(pair.token, ["exec", "guest-box", "--", "true"])
        assert.notStrictEqual(pairExec.code, 0)
        assert.include(pairExec.stderr, "cannot run commands")
      }),
    { timeout: 60_000 }
  )
})
