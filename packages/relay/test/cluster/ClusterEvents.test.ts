import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as ClusterEvents from "@cmdop/relay/cluster/ClusterEvents"
import * as ClusterEventsPg from "@cmdop/relay/cluster/ClusterEventsPg"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { randomBytes, randomUUID } from "node:crypto"
import { clusterEventsContract, next, subscribed } from "./ClusterEventsContract.js"
import { freshPgSchema } from "@cmdop/test-helpers/Postgres"

const scope = Effect.runSync(Scope.make())
let url = ""
// Notifications reach the whole database: this run listens on a channel of its own.
const channel = `cmdop_cluster_test_${randomBytes(6).toString("hex")}`
beforeAll(async () => {
  url = (await Effect.runPromise(Scope.extend(freshPgSchema("cmdop_cluster"), scope))).url
})
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const pgEvents = () => ClusterEventsPg.layer({ url: Redacted.make(url), channel, pingEvery: "200 millis" })
/** The relay store on the same schema, built first: the triggers go on its tables. */
const pgStore = () => RelayStore.layerPostgres({ url })

clusterEventsContract("memory", () => ClusterEvents.layerMemory)
clusterEventsContract("postgresql", () => pgEvents().pipe(Layer.provideMerge(pgStore())))

describe("ClusterEvents on PostgreSQL", () => {
  it("a cluster's channel follows its schema: public keeps the default, another gets a plain or digested name", () => {
    assert.strictEqual(ClusterEventsPg.channelFor("public"), ClusterEventsPg.defaultChannel)
    assert.strictEqual(ClusterEventsPg.channelFor("team_a"), "cmdop_cluster_events_team_a")
    const odd = ClusterEventsPg.channelFor("Team A")
    assert.match(odd, /^cmdop_cluster_events_[0-9a-f]{16}$/)
    assert.notStrictEqual(odd, ClusterEventsPg.channelFor("Team B"))
    assert.isAtMost(ClusterEventsPg.channelFor("x".repeat(60)).length, 63)
  })

  it.live(
    "two clusters in two schemas of one database, channels by default: neither hears the other's events",
    () =>
      Effect.gen(function* () {
        const other = yield* freshPgSchema("cmdop_cluster_other")
        const build = (schemaUrl: string) =>
          Layer.build(
            ClusterEventsPg.layer({ url: Redacted.make(schemaUrl), pingEvery: "200 millis" }).pipe(
              Layer.provide(RelayStore.layerPostgres({ url: schemaUrl }))
            )
          )
        const a = Context.get(yield* build(url), ClusterEvents.ClusterEvents)
        const b = Context.get(yield* build(other.url), ClusterEvents.ClusterEvents)
        const heard = yield* subscribed.pipe(Effect.provideService(ClusterEvents.ClusterEvents, b))
        assert.strictEqual((yield* next(heard, "Resync"))._tag, "Resync")
        yield* a.publish(ClusterEvents.MachineMoved.make({ machineId: "m_in_a" }))
        yield* b.publish(ClusterEvents.MachineMoved.make({ machineId: "m_in_b" }))
        // a's notification committed before b's was sent: on a shared channel it would arrive first.
        assert.deepStrictEqual(
          yield* next(heard, "b's own event"),
          ClusterEvents.MachineMoved.make({ machineId: "m_in_b" })
        )
      }).pipe(Effect.scoped),
    20_000
  )

  it.live(
    "the database announces store changes made by any process: a revoked link, a rotated key, a retired signing key",
    () =>
      Effect.gen(function* () {
        const store = yield* RelayStore.RelayStore
        const queue = yield* subscribed
        assert.strictEqual((yield* next(queue, "Resync"))._tag, "Resync")
        const { workspace } = yield* store.createWorkspace(
          WorkspaceName.make(`events-${randomBytes(4).toString("hex")}`)
        )
        const machine = yield* store.registerMachine({
          id: RelayStore.MachineRegistration.fields.id.make(randomUUID()),
          workspaceId: workspace.id,
          hostname: "events-host",
          name: "events-host",
          os: "linux",
          agentVersion: "0.1.0",
          secretHash: randomBytes(32).toString("hex")
        })
        const link = yield* store.createShareLink(
          {
            id: `sh_${randomBytes(6).toString("hex")}`,
            workspaceId: workspace.id,
            machineId: machine.id,
            machineHostname: machine.hostname,
            creator: "key",
            createdAt: 1,
            keyGeneration: 1
          },
          "created"
        )
        yield* store.revokeShareLink(link.id, 2, "revoked")
        assert.deepStrictEqual(
          yield* next(queue, "ShareRevoked"),
          ClusterEvents.ShareRevoked.make({ shareId: link.id })
        )
        // Revoking again changes nothing, and says nothing.
        yield* store.revokeShareLink(link.id, 3, "revoked")
        yield* store.rotateKey(workspace.name)
        assert.deepStrictEqual(
          yield* next(queue, "KeyRetired"),
          ClusterEvents.KeyRetired.make({ workspaceId: workspace.id })
        )
        const kid = `k_${randomBytes(4).toString("hex")}`
        yield* store.addSigningKey({ kid, algorithm: "HS256", material: Redacted.make("x".repeat(43)) } as never)
        yield* store.retireSigningKey(kid)
        assert.deepStrictEqual(yield* next(queue, "SigningKeyRetired"), ClusterEvents.SigningKeyRetired.make({ kid }))
      }).pipe(Effect.scoped, Effect.provide(pgEvents().pipe(Layer.provideMerge(pgStore())))),
    20_000
  )

  it.live(
    "a listening connection killed on the server is replaced, with a Resync, and events flow again",
    () =>
      Effect.gen(function* () {
        const events = yield* ClusterEvents.ClusterEvents
        const queue = yield* subscribed
        assert.strictEqual((yield* next(queue, "Resync"))._tag, "Resync")
        const sql = yield* SqlClient.SqlClient
        const killed = yield* sql<{ readonly pid: number }>`SELECT pg_terminate_backend(pid) AS killed, pid
          FROM pg_stat_activity WHERE datname = current_database() AND query = ${`LISTEN "${channel}"`}`
        assert.isAtLeast(killed.length, 1, "a listening backend to kill")
        assert.strictEqual((yield* next(queue, "Resync after the reconnection"))._tag, "Resync")
        yield* events.publish(ClusterEvents.MachineMoved.make({ machineId: "m_after" }))
        assert.deepStrictEqual(
          yield* next(queue, "an event after the reconnection"),
          ClusterEvents.MachineMoved.make({ machineId: "m_after" })
        )
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Layer.mergeAll(
            pgEvents().pipe(Layer.provide(pgStore())),
            Layer.suspend(() => PgClient.layer({ url: Redacted.make(url) }))
          )
        )
      ),
    20_000
  )
})
