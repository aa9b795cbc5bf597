import * as ApiKey from "@cmdop/domain/ApiKey"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import { relayClientContract } from "@cmdop/domain/testing/RelayClientContract"
import * as InProcessAgent from "@cmdop/testkit/InProcessAgent"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import * as RelayClientInProcess from "@cmdop/relay/RelayClientInProcess"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { memoryRelay } from "./memoryRelay.js"

// The in-process twin: RelayCore on the memory store, agents attached through queues.
relayClientContract("in-process", () =>
  Effect.gen(function* () {
    const { context, store } = yield* memoryRelay({ server: "in-process" })
    const a = yield* store.createWorkspace(WorkspaceName.make("team-a"))
    const b = yield* store.createWorkspace(WorkspaceName.make("team-b"))
    const keyA = Redacted.value(a.apiKey)
    const keyB = Redacted.value(b.apiKey)
    const attach = (key: string, hostname: string) =>
      InProcessAgent.attach(key, InProcessAgent.identity({ hostname }), { hostname }).pipe(
        Effect.provide(context),
        Effect.provide(ProcessRunner.layer)
      )
    yield* Effect.forEach(["web-1", "web-2", "db-1"], (h) => attach(keyA, h))
    const old = yield* attach(keyA, "old-1")
    yield* old.stop
    yield* attach(keyB, "b-box")
    const client = (key: string) => Effect.provide(RelayClientInProcess.make(Redacted.make(key)), context)
    const clientA = yield* client(keyA)
    // The relay has seen old-1's stream end (and nothing else is pending) once it lists it offline.
    yield* eventually(
      "old-1 offline",
      Effect.map(clientA.listMachines(), (l) =>
        l.machines.some((m) => m.hostname === "old-1" && !m.online) ? true : undefined
      )
    ).pipe(Effect.orDie)
    return {
      a: clientA,
      b: yield* client(keyB),
      stranger: yield* client(Redacted.value(ApiKey.generate())),
      workspaceA: "team-a",
      workspaceB: "team-b"
    }
  })
)
