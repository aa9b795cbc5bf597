/**
 * `cmdop connect --list [--online] [--json]`: the machine inventory of the workspace, online state and heartbeat
 * age as the relay's clock sees them.
 */
import { formatAge } from "@cmdop/domain/Age"
import type { Machine } from "@cmdop/domain/Machine"
import * as Effect from "effect/Effect"
import type * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"

const view = (m: Machine, now: number) => ({
  id: m.id,
  name: m.name,
  hostname: m.hostname,
  os: m.os,
  agent_version: m.agentVersion,
  online: m.online,
  last_heartbeat_at: m.lastHeartbeatAt === undefined ? null : new Date(m.lastHeartbeatAt).toISOString(),
  heartbeat_age_s: m.lastHeartbeatAt === undefined ? null : Math.max(0, Math.floor((now - m.lastHeartbeatAt) / 1000)),
  // The machine's gate, while online: false is "no permissions.yaml, no gate configured"; null: unknown.
  gate_configured: m.gateConfigured ?? null
})

export const list = (g: GlobalOptions.Globals, onlineOnly: boolean) =>
  Effect.gen(function* () {
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    const { machines, now } = yield* Remote.withClient(g, (client) => client.listMachines({ onlineOnly }))
    const sorted = [...machines].sort(
      (a, b) => Number(b.online) - Number(a.online) || a.hostname.localeCompare(b.hostname)
    )
    if (g.json) return yield* Output.json({ machines: sorted.map((m) => view(m, now)) })
    if (sorted.length === 0)
      return yield* Output.notice(
        onlineOnly
          ? "no machine of this workspace is online"
          : 'no machines in this workspace yet; on a machine, run "cmdop agent register" then "cmdop agent start"'
      )
    yield* Output.line(
      Output.table(
        ["NAME", "HOSTNAME", "ID", "STATUS", "HEARTBEAT"],
        sorted.map((m) => [
          m.name,
          m.hostname,
          m.id,
          m.online ? "online" : "offline",
          m.lastHeartbeatAt === undefined ? "never" : `${formatAge(now - m.lastHeartbeatAt)} ago`
        ])
      )
    )
  })
