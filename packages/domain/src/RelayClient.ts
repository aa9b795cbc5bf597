/**
 * The client side of a relay, as the CLI and embedding programs use it: who am I, list machines, resolve a name,
 * run a command. `layerGrpc` (in `@cmdop/protocol`) talks to a relay over gRPC; the in-process layer (in
 * `@cmdop/relay`) calls a relay core directly. Both pass one contract suite.
 *
 * `exec` is a `Stream` of events: `Started` first, then `Stdout`/`Stderr` chunks as they come, then exactly one
 * `Exit`, then the end. Interrupting the stream (or ending the scope that consumes it) kills the remote process.
 */
import type { ApprovalPending } from "./AgentLink.js"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { AccessError } from "./AccessError.js"
import type { Machine } from "./Machine.js"
import type { MachineError } from "./MachineError.js"
import type { RelayError } from "./RelayError.js"
import type { MintedShare, ShareLink, ShareListPage, SharePage } from "./ShareLink.js"

/** Everything a relay call can fail with. */
export type RelayCallError = MachineError | AccessError | RelayError

/** Who the relay says the caller is. */
export interface Principal {
  readonly workspaceId: string
  readonly workspaceName: string
  /** `key` (workspace API key), `user` (OAuth login) or `guest` (share link). */
  readonly kind: "key" | "user" | "guest"
  /** A non-secret name: key prefix, user email, share link id. */
  readonly principal: string
  /** For a guest: the one machine the share link reaches. */
  readonly machineId?: string
}

export interface MachineList {
  readonly machines: ReadonlyArray<Machine>
  /** The relay's clock (ms), so heartbeat ages use one clock. */
  readonly now: number
}

export interface ExecRequest {
  /** A machine name, hostname, id, or unique part of one. */
  readonly machine: string
  readonly argv: ReadonlyArray<string>
  /** Run `argv` joined by the remote user's shell instead of directly. */
  readonly shell?: boolean
  /** Milliseconds; 0 or absent: no limit. The remote process tree is killed at the limit. */
  readonly timeoutMs?: number
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
}

export type ExecEvent = Data.TaggedEnum<{
  Started: { readonly machine: Machine; readonly sessionId: string }
  Stdout: { readonly data: Uint8Array }
  Stderr: { readonly data: Uint8Array }
  Exit: {
    readonly exitCode: number
    readonly signal?: string
    readonly timedOut: boolean
    /** Set when the command never ran (not found, not permitted). */
    readonly error?: string
    readonly durationMs: number
  }
}>
export const ExecEvent = Data.taggedEnum<ExecEvent>()

/** What a client asks for when it attaches to an interactive session. */
export interface AttachRequest {
  readonly machine: string
  /** An existing session to join; absent: open a new one. */
  readonly sessionId?: string
  readonly cols: number
  readonly rows: number
  readonly term?: string
  /** For a new session: run this instead of the login shell. */
  readonly command?: ReadonlyArray<string>
  /** For a reconnect: the output offset already seen; the relay resumes exactly there. */
  readonly resumeFrom?: number
}

/** What a client sends into an attached session. */
export type AttachInput = Data.TaggedEnum<{
  Data: { readonly data: Uint8Array }
  Resize: { readonly cols: number; readonly rows: number }
}>
export const AttachInput = Data.taggedEnum<AttachInput>()

export type AttachEvent = Data.TaggedEnum<{
  Attached: {
    readonly machine: Machine
    readonly sessionId: string
    readonly created: boolean
    readonly offset: number
  }
  /** `offset` is the position of `data[0]` in the session's output stream. */
  Output: { readonly offset: number; readonly data: Uint8Array }
  /**
   * The session is over for this client: the shell exited or it was closed (`exitCode`, `signal`), or this client
   * was cut off (`cut`: its share link revoked or expired, its access removed; `exitCode` is 0 and means nothing).
   */
  Ended: { readonly exitCode: number; readonly signal?: string; readonly reason: string; readonly cut?: true }
  /**
   * A line for the person at the terminal, outside the session's output (no offset, never replayed): e.g.
   * `waiting for approval on <machine>…` while the machine's gate holds the session.
   */
  Notice: { readonly text: string }
}>
export const AttachEvent = Data.taggedEnum<AttachEvent>()

