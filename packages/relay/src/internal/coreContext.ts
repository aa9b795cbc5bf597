/**
 * What every part of the relay core shares: its settings, the store and share service it runs on, the live
 * connections, the authenticator, and the mapping of store failures to the errors callers see.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import type { ShareService } from "@cmdop/domain/ShareService"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { Caller } from "../Authenticator.js"
import type { RelayStoreError } from "../store/RelayStoreError.js"
import type { RelayStore } from "../store/service.js"
import type { MachineOwnership } from "./machineOwnership.js"
import type { Registry } from "./sessions.js"

export interface Settings {
  /** The address clients use, for messages. */
  readonly server: string
  /** The base URL share links point at, without a trailing slash. */
  readonly publicUrl: () => string
  readonly heartbeatSeconds: number
  readonly staleAfterMs: number
  /** The largest per-session flow-control window the relay grants. */
  readonly maxWindow: number
  /** Cluster mode: where agents reach the live nodes, told in Welcome (`cluster/ClusterNode.ts`). */
  readonly relayAddresses?: Effect.Effect<ReadonlyArray<string>>
}

export interface CoreContext {
  readonly settings: Settings
  readonly store: RelayStore["Type"]
  readonly shares: ShareService["Type"]
  readonly registry: Registry
  /** People's machines: ownership and moves between workspaces (only when the relay has accounts). */
  readonly ownership?: MachineOwnership
  readonly authenticate: (
    credential: Redacted.Redacted<string> | undefined,
    requestedWorkspace?: string
  ) => Effect.Effect<Caller, RelayCallError>
  /**
   * `authenticate` for an agent's heartbeat, which re-checks the credential its live connection was opened with:
   * it may reuse an accepted key's verdict while the cluster has announced no change (cluster mode, at most 2 s).
   */
  readonly recheck: (credential: Redacted.Redacted<string> | undefined) => Effect.Effect<Caller, RelayCallError>
}

/** A store failure the caller cannot act on. */
export const internalError = (server: string) => (e: RelayStoreError) =>
  new RelayError({ reason: "Internal", server, detail: e.message })

/** A store failure as the caller sees it: conflicts and a wrong machine secret are refusals, the rest internal. */
export const storeError =
  (server: string) =>
  (e: RelayStoreError): RelayCallError =>
    e.reason === "MachineConflict" || e.reason === "MachineSecretMismatch"
      ? new AccessError({ reason: "PermissionDenied", detail: e.message })
      : internalError(server)(e)

/** Who is behind a session, as the machine's gate and audit log see it (never the credential). */
export const linkCaller = (caller: Caller): AgentLink.Caller => ({
  kind: caller.kind,
  principal: caller.principal,
  ...(caller.shareId === undefined ? {} : { shareId: caller.shareId })
})

/** `data` as views of at most `size` bytes (no copies), for sending under a credit window in small steps. */
export const pieces = (data: Uint8Array, size: number): ReadonlyArray<Uint8Array> =>
  Array.from({ length: Math.ceil(data.byteLength / size) }, (_, i) => data.subarray(i * size, (i + 1) * size))

/**
 * `f` for each piece of `data` of at most `size` bytes, in order: nothing for no bytes, and no loop for one piece (a
 * keystroke, a small write of stdin).
 */
export const eachPiece = <E>(
  data: Uint8Array,
  size: number,
  f: (piece: Uint8Array) => Effect.Effect<void, E>
): Effect.Effect<void, E> =>
  data.byteLength === 0
    ? Effect.void
    : data.byteLength <= size
      ? f(data)
      : Effect.forEach(pieces(data, size), f, { discard: true })
