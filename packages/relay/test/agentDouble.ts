/**
 * What the RelayCore tests build their hand-driven agents from: a core on the memory store with one workspace, an
 * agent's identity and `Hello`, and the answer an agent without permissions.yaml gives an attach check.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import { randomBytes, randomUUID } from "node:crypto"

/** A relay core on the memory store (for the life of the scope), with workspace "w" and a caller holding its key. */
export const memoryCore = (options: Parameters<typeof RelayCore.layer>[0]) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      RelayCore.layer(options).pipe(
        Layer.provideMerge(ShareServiceLive.layer),
        Layer.provideMerge(RelayStore.layerMemory)
      )
    )
    const core = Context.get(context, RelayCore.RelayCore)
    const store = Context.get(context, RelayStore.RelayStore)
    const created = yield* store.createWorkspace(WorkspaceName.make("w"))
    const caller = yield* core.authenticate(created.apiKey)
    return { core, store, caller }
  })

/** A new machine's identity, as its agent presents it. */
export const agentIdentity = (hostname: string) => ({
  machineId: randomUUID(),
  machineSecret: Redacted.make(randomBytes(32).toString("base64url")),
  hostname,
  name: hostname,
  os: "linux",
  agentVersion: "test"
})

/** A new machine's `Hello` with a 64 KiB window and no PTY sessions. */
export const hello = (hostname: string): AgentLink.Hello => ({
  _tag: "Hello",
  identity: agentIdentity(hostname),
  window: 65536,
  ptySessions: []
})

/**
 * Hands `m` to `onMessage`, except an attach check (joining a live session), which is let through as an agent
 * with no permissions.yaml does: a lone exit 0 for it.
 */
export const admitAttaches =
  <R>(
    toRelay: Queue.Enqueue<AgentLink.AgentMessage>,
    onMessage: (m: AgentLink.RelayMessage) => Effect.Effect<unknown, never, R>
  ) =>
  (m: AgentLink.RelayMessage) =>
    m._tag === "SessionOpen" && m.spec._tag === "Attach"
      ? Queue.offer(toRelay, {
          _tag: "SessionExit",
          sessionId: m.sessionId,
          exitCode: 0,
          timedOut: false,
          durationMs: 0
        })
      : onMessage(m)
