/**
 * Joining a live interactive session is the machine's gate's call (mode `attach`), over real gRPC with a real agent
 * daemon: the owner opens a shell and shares that one session (`share --session`); on a machine whose
 * permissions.yaml lets guests exec but not attach, the guest may not join it and is told so in one line, the
 * link's audit at the relay says `denied by gate`, and the owner may rejoin. A file that allows guests to attach
 * lets the guest in.
 */
import { assert, describe, it } from "@effect/vitest"
import type { AttachEvent } from "@cmdop/domain/RelayClient"
import { AttachInput } from "@cmdop/domain/RelayClient"
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
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
})
