/**
 * Machines in the SQL store: registration (with its secret-hash check and per-workspace uniqueness of hostname
 * and name), listing, and the online state the relay keeps as agents come and go.
 */
import type { MachineId } from "@cmdop/domain/Machine"
import * as SqlSchema from "@effect/sql/SqlSchema"
import type * as Statement from "@effect/sql/Statement"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { machineClash, type MachineRecord, machineOrder, type MachineRegistration, toMachine } from "./records.js"
import type { RelayStore } from "./service.js"
import { MachineClashRow, MachineRow } from "./sqlRows.js"
import { fail, type SqlDb, type StatementError } from "./sqlSupport.js"

type Store = RelayStore["Type"]

/** The `gate_configured` column: 0/1, NULL when the agent did not say. */
const gateFlag = (configured: boolean | undefined): number | null =>
  configured === undefined ? null : configured ? 1 : 0

export const make = (db: SqlDb) => {
  const { sql } = db
  const columns = sql`id, workspace_id, hostname, name, os, agent_version, secret_hash, online, last_heartbeat_at, gate_configured`
  const byId = SqlSchema.findOne({
    Request: Schema.String,
    Result: MachineRow,
    execute: (id) => sql`SELECT ${columns} FROM machines WHERE id = ${id}`
  })
  const ofWorkspace = SqlSchema.findAll({
    Request: Schema.String,
    Result: MachineRow,
    execute: (workspaceId) => sql`SELECT ${columns} FROM machines WHERE workspace_id = ${workspaceId}`
  })

  /** Runs an `UPDATE … RETURNING id` (or `DELETE`) on one machine, failing when it matched none. */
  const touch = (operation: string, id: MachineId, statement: Effect.Effect<ReadonlyArray<unknown>, SqlError>) =>
    db.guard(operation)(
      Effect.flatMap(statement, (rows) => (rows.length === 0 ? fail("MachineNotFound", id) : Effect.void))
    )

  return {
    registerMachine: (reg) => db.transaction("registerMachine")(register(db, columns, byId, reg)),
    getMachine: (id) =>
      db.guard("getMachine")(
        Effect.flatMap(byId(id), Option.match({ onNone: () => fail("MachineNotFound", id), onSome: Effect.succeed }))
      ),
    listMachines: (workspaceId) =>
      db.guard("listMachines")(
        Effect.map(ofWorkspace(workspaceId), (rows) => [...rows].sort(machineOrder).map(toMachine))
      ),
    markOnline: (id, at, _connection, gateConfigured) =>
      touch(
        "markOnline",
        id,
        sql`UPDATE machines SET online = ${1}, last_heartbeat_at = ${at}, gate_configured = ${gateFlag(gateConfigured)} WHERE id = ${id} RETURNING id`
      ),
    setGateConfigured: (id, configured) =>
      touch(
        "setGateConfigured",
        id,
        sql`UPDATE machines SET gate_configured = ${gateFlag(configured)} WHERE id = ${id} RETURNING id`
      ),
    heartbeat: (id, at) =>
      touch(
        "heartbeat",
        id,
        sql`UPDATE machines SET online = ${1}, last_heartbeat_at = ${at} WHERE id = ${id} RETURNING id`
      ),
    // One statement for the whole batch (a VALUES list joined to the table), not one per machine: on PostgreSQL
    // each statement is a round trip, and a node with thousands of agents wrote hundreds of them every pass while
    // holding one of its pool's connections. `UPDATE … FROM` and VALUES' `columnN` names are both SQLite's and
    // PostgreSQL's; the cast, because PostgreSQL reads an untyped VALUES parameter as text.
    heartbeats: (beats) => {
      if (beats.length === 0) return Effect.void
      const rows = sql.join(", ", false)(beats.map(([id, at]) => sql`(${id}, ${at})`))
      return db.guard("heartbeats")(
        Effect.asVoid(
          sql`UPDATE machines SET last_heartbeat_at = CAST(v.column2 AS BIGINT) FROM (VALUES ${rows}) AS v WHERE machines.id = v.column1`
        )
      )
    },
    markOffline: (id) => touch("markOffline", id, sql`UPDATE machines SET online = ${0} WHERE id = ${id} RETURNING id`),
    markAllOffline: db.guard("markAllOffline")(
      Effect.asVoid(sql`UPDATE machines SET online = ${0} WHERE online <> ${0}`)
    ),
    removeMachine: (id) => touch("removeMachine", id, sql`DELETE FROM machines WHERE id = ${id} RETURNING id`)
  } satisfies Partial<Store>
}