/** A live interactive session on a machine. */
export interface PtySession {
  readonly sessionId: string
  readonly command: string
  readonly cols: number
  readonly rows: number
  readonly createdAt: number
  readonly lastActivityAt: number
  readonly viewers: number
  readonly owner: string
}

/**
 * An interactive session ended on request (`killSession`): `ended` false when the agent had not reported the end
 * yet when the relay stopped waiting (the kill goes on); otherwise how it ended.
 */
export interface KilledSession {
  readonly machine: Machine
  readonly sessionId: string
  readonly ended: boolean
  readonly exitCode: number
  readonly signal?: string
  readonly reason: string
}

/** A session held by a machine's gate, waiting for an operator, and the machine's hostname. */
export interface MachineApproval {
  readonly machine: string
  readonly approval: ApprovalPending
}

export class RelayClient extends Context.Tag("@cmdop/domain/RelayClient")<
  RelayClient,
  {
    /** The relay address this client talks to (for messages). */
    readonly server: string
    readonly whoami: Effect.Effect<Principal, RelayCallError>
    readonly listMachines: (options?: { readonly onlineOnly?: boolean }) => Effect.Effect<MachineList, RelayCallError>
    readonly resolveMachine: (query: string) => Effect.Effect<Machine, RelayCallError>
    /**
     * Runs a command. `stdin`, when given, is forwarded with backpressure and its end closes the remote stdin;
     * without it the remote process gets an empty stdin. `signals` (names without SIG: `INT`, `TERM`…) go to the
     * remote command's process group as they come, like a terminal's Ctrl-C.
     */
    readonly exec: (
      request: ExecRequest,
      stdin?: Stream.Stream<Uint8Array>,
      signals?: Stream.Stream<string>
    ) => Stream.Stream<ExecEvent, RelayCallError>
    /**
     * Attaches to an interactive session (a new one unless `sessionId`): `Attached` first, then `Output` from the
     * requested offset, then `Ended` when the session is over. Ending the input stream or interrupting the output
     * detaches and leaves the session running.
     */
    readonly attach: (
      request: AttachRequest,
      input: Stream.Stream<AttachInput>
    ) => Stream.Stream<AttachEvent, RelayCallError>
    readonly listSessions: (
      machine: string
    ) => Effect.Effect<{ readonly machine: Machine; readonly sessions: ReadonlyArray<PtySession> }, RelayCallError>
    /**
     * Ends one live interactive session: the machine kills its shell's whole process tree, and its viewers see it
     * end. A guest may end only the sessions its own link opened; another session fails like an unknown one.
     */
    readonly killSession: (machine: string, sessionId: string) => Effect.Effect<KilledSession, RelayCallError>
    /**
     * Mints a share link for one machine; `ttlSeconds` rounds up to whole hours, 0 = never expires. Its guest
     * reaches only the sessions it opens itself; with `sessionId`, only that one live session of the machine
     * (pair debugging): no new shell, no command.
     */
    readonly createShare: (
      machine: string,
      ttlSeconds: number,
      options?: { readonly sessionId?: string }
    ) => Effect.Effect<MintedShare, RelayCallError>
    /**
     * One page of the workspace's links (of one machine when given), oldest first; `page.after` is the `next` of
     * the previous page. The relay caps the page size (`share list --help` says how).
     */
    readonly listShares: (machine?: string, page?: ShareListPage) => Effect.Effect<SharePage, RelayCallError>
    /**
     * Revokes a link and ends its guests' live sessions at once, on the machine too: `sessionsEnded` says how
     * many (absent: the machine is on another node of a cluster, which ends them), `alreadyRevoked` that it was
     * revoked before.
     */
    readonly revokeShare: (id: string) => Effect.Effect<ShareLink, RelayCallError>
    /** The machines' gates' held sessions (`ask`), oldest first; workspace credentials only. */
    readonly listApprovals: Effect.Effect<ReadonlyArray<MachineApproval>, RelayCallError>
    /** Answers a held session; `forLink` also lets the share link's later asks through. */
    readonly answerApproval: (answer: {
      readonly approvalId: string
      readonly approve: boolean
      readonly forLink: boolean
    }) => Effect.Effect<{ readonly machine: string }, RelayCallError>
  }
>() {}
