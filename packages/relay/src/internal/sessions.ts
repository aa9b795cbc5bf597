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
import type { Machine, MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import type { RelayMessage } from "@cmdop/domain/AgentLink"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Queue from "effect/Queue"
import type { Caller } from "../Authenticator.js"
import type { InputCredit } from "./inputCredit.js"
import type { ReplayRing } from "./replayRing.js"
import type * as Redacted from "effect/Redacted"
import { GuestEndLedger } from "./guestEndLedger.js"
import { HandshakeGate } from "./handshakeGate.js"

export type SessionItem =
  { readonly _tag: "Event"; readonly event: ExecEvent } | { readonly _tag: "Lost"; readonly error: RelayCallError }

export interface Session {
  readonly id: string
  /** For a guest's session: the share link it came through (revocation ends it). */
  readonly shareId?: string
  /** For a guest's session: the guest, whose credential is re-checked while the session lives. */
  readonly guest?: Caller
  /** For a person's or a key's session: the caller, re-checked while it lives (`credentialSweep.ts`). */
  readonly holder?: Caller
  readonly items: Queue.Queue<SessionItem>
  readonly stdinCredit: Effect.Semaphore
  exited: boolean
}

/** How an interactive session ended (or why a viewer was cut off). */
export interface PtyEnd {
  readonly exitCode: number
  readonly signal?: string
  readonly reason: string
  /** A viewer cut off (`cutViewers`, a person's access removed), not the session's own end. */
  readonly cut?: true
}

/** A viewer of an interactive session: one attached client. */
export interface Viewer {
  readonly principal: string
  readonly shareId?: string
  /** For a guest: the guest, whose credential is re-checked while attached. */
  readonly guest?: Caller
  /** For a person or a key: the caller, re-checked while attached (`credentialSweep.ts`). */
  readonly holder?: Caller
  /** Completes when this viewer must stop (revoked, expired) — the session itself goes on. */
  readonly cut: Deferred.Deferred<PtyEnd>
  /** Set together with `cut`, so a viewer busy reading output notices without waiting. */
  cutWith?: PtyEnd
}

/** An interactive session on a connected machine, as the relay tracks it. */
export interface PtyState {
  readonly id: string
  readonly owner: string
  /** For a session a guest opened: its share link (only that link's guests see it; revocation kills it). */
  readonly shareId?: string
  readonly command: string
  readonly createdAt: number
  cols: number
  rows: number
  lastActivityAt: number
  readonly ring: ReplayRing
  /**
   * Called (and forgotten) whenever the ring grows, the session ends or a viewer must look again (`ptyState.ts`
   * `notify`): plain callbacks, so a keystroke's echo reaches its viewers without a fiber hop of its own.
   */
  readonly waiters: Set<() => void>
  readonly viewers: Set<Viewer>
  readonly inputCredit: InputCredit
  /** Output bytes taken into the ring but not yet acknowledged to the agent (acks go out in batches). */
  unacked: number
  ended?: PtyEnd
  /** Set once the relay asked the agent to close the session (the reason): its exit is on the way. */
  closing?: string
  /** Set when the machine's stream dropped: viewers fail with it (the session may live on at the agent). */
  lost?: RelayCallError
}

export interface Connection {
  readonly machineId: MachineId
  readonly workspaceId: WorkspaceId
  readonly hostname: string
  /** The machine as registered at the handshake (online), for answers that need no store lookup. */
  readonly machine: Machine
  /** The credential the agent connected with; re-checked at every heartbeat. */
  readonly credential: Redacted.Redacted<string>
  readonly window: number
  readonly send: (message: RelayMessage) => Effect.Effect<void>
  readonly sessions: Map<string, Session>
  readonly ptys: Map<string, PtyState>
  /**
   * Ends the connection (replaced, stale, key revoked, …) for `reason`; the first reason wins. Its cleanup starts at
   * once, on a fiber of its own forked then (an idle connection holds no fiber waiting for this).
   */
  readonly close: (reason: string) => Effect.Effect<void>
  /** Why the connection was closed, once it was. */
  readonly closedWith: () => string | undefined
  lastSeen: number
  /** Whether the machine's agent runs with a permissions.yaml (Hello, then every heartbeat); unknown if unsaid. */
  gateConfigured?: boolean
}

/** Why a stopping relay closes its agents' connections (`RelayCore.stop`). */
export const STOPPING = "the relay is shutting down"

/** Live connections by machine id. A newer connection of the same machine replaces (and closes) the older. */
export class Registry {
  private readonly byMachine = new Map<string, Connection>()
  /** Guest sessions ended lately, per share link (`guestEndLedger.ts`). */
  readonly guestEnds = new GuestEndLedger()
  /** Agent handshakes doing store work at once, and those waiting for a turn (`handshakeGate.ts`). */
  readonly handshakes = new HandshakeGate()
  /**
   * Set once the relay is stopping (`RelayCore.stop`): a closing connection then leaves its store writes (last
   * heartbeat, offline) to one batch at the end, and is kept here for it.
   */
  stopping: { readonly closed: Array<Connection> } | undefined = undefined

  get(id: string): Connection | undefined {
    return this.byMachine.get(id)
  }

  /**
   * The connected machine a query names exactly — its full id, or its hostname (case-insensitive) — within one
   * workspace. These are the first two steps of name resolution and hostnames are unique per workspace, so a hit
   * here is the answer resolution would give, without reading the store.
   */
  exact(workspaceId: string, query: string): Connection | undefined {
    const q = query.trim().toLowerCase()
    for (const conn of this.byMachine.values()) {
      if (conn.workspaceId !== workspaceId) continue
      if (conn.machineId.toLowerCase() === q || conn.hostname.toLowerCase() === q) return conn
    }
    return undefined
  }

  all(): ReadonlyArray<Connection> {
    return [...this.byMachine.values()]
  }

  /** Connected agents, exec sessions in progress over them, and agent handshakes running or waiting. */
  stats(): { readonly agents: number; readonly sessions: number; readonly handshakes: number } {
    let sessions = 0
    for (const conn of this.byMachine.values()) sessions += conn.sessions.size
    return { agents: this.byMachine.size, sessions, handshakes: this.handshakes.size }
  }

  /** Installs `conn`, closing any older connection of the same machine. */
  replace(conn: Connection): Effect.Effect<void> {
    const old = this.byMachine.get(conn.machineId)
    this.byMachine.set(conn.machineId, conn)
    return old ? old.close("replaced by a newer connection of the same machine") : Effect.void
  }

  /** Removes `conn` if it is still the current one; true when it was. */
  removeIfCurrent(conn: Connection): boolean {
    if (this.byMachine.get(conn.machineId) !== conn) return false
    this.byMachine.delete(conn.machineId)
    return true
  }
}
