/**
 * Joining a live interactive session is the machine's gate's call (mode `attach`), over real gRPC with a real agent
 * daemon: the owner opens a shell and shares that one session (`share --session`); on a machine whose
 * permissions.yaml lets guests exec but not attach, the guest may not join it and is told so in one line, the
 * link's audit at the relay says `denied by gate`, and the owner may rejoin. A file that allows guests to attach
 * lets the guest in. Under `ask`, a held shell or attach tells its caller `waiting for approval on <machine>…` (a
 * `Notice`, outside the session's output), then the outcome: the session, or the refusal.
 */
import { assert, describe, it } from "@effect/vitest"
import type { AttachEvent } from "@cmdop/domain/RelayClient"
import { AttachInput } from "@cmdop/domain/RelayClient"
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import { eventually, eventuallySync } from "@cmdop/test-helpers/Eventually"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { RelayClient } from "@cmdop/domain/RelayClient"

/** Attaches and collects events until the stream ends; `error` is its failure, if any. */
const view = (client: RelayClient["Type"], request: Parameters<RelayClient["Type"]["attach"]>[0]) =>
  Effect.gen(function* () {
    const input = yield* Queue.unbounded<AttachInput>()
    const seen: { events: Array<AttachEvent>; error: string | undefined; done: boolean } = {
      events: [],
      error: undefined,
      done: false
    }
    yield* client.attach(request, Stream.fromQueue(input)).pipe(
      Stream.runForEach((event) => Effect.sync(() => seen.events.push(event))),
      Effect.catchAll((e) => Effect.sync(() => void (seen.error = e.message))),
      Effect.ensuring(Effect.sync(() => void (seen.done = true))),
      Effect.forkScoped
    )
    return seen
  })

const attached = (seen: { events: ReadonlyArray<AttachEvent> }) => {
  const head = seen.events[0]
  return head?._tag === "Attached" ? head : undefined
}

