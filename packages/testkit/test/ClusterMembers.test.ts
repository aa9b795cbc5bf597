/**
 * Member removal across nodes: two in-process relay nodes (`RelayServer.serve`, cluster mode) on one fresh real
 * PostgreSQL database, a real agent daemon on node 2, and a person signed in (device flow) running a command on it
 * through node 2. Their membership is removed by another process's connection to the shared database (as node 1's
 * cabinet or `cmdop relay user` on the host does): node 2 learns it through LISTEN/NOTIFY and ends the live session
 * within 1 s of the removal's return (measured from its return to the stream's end). With accounts, each node also
 * re-checks its people's sessions every 250 ms, so this bounds the whole path, not NOTIFY alone.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as RelayAccounts from "@cmdop/relay/RelayAccounts"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { eventually } from "@cmdop/test-helpers/Eventually"
import { freshPgDatabase } from "@cmdop/test-helpers/Postgres"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { clusterNode } from "./clusterNode.js"
import { startAgent } from "./daemonAgent.js"

/**
 * A cluster node in this process, on the shared database. No call is forwarded here: the member's session is on the
 * node holding the agent.
 */
const node = (db: Redacted.Redacted<string>, nodeId: string) => clusterNode(db, nodeId)

describe("member removal across cluster nodes", () => {
  it.scopedLive(
    "a removed member's live session on node 2 ends within 1 s of the removal made elsewhere",
    () =>
      Effect.gen(function* () {
        const db = Redacted.make(yield* freshPgDatabase("cmdop_cluster_members"))
        yield* node(db, "n1")
        const two = yield* node(db, "n2")
        // The relay host's view of the shared database: its own connections, as another process would have.
        const host = yield* Layer.build(
          Layer.merge(
            RelayStore.layerPostgres({ url: db }),
            RelayAccounts.servicesLayer(() => "http://relay.test", RelayAccounts.storeLayer({ dataDir: "", db }))
          )
        )
        const store = Context.get(host, RelayStore.RelayStore)
        const accounts = Context.get(host, Accounts)
        const oauth = Context.get(host, OAuthServer)
        const acme = yield* store.createWorkspace(WorkspaceName.make("acme"))
        yield* startAgent(Redacted.value(acme.apiKey), "box", two.grpcAddress)

        const { user } = yield* accounts.addMember({
          actor: "relay-host",
          email: "bob@example.com",
          workspaceId: acme.workspace.id,
          role: "member"
        })
        const started = yield* oauth.deviceAuthorization({ clientId: "cmdop-cli", scope: undefined })
        yield* oauth.approveDevice(user.id, started.user_code)
        const tokens = yield* oauth.token({
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: started.device_code,
          client_id: "cmdop-cli"
        })
        const bob = yield* RelayClientGrpc.make({
          server: two.grpcAddress,
          apiKey: Redacted.make(tokens.access_token),
          workspace: "acme"
        })
        yield* eventually(
          "box online for bob on node 2",
          Effect.map(bob.listMachines({ onlineOnly: true }), ({ machines }) =>
            machines.some((m) => m.hostname === "box") ? true : undefined
          ),
          { timeout: "30 seconds", interval: "50 millis" }
        )

        // Bob's command is running on box (its first output is in) when his membership goes.
        const events = yield* Stream.toPull(bob.exec({ machine: "box", argv: ["sh", "-c", "echo up; sleep 60"] }))
        yield* eventually(
          "bob's command running",
          Effect.map(events, (chunk) => ([...chunk].some((e) => e._tag === "Stdout") ? true : undefined)),
          { timeout: "20 seconds", interval: "10 millis" }
        )
        // A reader already waiting when the removal is made: it notes when (and how) the stream ends.
        const endedAt = yield* Effect.fork(
          Effect.gen(function* () {
            for (;;) yield* events
          }).pipe(
            Effect.flip,
            Effect.map((end) => ({ at: performance.now(), end }))
          )
        )
        yield* accounts.removeMember({ actor: "relay-host", workspaceId: acme.workspace.id, userId: user.id })
        const removed = performance.now()
        const ended = yield* Fiber.join(endedAt).pipe(
          Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("bob's session was not ended") })
        )
        const ms = Math.round(ended.at - removed)
        assert.isTrue(Option.isSome(ended.end), "the session ended with an error, not a clean end")
        process.stderr.write(`[cluster-members] ended with: ${Option.getOrThrow(ended.end).message}\n`)
        process.stderr.write(`[cluster-members] bob's session on node 2 ended ${ms} ms after his removal\n`)
        assert.isAtMost(ms, 1000, `the removed member's session ended ${ms} ms after the removal`)
        // And his next call is refused on either node.
        const refused = yield* Effect.flip(bob.listMachines({ onlineOnly: false }))
        assert.match(refused.message, /member|access|denied|permission|not/i)
      }),
    120_000
  )
})