/** Registers or updates a machine (inside the caller's transaction). */
const register = (
  db: SqlDb,
  columns: Statement.Fragment,
  byId: (id: string) => Effect.Effect<Option.Option<MachineRecord>, StatementError>,
  reg: MachineRegistration
) =>
  Effect.gen(function* () {
    const { sql } = db
    const workspace = yield* sql`SELECT id FROM workspaces WHERE id = ${reg.workspaceId}`
    if (workspace.length === 0) return yield* fail("WorkspaceNotFound", reg.workspaceId)
    const existing = yield* byId(reg.id)
    if (Option.isSome(existing) && existing.value.secretHash !== reg.secretHash)
      return yield* fail("MachineSecretMismatch", reg.id)
    // Keys are lower-cased in JavaScript, not SQL: databases lower-case non-ASCII names differently.
    const hostnameKey = reg.hostname.toLowerCase()
    const nameKey = reg.name.toLowerCase()
    // The machine re-registering as it is (an agent's every reconnect): every registration of another machine
    // since was checked against it, so nothing can clash, and the check is skipped.
    const unchanged =
      Option.isSome(existing) &&
      existing.value.workspaceId === reg.workspaceId &&
      existing.value.hostname === reg.hostname &&
      existing.value.name === reg.name
    if (!unchanged) {
      // Only the machines whose hostname or name has the key of the new hostname or name (two index lookups, not
      // a read of the whole workspace: a handshake of the 10,000th machine read 9,999 rows). `machineClash` then
      // decides among them as it would among all: it matches on exactly these keys.
      const keys = [hostnameKey, nameKey]
      const candidates = yield* SqlSchema.findAll({
        Request: Schema.Void,
        Result: MachineClashRow,
        execute: () => sql`SELECT id, hostname, name FROM machines
          WHERE workspace_id = ${reg.workspaceId} AND id <> ${reg.id}
          AND (hostname_key IN ${sql.in(keys)} OR name_key IN ${sql.in(keys)})`
      })(undefined)
      const conflict = machineClash(reg, candidates)
      if (conflict !== undefined) return yield* fail("MachineConflict", reg.id, conflict)
    }
    // Nothing to write when the agent reports what is stored (every reconnect of an unchanged agent).
    if (unchanged && existing.value.os === reg.os && existing.value.agentVersion === reg.agentVersion)
      return existing.value
    const now = yield* Clock.currentTimeMillis
    // The written row comes back with the statement (`RETURNING`, SQLite and PostgreSQL alike): one round trip
    // fewer per registration than reading it again.
    const written = SqlSchema.findOne({
      Request: Schema.Void,
      Result: MachineRow,
      execute: () =>
        Option.isSome(existing)
          ? sql`UPDATE machines SET workspace_id = ${reg.workspaceId}, hostname = ${reg.hostname},
              hostname_key = ${hostnameKey}, name = ${reg.name}, name_key = ${nameKey}, os = ${reg.os},
              agent_version = ${reg.agentVersion}, updated_at = ${now} WHERE id = ${reg.id} RETURNING ${columns}`
          : sql`INSERT INTO machines (id, workspace_id, hostname, hostname_key, name, name_key, os, agent_version,
              secret_hash, online, last_heartbeat_at, registered_at, updated_at)
              VALUES (${reg.id}, ${reg.workspaceId}, ${reg.hostname}, ${hostnameKey}, ${reg.name}, ${nameKey},
              ${reg.os}, ${reg.agentVersion}, ${reg.secretHash}, ${0}, ${null}, ${now}, ${now}) RETURNING ${columns}`
    })
    return Option.getOrThrow(yield* written(undefined))
  })
