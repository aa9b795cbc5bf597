/**
 * Machines registered by a person (an OAuth login) belong to them, and only they move them between workspaces.
 * Ownership is the account audit trail's `machine.registered` / `machine.migrated` events (the latest one for a
 * machine names its owner), so it is durable on every account store and visible to the workspace's owners.
 *
 * A move happens when the owner's machine registers in another workspace (the agent re-registers on its stream
 * after the owner switched their active workspace): `authorize` refuses it unless the caller owns the machine
 * (the machine secret was already checked by the store, and `member` or better by the core); `registered` records
 * the registration or the move with who and when. Calls with API keys never come here.
 */
import type { AccountStore, UserId } from "@cmdop/accounts/AccountStore"
import { AccessError } from "@cmdop/domain/AccessError"
import * as Machine from "@cmdop/domain/Machine"
import { RelayError } from "@cmdop/domain/RelayError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Caller } from "../Authenticator.js"

export interface MachineOwnership {
  /** Refuses moving `machineId` out of `from` into the caller's workspace unless the caller owns it. */
  readonly authorize: (
    caller: Caller,
    machineId: string,
    from: string | undefined
  ) => Effect.Effect<void, AccessError | RelayError>
  /** Records the registration (or, when `from` is another workspace, the move). */
  readonly registered: (caller: Caller, machine: Machine.Machine, from: string | undefined) => Effect.Effect<void>
}

export const make = (store: AccountStore["Type"], server: string): MachineOwnership => {
  const internal = (e: { readonly message: string }) =>
    new RelayError({ reason: "Internal", server, detail: e.message })

  /** The user id that last registered or moved the machine, if a person ever did. */
  const ownerOf = (caller: Caller, machineId: string, from: string) =>
    Effect.map(
      store
        .listAudit({ workspaceId: Machine.WorkspaceId.make(from) })
        .pipe(
          Effect.zip(
            caller.userId === undefined ? Effect.succeed([]) : store.listAudit({ userId: caller.userId as UserId })
          ),
          Effect.mapError(internal)
        ),
      ([here, mine]) =>
        [...here, ...mine]
          .filter(
            (e) => e.subject === machineId && (e.action === "machine.registered" || e.action === "machine.migrated")
          )
          .sort((a, b) => a.at - b.at)
          .at(-1)?.actor
    )

  return {
    authorize: (caller, machineId, from) =>
      Effect.gen(function* () {
        if (from === undefined || from === caller.workspaceId) return
        const owner = yield* ownerOf(caller, machineId, from)
        if (owner === undefined || owner !== caller.userId)
          return yield* new AccessError({
            reason: "PermissionDenied",
            detail: `machine ${machineId} belongs to another workspace and was not registered by ${caller.principal}; only its owner can move it`
          })
      }),
    registered: (caller, machine, from) =>
      Effect.gen(function* () {
        const moved = from !== undefined && from !== caller.workspaceId
        if (from !== undefined && !moved) return
        yield* store.appendAudit({
          actor: caller.userId ?? caller.principal,
          action: moved ? "machine.migrated" : "machine.registered",
          subject: machine.id,
          workspaceId: Machine.WorkspaceId.make(caller.workspaceId),
          detail: moved
            ? `machine ${machine.name} moved from workspace ${from} to ${caller.workspaceId} by ${caller.principal}`
            : `machine ${machine.name} registered by ${caller.principal}`,
          at: yield* Clock.currentTimeMillis
        })
      }).pipe(Effect.catchAll((e) => Effect.logWarning(`cannot record the machine in the audit trail: ${e.message}`)))
  }
}
