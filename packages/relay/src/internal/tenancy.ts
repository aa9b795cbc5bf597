/**
 * Who may see what: every call is scoped to its caller's workspace, and a guest (share link) to its one machine.
 * Name resolution runs on that view of the store; sessions go to a connected machine, found in memory when the
 * name is exact (the hot path of `exec host …`). A person signed in with `cmdop login` acts with their role in
 * the workspace: a viewer lists only, a member reaches machines and mints and revokes their own share links, an
 * owner does everything (`roleAllows`).
 */
import { AccessError } from "@cmdop/domain/AccessError"
import * as Machine from "@cmdop/domain/Machine"
import { MachineError } from "@cmdop/domain/MachineError"
import type { MachineList, Principal, RelayCallError } from "@cmdop/domain/RelayClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Caller } from "../Authenticator.js"
import { type CoreContext, internalError } from "./coreContext.js"
import type { Connection } from "./sessions.js"

export interface Tenancy {
  readonly whoami: (caller: Caller) => Effect.Effect<Principal>
  readonly listMachines: (
    caller: Caller,
    options: { readonly onlineOnly: boolean }
  ) => Effect.Effect<MachineList, RelayCallError>
  readonly resolveMachine: (caller: Caller, query: string) => Effect.Effect<Machine.Machine, RelayCallError>
  /** The connected machine a session goes to; `MachineError` Offline when it is known but not connected. */
  readonly onlineConnection: (
    caller: Caller,
    query: string
  ) => Effect.Effect<{ readonly machine: Machine.Machine; readonly conn: Connection }, RelayCallError>
  /** Fails for a guest: `what` is something only a workspace credential may do (a person needs `member`). */
  readonly workspaceOnly: (caller: Caller, what: string) => Effect.Effect<void, AccessError>
  /** Fails unless a person's role is at least `minimum` (keys and guests are checked elsewhere). */
  readonly requireRole: (caller: Caller, minimum: "member" | "owner", what: string) => Effect.Effect<void, AccessError>
}

const rank = { viewer: 0, member: 1, owner: 2 } as const

/** Whether a caller's role (absent for keys and guests) is at least `minimum`. */
export const roleAllows = (caller: Caller, minimum: "member" | "owner"): boolean =>
  caller.role === undefined || rank[caller.role] >= rank[minimum]

const requireRole = (caller: Caller, minimum: "member" | "owner", what: string): Effect.Effect<void, AccessError> =>
  roleAllows(caller, minimum)
    ? Effect.void
    : Effect.fail(
        new AccessError({
          reason: "PermissionDenied",
          detail: `a ${caller.role} of workspace ${caller.workspaceName} cannot ${what}; ask one of its owners to make you ${minimum === "owner" ? "an owner" : "a member"}`
        })
      )

export const make = (ctx: CoreContext): Tenancy => {
  const { registry, store } = ctx
  const { server } = ctx.settings

  const machinesOf = (caller: Caller) =>
    Effect.map(store.listMachines(Machine.WorkspaceId.make(caller.workspaceId)), (all) =>
      (caller.machineId === undefined ? all : all.filter((m) => m.id === caller.machineId)).map(withGate)
    ).pipe(Effect.mapError(internalError(server)))

  /**
   * An online machine with what its agent says of its gate, and its last heartbeat as this relay saw it (live
   * state: the store gets heartbeats in batches, `heartbeatWrites.ts`).
   */
  const withGate = (m: Machine.Machine): Machine.Machine => {
    const live = m.online ? registry.get(m.id) : undefined
    if (live === undefined) return m
    const gateConfigured = live.gateConfigured
    return new Machine.Machine({
      ...m,
      lastHeartbeatAt: Math.max(live.lastSeen, m.lastHeartbeatAt ?? 0),
      ...(gateConfigured === undefined ? {} : { gateConfigured })
    })
  }

  const resolveMachine = Effect.fn("RelayCore.resolveMachine")(function* (caller: Caller, query: string) {
    const machines = yield* machinesOf(caller)
    if (caller.kind !== "guest") return yield* Machine.resolve(machines, query)
    // A guest's world is one machine: any other name is refused without saying whether it exists.
    return yield* Machine.resolve(machines, query).pipe(
      Effect.mapError(
        () =>
          new AccessError({
            reason: "PermissionDenied",
            detail: `share link is for machine ${caller.machineHostname ?? caller.machineId}, not ${query}`
          })
      )
    )
  })

  const listMachines = Effect.fn("RelayCore.listMachines")(function* (
    caller: Caller,
    options: { readonly onlineOnly: boolean }
  ) {
    const machines = yield* machinesOf(caller)
    const now = yield* Clock.currentTimeMillis
    return { machines: options.onlineOnly ? machines.filter((m) => m.online) : machines, now }
  })

  // Untraced: it runs on every exec, and a traced function captures a stack trace per call for its span.
  const onlineConnection = Effect.fnUntraced(function* (caller: Caller, query: string) {
    yield* requireRole(caller, "member", "reach machines")
    const live = registry.exact(caller.workspaceId, query)
    if (live && (caller.machineId === undefined || caller.machineId === live.machineId))
      return { machine: live.machine, conn: live }
    const machine = yield* resolveMachine(caller, query)
    const conn = registry.get(machine.id)
    if (!conn || !machine.online)
      return yield* new MachineError({
        reason: "Offline",
        query: machine.hostname,
        candidates: [Machine.candidateOf(machine)],
        now: yield* Clock.currentTimeMillis
      })
    return { machine, conn }
  })

  const whoami = (caller: Caller): Effect.Effect<Principal> =>
    Effect.succeed({
      workspaceId: caller.workspaceId,
      workspaceName: caller.workspaceName,
      kind: caller.kind,
      principal: caller.principal,
      ...(caller.machineId === undefined ? {} : { machineId: caller.machineId })
    })

  const workspaceOnly = (caller: Caller, what: string) =>
    caller.kind === "guest"
      ? Effect.fail(
          new AccessError({
            reason: "PermissionDenied",
            detail: `a share link cannot ${what}; use a workspace API key (share links reach one machine only)`
          })
        )
      : what.startsWith("list")
        ? Effect.void
        : requireRole(caller, "member", what)

  return { whoami, listMachines, resolveMachine, onlineConnection, workspaceOnly, requireRole }
}
