/**
 * The relay's live state: one `Connection` per online agent stream, each holding the sessions multiplexed over it.
 *
 * A session's events (output, exit, or the loss of its machine) go into an unbounded queue that the client's
 * stream drains; it stays small because the agent may only have `window` unacknowledged bytes per session, and the
 * relay acknowledges a chunk only when the client's stream pulls it. Stdin flows the other way under a semaphore
 * of `window` permits that the agent's acknowledgements replenish.
 */
import type { ExecEvent } from "@cmdop/domain/RelayClient"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import type { MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import type { RelayMessage } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Queue from "effect/Queue"
import type * as Redacted from "effect/Redacted"

export type SessionItem =
  { readonly _tag: "Event"; readonly event: ExecEvent } | { readonly _tag: "Lost"; readonly error: RelayCallError }

export interface Session {
  readonly id: string
  readonly items: Queue.Queue<SessionItem>
  readonly stdinCredit: Effect.Semaphore
  exited: boolean
}

export interface Connection {
  readonly machineId: MachineId
  readonly workspaceId: WorkspaceId
  readonly hostname: string
  /** The credential the agent connected with; re-checked at every heartbeat. */
  readonly credential: Redacted.Redacted<string>
  readonly window: number
  readonly send: (message: RelayMessage) => Effect.Effect<void>
  readonly sessions: Map<string, Session>
  /** Completes when the connection must end (replaced, stale, key revoked). */
  readonly closed: Deferred.Deferred<string>
  lastSeen: number
}

/** Live connections by machine id. A newer connection of the same machine replaces (and closes) the older. */
export class Registry {
  private readonly byMachine = new Map<string, Connection>()

  get(id: string): Connection | undefined {
    return this.byMachine.get(id)
  }

  all(): ReadonlyArray<Connection> {
    return [...this.byMachine.values()]
  }

  /** Installs `conn`, closing any older connection of the same machine. */
  replace(conn: Connection): Effect.Effect<void> {
    const old = this.byMachine.get(conn.machineId)
    this.byMachine.set(conn.machineId, conn)
    return old ? Deferred.succeed(old.closed, "replaced by a newer connection of the same machine") : Effect.void
  }

  /** Removes `conn` if it is still the current one; true when it was. */
  removeIfCurrent(conn: Connection): boolean {
    if (this.byMachine.get(conn.machineId) !== conn) return false
    this.byMachine.delete(conn.machineId)
    return true
  }
}
