/**
 * The SQL `RelayStore` over any `@effect/sql` client. The statements are portable (SQLite and PostgreSQL run the
 * same text); multi-step operations run in one transaction, so a failure changes nothing. Times are stored as
 * `BIGINT` milliseconds and read back through `int`, because PostgreSQL returns `BIGINT` as a string. Listings
 * are sorted in JavaScript so every database (and the memory layer) yields the same order.
 */
import * as ApiKey from "@cmdop/domain/ApiKey"
import type { MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { ShareEvent, type ShareEventKind } from "@cmdop/domain/ShareLink"
import type { WorkspaceName } from "@cmdop/domain/Workspace"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { migrate } from "./migrations.js"
import {
  compare,
  KeyIdentity,
  MachineRecord,
  machineOrder,
  type NewShareEvent,
  shareEventOrder,
  ShareLinkRecord,
  shareLinkOrder,
  SigningKey,
  signingKeyOrder,
  toMachine,
  WorkspaceRecord
} from "./records.js"
import { type MachineConflict, RelayStoreError } from "./RelayStoreError.js"
import { hashKey, newId } from "./secrets.js"
import { RelayStore } from "./service.js"

interface WorkspaceRow {
  readonly id: string
  readonly name: string
  readonly created_at: unknown
  readonly key_generation: unknown
}

interface MachineRow {
  readonly id: string
  readonly workspace_id: string
  readonly hostname: string
  readonly name: string
  readonly os: string
  readonly agent_version: string
  readonly secret_hash: string
  readonly online: unknown
  readonly last_heartbeat_at: unknown
}

interface SigningKeyRow {
  readonly kid: string
  readonly algorithm: string
  readonly material: string
  readonly created_at: unknown
  readonly retired_at: unknown
}

interface ShareLinkRow {
  readonly id: string
  readonly workspace_id: string
  readonly machine_id: string
  readonly machine_hostname: string
  readonly creator: string
  readonly created_at: unknown
  readonly expires_at: unknown
  readonly key_generation: unknown
  readonly revoked_at: unknown
  readonly last_used_at: unknown
  readonly use_count: unknown
}

interface ShareEventRow {
  readonly seq: unknown
  readonly link_id: string
  readonly kind: string
  readonly detail: string
  readonly at: unknown
}

/** An integer column as a number (PostgreSQL returns `BIGINT` as a string, libSQL may return a bigint). */
const int = (u: unknown): number => (typeof u === "number" ? u : Number(u))
const optionalInt = (u: unknown): number | undefined => (u === null || u === undefined ? undefined : int(u))

const toWorkspace = (row: WorkspaceRow) =>
  new WorkspaceRecord({
    id: row.id as WorkspaceId,
    name: row.name as WorkspaceName,
    createdAt: int(row.created_at),
    keyGeneration: int(row.key_generation)
  })

const toMachineRecord = (row: MachineRow) => {
  const lastHeartbeatAt = optionalInt(row.last_heartbeat_at)
  return new MachineRecord({
    id: row.id as MachineId,
    workspaceId: row.workspace_id as WorkspaceId,
    hostname: row.hostname,
    name: row.name,
    os: row.os,
    agentVersion: row.agent_version,
    secretHash: row.secret_hash,
    online: int(row.online) !== 0,
    ...(lastHeartbeatAt === undefined ? {} : { lastHeartbeatAt })
  })
}

const toSigningKey = (row: SigningKeyRow) => {
  const retiredAt = optionalInt(row.retired_at)
  return new SigningKey({
    kid: row.kid,
    algorithm: row.algorithm,
    material: Redacted.make(row.material),
    createdAt: int(row.created_at),
    ...(retiredAt === undefined ? {} : { retiredAt })
  })
}

/** Stored links with their events (any order; sorted here). */
const toShareLinks = (
  links: ReadonlyArray<ShareLinkRow>,
  events: ReadonlyArray<ShareEventRow>
): Array<ShareLinkRecord> => {
  const byLink = new Map<string, Array<{ readonly seq: number; readonly event: ShareEvent }>>()
  for (const row of events) {
    const list = byLink.get(row.link_id) ?? []
    list.push({
      seq: int(row.seq),
      event: new ShareEvent({ kind: row.kind as ShareEventKind, detail: row.detail, at: int(row.at) })
    })
    byLink.set(row.link_id, list)
  }
  return links
    .map((row) => {
      const optional = {
        expiresAt: optionalInt(row.expires_at),
        revokedAt: optionalInt(row.revoked_at),
        lastUsedAt: optionalInt(row.last_used_at)
      }
      return new ShareLinkRecord({
        id: row.id,
        workspaceId: row.workspace_id,
        machineId: row.machine_id,
        machineHostname: row.machine_hostname,
        creator: row.creator,
        createdAt: int(row.created_at),
        keyGeneration: int(row.key_generation),
        useCount: int(row.use_count),
        ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
        events: (byLink.get(row.id) ?? []).sort(shareEventOrder).map((e) => e.event)
      })
    })
    .sort(shareLinkOrder)
}

/** The driver's error code (SQLSTATE, `SQLITE_…`, `ECONNREFUSED`), which names the problem without any values. */
const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/** A database failure as a store error: the operation, the driver's message and code; never the parameters. */
export const sqlFailure = (operation: string, error: { readonly message: string; readonly cause?: unknown }) => {
  const code = codeOf(error.cause)
  return new RelayStoreError({
    reason: "Sql",
    subject: operation,
    detail: code === undefined ? error.message : `${error.message}, ${code}`
  })
}

const fail = (reason: RelayStoreError["reason"], subject: string, conflict?: MachineConflict) =>
  Effect.fail(new RelayStoreError({ reason, subject, ...(conflict === undefined ? {} : { conflict }) }))

/**
 * Runs the migrations, mapping their failures to `RelayStoreError` (the Migrator turns a failed statement into a
 * defect; it is a store failure to the caller).
 */
export const migrateOrFail: Effect.Effect<void, RelayStoreError, SqlClient.SqlClient> = migrate.pipe(
  Effect.catchAll((error) => Effect.fail(sqlFailure("migrations", error))),
  Effect.catchSomeDefect((defect) =>
    defect instanceof Migrator.MigrationError
      ? Option.some(Effect.fail(sqlFailure("migrations", { message: defect.message, cause: defect.cause })))
      : Option.none()
  ),
  Effect.asVoid
)

/** Builds the SQL store on the ambient client, migrating the schema first. */
export const make: Effect.Effect<RelayStore["Type"], RelayStoreError, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* migrateOrFail

  /** Maps database failures of `operation` to store errors. */
  const guard =
    (operation: string) =>
    <A>(effect: Effect.Effect<A, RelayStoreError | SqlError>): Effect.Effect<A, RelayStoreError> =>
      Effect.mapError(effect, (e) => (e instanceof SqlError ? sqlFailure(operation, e) : e))
  const transaction =
    (operation: string) =>
    <A>(effect: Effect.Effect<A, RelayStoreError | SqlError>): Effect.Effect<A, RelayStoreError> =>
      guard(operation)(sql.withTransaction(effect))

  const workspaceByName = (name: string) =>
    Effect.map(
      sql<WorkspaceRow>`SELECT id, name, created_at, key_generation FROM workspaces WHERE name = ${name}`,
      (rows) => Option.map(Option.fromNullable(rows[0]), toWorkspace)
    )

  const machineById = (id: string) =>
    Effect.map(
      sql<MachineRow>`SELECT id, workspace_id, hostname, name, os, agent_version, secret_hash, online,
        last_heartbeat_at FROM machines WHERE id = ${id}`,
      (rows) => Option.map(Option.fromNullable(rows[0]), toMachineRecord)
    )

  const insertKey = (workspaceId: string, generation: number, now: number) => {
    const apiKey = ApiKey.generate()
    return Effect.as(
      sql`INSERT INTO api_keys (id, workspace_id, hash, prefix, generation, created_at, retired_at)
        VALUES (${newId("key")}, ${workspaceId}, ${hashKey(apiKey)}, ${ApiKey.prefixOf(apiKey)}, ${generation},
        ${now}, ${null})`,
      apiKey
    )
  }

  const linkColumns = sql`id, workspace_id, machine_id, machine_hostname, creator, created_at, expires_at,
    key_generation, revoked_at, last_used_at, use_count`
  const eventColumns = sql`e.id AS seq, e.link_id, e.kind, e.detail, e.at`

  const shareLinkById = (id: string) =>
    Effect.gen(function* () {
      const links = yield* sql<ShareLinkRow>`SELECT ${linkColumns} FROM share_links WHERE id = ${id}`
      if (links.length === 0) return Option.none<ShareLinkRecord>()
      const events = yield* sql<ShareEventRow>`SELECT ${eventColumns} FROM share_events e WHERE e.link_id = ${id}`
      return Option.fromNullable(toShareLinks(links, events)[0])
    })

  const insertEvent = (linkId: string, event: NewShareEvent) =>
    sql`INSERT INTO share_events (link_id, kind, detail, at)
      VALUES (${linkId}, ${event.kind}, ${event.detail}, ${event.at})`

  /** Runs `UPDATE share_links … RETURNING id`; fails with `ShareLinkNotFound` when the link does not exist. */
  const linkExists = (id: string) =>
    Effect.flatMap(sql`SELECT id FROM share_links WHERE id = ${id}`, (rows) =>
      rows.length === 0 ? fail("ShareLinkNotFound", id) : Effect.void
    )

  /** Runs an `UPDATE … RETURNING id` (or `DELETE`) on one machine, failing when it matched none. */
  const touchMachine = (operation: string, id: MachineId, statement: Effect.Effect<ReadonlyArray<unknown>, SqlError>) =>
    guard(operation)(
      Effect.flatMap(statement, (rows) => (rows.length === 0 ? fail("MachineNotFound", id) : Effect.void))
    )

  return RelayStore.of({
    createWorkspace: (name) =>
      transaction("createWorkspace")(
        Effect.gen(function* () {
          if (Option.isSome(yield* workspaceByName(name))) return yield* fail("WorkspaceExists", name)
          const now = yield* Clock.currentTimeMillis
          const workspace = new WorkspaceRecord({
            id: newId("ws") as WorkspaceId,
            name,
            createdAt: now,
            keyGeneration: 1
          })
          yield* sql`INSERT INTO workspaces (id, name, created_at, key_generation)
            VALUES (${workspace.id}, ${name}, ${now}, ${1})`
          const apiKey = yield* insertKey(workspace.id, 1, now)
          return { workspace, apiKey }
        })
      ).pipe(
        // A concurrent create of the same name loses on the unique index; report it as what it is.
        Effect.catchIf(
          (e) => e.reason === "Sql",
          (e) =>
            Effect.flatMap(guard("createWorkspace")(workspaceByName(name)), (found) =>
              Option.isSome(found) ? fail("WorkspaceExists", name) : Effect.fail(e)
            )
        )
      ),

    getWorkspace: (name) =>
      guard("getWorkspace")(
        Effect.flatMap(
          workspaceByName(name),
          Option.match({ onNone: () => fail("WorkspaceNotFound", name), onSome: Effect.succeed })
        )
      ),

    getWorkspaceById: (id) =>
      guard("getWorkspaceById")(
        Effect.flatMap(
          sql<WorkspaceRow>`SELECT id, name, created_at, key_generation FROM workspaces WHERE id = ${id}`,
          (rows) => (rows[0] === undefined ? fail("WorkspaceNotFound", id) : Effect.succeed(toWorkspace(rows[0])))
        )
      ),

    listWorkspaces: guard("listWorkspaces")(
      Effect.map(sql<WorkspaceRow>`SELECT id, name, created_at, key_generation FROM workspaces`, (rows) =>
        rows.map(toWorkspace).sort((a, b) => compare(a.name, b.name))
      )
    ),

    rotateKey: (workspaceName) =>
      transaction("rotateKey")(
        Effect.gen(function* () {
          // Bumping the generation first locks the workspace row, so concurrent rotations serialise.
          const bumped = yield* sql<{ readonly id: string; readonly key_generation: unknown }>`UPDATE workspaces
            SET key_generation = key_generation + 1 WHERE name = ${workspaceName} RETURNING id, key_generation`
          const row = bumped[0]
          if (row === undefined) return yield* fail("WorkspaceNotFound", workspaceName)
          const now = yield* Clock.currentTimeMillis
          yield* sql`UPDATE api_keys SET retired_at = ${now} WHERE workspace_id = ${row.id} AND retired_at IS NULL`
          return yield* insertKey(row.id, int(row.key_generation), now)
        })
      ),

    authenticateKey: (rawKey) =>
      guard("authenticateKey")(
        Effect.map(
          sql<{
            readonly key_id: string
            readonly generation: unknown
            readonly workspace_id: string
            readonly workspace_name: string
          }>`SELECT k.id AS key_id, k.generation AS generation, w.id AS workspace_id, w.name AS workspace_name
            FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
            WHERE k.hash = ${hashKey(rawKey)} AND k.retired_at IS NULL AND k.generation = w.key_generation`,
          (rows) =>
            Option.map(
              Option.fromNullable(rows[0]),
              (row) =>
                new KeyIdentity({
                  workspaceId: row.workspace_id as WorkspaceId,
                  workspaceName: row.workspace_name as WorkspaceName,
                  keyId: row.key_id,
                  generation: int(row.generation)
                })
            )
        )
      ),

    currentKeyGeneration: (workspaceId) =>
      guard("currentKeyGeneration")(
        Effect.flatMap(
          sql<{ readonly key_generation: unknown }>`SELECT key_generation FROM workspaces WHERE id = ${workspaceId}`,
          (rows) =>
            rows[0] === undefined ? fail("WorkspaceNotFound", workspaceId) : Effect.succeed(int(rows[0].key_generation))
        )
      ),

    registerMachine: (reg) =>
      transaction("registerMachine")(
        Effect.gen(function* () {
          const workspace = yield* sql`SELECT id FROM workspaces WHERE id = ${reg.workspaceId}`
          if (workspace.length === 0) return yield* fail("WorkspaceNotFound", reg.workspaceId)
          const existing = yield* machineById(reg.id)
          if (Option.isSome(existing) && existing.value.secretHash !== reg.secretHash) {
            return yield* fail("MachineSecretMismatch", reg.id)
          }
          const hostnameKey = reg.hostname.toLowerCase()
          const others = yield* sql<{
            readonly id: string
            readonly hostname_key: string
            readonly name: string
          }>`SELECT id, hostname_key, name FROM machines
            WHERE workspace_id = ${reg.workspaceId} AND id <> ${reg.id}
            AND (hostname_key = ${hostnameKey} OR name = ${reg.name})`
          const byHost = others.find((m) => m.hostname_key === hostnameKey)
          if (byHost !== undefined) {
            return yield* fail("MachineConflict", reg.id, {
              field: "hostname",
              value: reg.hostname,
              machineId: byHost.id
            })
          }
          const byName = others.find((m) => m.name === reg.name)
          if (byName !== undefined) {
            return yield* fail("MachineConflict", reg.id, { field: "name", value: reg.name, machineId: byName.id })
          }
          const now = yield* Clock.currentTimeMillis
          if (Option.isSome(existing)) {
            yield* sql`UPDATE machines SET workspace_id = ${reg.workspaceId}, hostname = ${reg.hostname},
              hostname_key = ${hostnameKey}, name = ${reg.name}, os = ${reg.os}, agent_version = ${reg.agentVersion},
              updated_at = ${now} WHERE id = ${reg.id}`
          } else {
            yield* sql`INSERT INTO machines (id, workspace_id, hostname, hostname_key, name, os, agent_version,
              secret_hash, online, last_heartbeat_at, registered_at, updated_at)
              VALUES (${reg.id}, ${reg.workspaceId}, ${reg.hostname}, ${hostnameKey}, ${reg.name}, ${reg.os},
              ${reg.agentVersion}, ${reg.secretHash}, ${0}, ${null}, ${now}, ${now})`
          }
          return Option.getOrThrow(yield* machineById(reg.id))
        })
      ),

    getMachine: (id) =>
      guard("getMachine")(
        Effect.flatMap(
          machineById(id),
          Option.match({ onNone: () => fail("MachineNotFound", id), onSome: Effect.succeed })
        )
      ),

    listMachines: (workspaceId) =>
      guard("listMachines")(
        Effect.map(
          sql<MachineRow>`SELECT id, workspace_id, hostname, name, os, agent_version, secret_hash, online,
            last_heartbeat_at FROM machines WHERE workspace_id = ${workspaceId}`,
          (rows) => rows.map(toMachineRecord).sort(machineOrder).map(toMachine)
        )
      ),

    markOnline: (id, at) =>
      touchMachine(
        "markOnline",
        id,
        sql`UPDATE machines SET online = ${1}, last_heartbeat_at = ${at} WHERE id = ${id} RETURNING id`
      ),
    heartbeat: (id, at) =>
      touchMachine(
        "heartbeat",
        id,
        sql`UPDATE machines SET online = ${1}, last_heartbeat_at = ${at} WHERE id = ${id} RETURNING id`
      ),
    markOffline: (id) =>
      touchMachine("markOffline", id, sql`UPDATE machines SET online = ${0} WHERE id = ${id} RETURNING id`),
    markAllOffline: guard("markAllOffline")(Effect.asVoid(sql`UPDATE machines SET online = ${0} WHERE online <> ${0}`)),
    removeMachine: (id) => touchMachine("removeMachine", id, sql`DELETE FROM machines WHERE id = ${id} RETURNING id`),

    currentSigningKey: guard("currentSigningKey")(
      Effect.map(
        sql<SigningKeyRow>`SELECT kid, algorithm, material, created_at, retired_at FROM signing_keys
          WHERE retired_at IS NULL`,
        (rows) => Option.fromNullable(rows.map(toSigningKey).sort(signingKeyOrder).at(-1))
      )
    ),
    addSigningKey: (key) =>
      transaction("addSigningKey")(
        Effect.gen(function* () {
          const existing = yield* sql`SELECT kid FROM signing_keys WHERE kid = ${key.kid}`
          if (existing.length > 0) return yield* fail("SigningKeyExists", key.kid)
          const created = new SigningKey({
            kid: key.kid,
            algorithm: key.algorithm,
            material: key.material,
            createdAt: yield* Clock.currentTimeMillis
          })
          yield* sql`INSERT INTO signing_keys (kid, algorithm, material, created_at, retired_at)
            VALUES (${key.kid}, ${key.algorithm}, ${Redacted.value(key.material)}, ${created.createdAt}, ${null})`
          return created
        })
      ),
    retireSigningKey: (kid) =>
      transaction("retireSigningKey")(
        Effect.gen(function* () {
          const existing = yield* sql`SELECT kid FROM signing_keys WHERE kid = ${kid}`
          if (existing.length === 0) return yield* fail("SigningKeyNotFound", kid)
          const now = yield* Clock.currentTimeMillis
          yield* sql`UPDATE signing_keys SET retired_at = ${now} WHERE kid = ${kid} AND retired_at IS NULL`
        })
      ),
    listSigningKeys: guard("listSigningKeys")(
      Effect.map(
        sql<SigningKeyRow>`SELECT kid, algorithm, material, created_at, retired_at FROM signing_keys`,
        (rows) => rows.map(toSigningKey).sort(signingKeyOrder)
      )
    ),

    createShareLink: (link, detail) =>
      transaction("createShareLink")(
        Effect.gen(function* () {
          const existing = yield* sql`SELECT id FROM share_links WHERE id = ${link.id}`
          if (existing.length > 0) return yield* fail("ShareLinkExists", link.id)
          yield* sql`INSERT INTO share_links (id, workspace_id, machine_id, machine_hostname, creator, created_at,
            expires_at, key_generation, revoked_at, last_used_at, use_count, expiry_recorded_at)
            VALUES (${link.id}, ${link.workspaceId}, ${link.machineId}, ${link.machineHostname}, ${link.creator},
            ${link.createdAt}, ${link.expiresAt ?? null}, ${link.keyGeneration}, ${null}, ${null}, ${0}, ${null})`
          yield* insertEvent(link.id, { kind: "created", detail, at: link.createdAt })
          return Option.getOrThrow(yield* shareLinkById(link.id))
        })
      ),
    getShareLink: (id) => guard("getShareLink")(shareLinkById(id)),
    listShareLinks: (workspaceId, machineId) =>
      guard("listShareLinks")(
        Effect.gen(function* () {
          const machine = machineId === undefined ? sql`` : sql`AND machine_id = ${machineId}`
          const links = yield* sql<ShareLinkRow>`SELECT ${linkColumns} FROM share_links
            WHERE workspace_id = ${workspaceId} ${machine}`
          if (links.length === 0) return []
          const events = yield* sql<ShareEventRow>`SELECT ${eventColumns} FROM share_events e
            JOIN share_links l ON l.id = e.link_id WHERE l.workspace_id = ${workspaceId}
            ${machineId === undefined ? sql`` : sql`AND l.machine_id = ${machineId}`}`
          return toShareLinks(links, events)
        })
      ),
    revokeShareLink: (id, at, detail) =>
      transaction("revokeShareLink")(
        Effect.gen(function* () {
          yield* linkExists(id)
          const revoked = yield* sql`UPDATE share_links SET revoked_at = ${at}
            WHERE id = ${id} AND revoked_at IS NULL RETURNING id`
          if (revoked.length > 0) yield* insertEvent(id, { kind: "revoked", detail, at })
          return Option.getOrThrow(yield* shareLinkById(id))
        })
      ),
    recordShareUse: (id, at, detail) =>
      transaction("recordShareUse")(
        Effect.gen(function* () {
          const used = yield* sql`UPDATE share_links SET use_count = use_count + 1, last_used_at = ${at}
            WHERE id = ${id} RETURNING id`
          if (used.length === 0) return yield* fail("ShareLinkNotFound", id)
          yield* insertEvent(id, { kind: "used", detail, at })
        })
      ),
    addShareEvent: (id, event) => transaction("addShareEvent")(Effect.zipRight(linkExists(id), insertEvent(id, event))),
    markShareExpired: (id, event) =>
      transaction("markShareExpired")(
        Effect.gen(function* () {
          yield* linkExists(id)
          const marked = yield* sql`UPDATE share_links SET expiry_recorded_at = ${event.at}
            WHERE id = ${id} AND expiry_recorded_at IS NULL RETURNING id`
          if (marked.length === 0) return false
          yield* insertEvent(id, { ...event, kind: "expired" })
          return true
        })
      )
  })
})
