/**
 * `MachineInfo` on the wire ↔ the domain's `Machine`. A heartbeat time of 0 on the wire means "never".
 */
import { Machine, MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import type { MachineInfo } from "./generated/cmdop/connect/v1/common.js"

export const toWire = (m: Machine): MachineInfo => ({
  id: m.id,
  workspaceId: m.workspaceId,
  hostname: m.hostname,
  name: m.name,
  os: m.os,
  agentVersion: m.agentVersion,
  online: m.online,
  lastHeartbeatAt: m.lastHeartbeatAt ?? 0,
  ...(m.gateConfigured === undefined ? {} : { gateConfigured: m.gateConfigured })
})

/** Trusts the relay's values (they passed its schemas when stored); brands them without re-validating. */
export const fromWire = (m: MachineInfo): Machine =>
  new Machine(
    {
      id: MachineId.make(m.id, { disableValidation: true }),
      workspaceId: WorkspaceId.make(m.workspaceId, { disableValidation: true }),
      hostname: m.hostname,
      name: m.name,
      os: m.os,
      agentVersion: m.agentVersion,
      online: m.online,
      ...(m.lastHeartbeatAt > 0 ? { lastHeartbeatAt: m.lastHeartbeatAt } : {}),
      ...(m.gateConfigured === undefined ? {} : { gateConfigured: m.gateConfigured })
    },
    { disableValidation: true }
  )