describe("attach under the gate", () => {
  it.scopedLive(
    "a file without attach for guests keeps a guest out of a shared session; one allowing it lets it in",
    () =>
      Effect.gen(function* () {
        const relay = yield* LoopbackRelay.make()
        const key = yield* relay.createWorkspace("gate")
        yield* relay.startAgent(key, "plain-box", {
          permissions: "default: {guest: deny}\nrules:\n  - {action: allow, caller: guest, mode: exec}\n"
        })
        yield* relay.startAgent(key, "pair-box", {
          permissions: "rules:\n  - {action: allow, caller: guest, mode: attach}\n"
        })
        yield* relay.waitOnline(key, ["plain-box", "pair-box"])
        const owner = yield* relay.client(key)

        for (const [machine, admitted] of [
          ["plain-box", false],
          ["pair-box", true]
        ] as const) {
          const first = yield* view(owner, { machine, cols: 80, rows: 24, command: ["/bin/sh"] })
          const session = yield* eventuallySync("the owner's Attached", () => attached(first))
          const minted = yield* owner.createShare(machine, 3600, { sessionId: session.sessionId })
          const guest = yield* relay.client(minted.token)
          const joined = yield* view(guest, { machine, sessionId: session.sessionId, cols: 80, rows: 24 })
          if (admitted) {
            const head = yield* eventuallySync("the guest's Attached", () => attached(joined))
            assert.strictEqual(head.sessionId, session.sessionId)
          } else {
            yield* eventuallySync("the guest refused", () => (joined.done ? true : undefined))
            assert.strictEqual(joined.error, "refused by the machine's permissions: not allowed for this link")
            assert.isUndefined(attached(joined))
            const { links } = yield* owner.listShares(machine)
            assert.isTrue(links[0]!.events.some((e) => e.detail === "denied by gate"))
            // The owner's key may rejoin its own session.
            const again = yield* view(owner, { machine, sessionId: session.sessionId, cols: 80, rows: 24 })
            yield* eventuallySync("the owner's second Attached", () => attached(again))
          }
        }
      })
  )

  it.scopedLive(
    "an ask holds a new shell and an attach: the caller reads that it waits, then the session or the refusal",
    () =>
      Effect.gen(function* () {
        const relay = yield* LoopbackRelay.make()
        const key = yield* relay.createWorkspace("gate-ask")
        yield* relay.startAgent(key, "ask-box", {
          permissions:
            "default: {guest: deny}\nrules:\n  - {action: ask, caller: guest, mode: shell}\n  - {action: ask, caller: guest, mode: attach}\n"
        })
        yield* relay.waitOnline(key, ["ask-box"])
        const owner = yield* relay.client(key)
        const minted = yield* owner.createShare("ask-box", 3600)
        const guest = yield* relay.client(minted.token)
        const waiting = "waiting for approval on ask-box…"
        const answer = (approve: boolean, mode: string) =>
          Effect.gen(function* () {
            const pending = yield* eventually(
              `the held ${mode}`,
              Effect.map(owner.listApprovals, (all) => all.find((a) => a.approval.mode === mode)),
              { timeout: "20 seconds", interval: "100 millis" }
            )
            yield* owner.answerApproval({ approvalId: pending.approval.approvalId, approve, forLink: false })
          })

        // A new shell: Attached at once, then the notice; approved, the shell's output follows.
        const shell = yield* view(guest, {
          machine: "ask-box",
          cols: 80,
          rows: 24,
          command: ["/bin/sh", "-c", "echo started; sleep 30"]
        })
        yield* eventuallySync("the notice", () => seenNotice(shell, waiting))
        assert.strictEqual(shell.events[0]?._tag, "Attached")
        assert.isFalse(output(shell).includes("started"), "nothing runs while held")
        yield* answer(true, "shell")
        yield* eventuallySync("the approved shell's output", () =>
          output(shell).includes("started") ? true : undefined
        )

        // A refused shell: the notice, then the refusal as the session's end.
        const refused = yield* view(guest, { machine: "ask-box", cols: 80, rows: 24, command: ["/bin/sh"] })
        yield* eventuallySync("the second notice", () => seenNotice(refused, waiting))
        yield* answer(false, "shell")
        const ended = yield* eventuallySync("the refusal", () => refused.events.find((e) => e._tag === "Ended"))
        assert.include(JSON.stringify(ended), "refused by the machine's permissions: the request was not approved")
        assert.notInclude(JSON.stringify(refused.events), "permissions.yaml")

        // Joining the owner's live session: the notice comes before Attached; approved, the guest is in.
        const own = yield* view(owner, { machine: "ask-box", cols: 80, rows: 24, command: ["/bin/sh"] })
        const session = yield* eventuallySync("the owner's Attached", () => attached(own))
        const pair = yield* owner.createShare("ask-box", 3600, { sessionId: session.sessionId })
        const pairGuest = yield* relay.client(pair.token)
        const joined = yield* view(pairGuest, { machine: "ask-box", sessionId: session.sessionId, cols: 80, rows: 24 })
        yield* eventuallySync("the attach notice", () => seenNotice(joined, waiting))
        assert.strictEqual(joined.events[0]?._tag, "Notice")
        yield* answer(true, "attach")
        const head = yield* eventuallySync("the guest's Attached", () =>
          joined.events.find((e) => e._tag === "Attached")
        )
        assert.strictEqual(head._tag === "Attached" && head.sessionId, session.sessionId)
      }),
    60_000
  )
})

const seenNotice = (seen: { events: ReadonlyArray<AttachEvent> }, text: string) =>
  seen.events.some((e) => e._tag === "Notice" && e.text === text) ? true : undefined

const output = (seen: { events: ReadonlyArray<AttachEvent> }) =>
  seen.events.map((e) => (e._tag === "Output" ? new TextDecoder().decode(e.data) : "")).join("")
