/**
 * Share-link test fixtures: a `ShareService` over a fresh store (memory, a SQLite temp file, or a fresh
 * PostgreSQL schema), with the store at hand to make workspaces and machines behind the service's back.
 */
import { WorkspaceId } from "@cmdop/domain/Machine"
import { ShareService } from "@cmdop/domain/ShareService"
import type { FixtureWorkspace, ShareFixture } from "@cmdop/domain/testing/ShareServiceContract"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { freshPgSchema } from "@cmdop/test-helpers/Postgres"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { randomBytes, randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A temp directory removed when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "cmdop-share-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export type StoreKind = "memory" | "sqlite" | "postgres"

/** A fresh store of the kind, for the life of the scope. */
export const freshStore = (kind: StoreKind): Effect.Effect<RelayStore.RelayStore["Type"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const layer =
      kind === "memory"
        ? RelayStore.layerMemory
        : kind === "sqlite"
          ? RelayStore.layerSqlite({ path: join(yield* tempDir, "relay.db") })
          : RelayStore.layerPostgres({ url: (yield* Effect.orDie(freshPgSchema("cmdop_share"))).url })
    return Context.get(yield* Layer.build(layer).pipe(Effect.orDie), RelayStore.RelayStore)
  })

/** The contract's fixture over `store`, its service living as long as the scope. */
export const fixtureOn = (store: RelayStore.RelayStore["Type"]): Effect.Effect<ShareFixture, never, Scope.Scope> =>
  Effect.gen(function* () {
    const shares = yield* Effect.provideService(ShareServiceLive.make, RelayStore.RelayStore, store)
    const workspace = (machines = 1): Effect.Effect<FixtureWorkspace> =>
      Effect.gen(function* () {
        const { workspace } = yield* store.createWorkspace(WorkspaceName.make(`ws-${randomBytes(4).toString("hex")}`))
        const registered = yield* Effect.forEach(Array.from({ length: machines }), (_, i) =>
          store.registerMachine({
            id: RelayStore.MachineRegistration.fields.id.make(randomUUID()),
            workspaceId: workspace.id,
            hostname: `host-${i}-${randomBytes(3).toString("hex")}`,
            name: `machine-${i}`,
            os: "linux",
            agentVersion: "0.1.0",
            secretHash: randomBytes(32).toString("hex")
          })
        )
        return {
          workspaceId: workspace.id,
          workspaceName: workspace.name,
          machines: registered.map((m) => ({ id: m.id, hostname: m.hostname, workspaceId: m.workspaceId }))
        }
      }).pipe(Effect.orDie)
    return {
      shares,
      workspace,
      rotateWorkspaceKey: (id) =>
        Effect.flatMap(store.getWorkspaceById(WorkspaceId.make(id)), (w) => store.rotateKey(w.name)).pipe(
          Effect.asVoid,
          Effect.orDie
        ),
      removeMachine: (id) => store.removeMachine(RelayStore.MachineRegistration.fields.id.make(id)).pipe(Effect.orDie)
    }
  })

/** A fresh fixture over a fresh store of the kind. */
export const freshFixture = (kind: StoreKind) => Effect.flatMap(freshStore(kind), fixtureOn)

export { ShareService }
