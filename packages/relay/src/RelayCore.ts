/**
 * The relay's behaviour, independent of transport: authenticate every call (workspace keys and share-link
 * guests), scope it to its workspace (a guest to its one machine), resolve machines by name, run exec and
 * interactive sessions over the owning agent's stream, mint and revoke share links (revocation and expiry end a
 * guest's sessions at once), and keep machine liveness. The gRPC services (`RelayGrpc`), the browser terminal's
 * WebSocket and the in-process `RelayClient` are thin adapters over this one service; it speaks the domain's
 * agent link (`@cmdop/domain/AgentLink`), never the wire.
 *
 * Where each part lives (`internal/`):
 *  - `tenancy.ts`: workspace scoping, name resolution, the connected machine a session goes to;
 *  - `execBridge.ts`: exec sessions, stdin and output under credit, and how they end;
 *  - `attach.ts`, `ptyViewer.ts`, `ptyState.ts`, `replayRing.ts`: interactive sessions and their viewers;
 *  - `agentConnection.ts`, `agentDispatch.ts`: registration, the agent's stream, its messages;
 *  - `guestAccess.ts`, `guestExpiry.ts`, `guestEnd.ts`: share links and the end of a guest's sessions (on the
 *    machine too); `guestScope.ts`: which sessions a guest reaches;
 *  - `terminalSize.ts`, `exitStatus.ts`: what the relay checks before passing sizes, exit statuses, signals on;
 *  - `liveness.ts`: closing silent connections; `credentialSweep.ts`: ending what a changed login or key held;
 *  - `sessions.ts`: the live state (connections, sessions, viewers).
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import type * as Machine from "@cmdop/domain/Machine"
import type {
  AttachEvent,
  AttachInput,
  AttachRequest,
  ExecEvent,
  ExecRequest,
  KilledSession,
  MachineList,
  Principal,
  PtySession,
  RelayCallError
} from "@cmdop/domain/RelayClient"
import { ShareService } from "@cmdop/domain/ShareService"
import type { MintedShare, ShareLink, ShareListPage, SharePage } from "@cmdop/domain/ShareLink"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as Authenticator from "./Authenticator.js"
import * as KeyVerdicts from "./internal/keyVerdicts.js"
import * as AgentConnection from "./internal/agentConnection.js"
import * as Attach from "./internal/attach.js"
import { type CoreContext, internalError } from "./internal/coreContext.js"
import * as ExecBridge from "./internal/execBridge.js"
import * as Approvals from "./internal/approvals.js"
import * as CredentialSweep from "./internal/credentialSweep.js"
import * as HeartbeatWrites from "./internal/heartbeatWrites.js"
import * as GuestAccess from "./internal/guestAccess.js"
import * as Liveness from "./internal/liveness.js"
import type { MachineOwnership } from "./internal/machineOwnership.js"
import * as SessionKill from "./internal/sessionKill.js"
import { Registry, STOPPING } from "./internal/sessions.js"
import * as Tenancy from "./internal/tenancy.js"
import { RelayStore } from "./store/service.js"

export interface Options {
  /** The address clients use, for messages. */
  readonly server: string
  /** Seconds between agent heartbeats (told to agents in Welcome). Default 30. */
  readonly heartbeatSeconds?: number
  /** A machine whose last heartbeat is older than this is offline. Default 90 s. */
  readonly staleAfter?: Duration.DurationInput
  /** Per-session flow-control window in bytes. Default 8 MiB. */
  readonly window?: number
  /**
   * The base URL share links point at (`<publicUrl>/s/<token>`); a function when it is known only once the HTTP
   * endpoint is bound. Default `http://<server>`.
   */
  readonly publicUrl?: string | (() => string)
  /** How often guests' live sessions are re-checked (expiry, key rotation, revocation elsewhere). Default 5 s. */
  readonly guestSweep?: Duration.DurationInput
  /**
   * How often the credentials behind live sessions and people's agent connections are checked again (an account
   * change or a revoked key reaches live work within this). Default 250 ms with accounts (`oauth`), else 5 s.
   */
  readonly credentialSweep?: Duration.DurationInput
  /** Cluster mode: where agents reach the live nodes, told to each agent in Welcome as a failover hint. */
  readonly relayAddresses?: Effect.Effect<ReadonlyArray<string>>
  /** Checks OAuth access tokens (`cmdop_…`) when the relay has accounts; without it they are unknown keys. */
  readonly oauth?: Authenticator.OAuthAuthenticate
  /** Ownership of people's machines and their moves between workspaces (with `oauth`). */
  readonly ownership?: MachineOwnership
  /**
   * Tells when the store may have changed (see `internal/keyVerdicts.ts`); with it, an accepted API key's verdict
   * is reused until the store changes (at most 2 s). Without it every call checks the key in the store.
   */
  readonly storeVersion?: KeyVerdicts.VersionProbe
  /**
   * Cluster mode: tells when another node may have changed a credential (a counter of the cluster's events). With
   * it, an agent's heartbeat re-check reuses its key's accepted verdict until the next event (at most 2 s): with
   * thousands of agents on one workspace key, a node otherwise asked PostgreSQL for the same key on every heartbeat.
   * Calls are still checked every time.
   */
  readonly recheckVersion?: KeyVerdicts.VersionProbe
}

/** Input of an exec session beyond its start: stdin chunks, then its end. */
export type ExecInput = ExecBridge.ExecInput

/** The machine as registered, and the name of its workspace. */
export type Registered = AgentConnection.Registered

export class RelayCore extends Context.Tag("@cmdop/relay/RelayCore")<
  RelayCore,
  {
    readonly server: string
    /** Live counts for `/metrics`. */
    readonly stats: () => { readonly agents: number; readonly sessions: number; readonly handshakes: number }
    /**
     * The relay is stopping: every agent connection is closed now (its agent reconnects, elsewhere in a cluster),
     * and the machines go offline in one batch of store writes when the core's scope closes, instead of two writes
     * per connection one after another. Call it before the gRPC server shuts down; connections accepted after it
     * are batched too.
     */
    readonly stop: Effect.Effect<void>
    /** Checks a bearer credential (every call), acting in `requestedWorkspace` when a person asks for one. */
    readonly authenticate: (
      credential: Redacted.Redacted<string> | undefined,
      requestedWorkspace?: string
    ) => Effect.Effect<Authenticator.Caller, RelayCallError>
    readonly whoami: (caller: Authenticator.Caller) => Effect.Effect<Principal>
    readonly listMachines: (
      caller: Authenticator.Caller,
      options: { readonly onlineOnly: boolean }
    ) => Effect.Effect<MachineList, RelayCallError>
    readonly resolveMachine: (
      caller: Authenticator.Caller,
      query: string
    ) => Effect.Effect<Machine.Machine, RelayCallError>
    /**
     * Cluster forwarding asks these before the routing table: whether this node holds a machine's agent stream, and
     * the connected machine a query names exactly here (as `caller` may reach it), without reading the store.
     */
    readonly holds: (machineId: string) => boolean
    readonly connectedHere: (caller: Authenticator.Caller, query: string) => Machine.Machine | undefined
    /** Runs a command (see `internal/execBridge.ts` for how a session ends). */
    readonly exec: <E>(
      caller: Authenticator.Caller,
      request: ExecRequest,
      input: Stream.Stream<ExecInput, E> | undefined,
      /** `stdin`: the client sends stdin (default: when `input` is given; else `input` carries signals only). */
      options?: { readonly stdin?: boolean }
    ) => Stream.Stream<ExecEvent, RelayCallError>
    /** `AgentService.Register`: creates or updates the machine in the caller's workspace. */
    readonly register: (
      caller: Authenticator.Caller,
      identity: AgentLink.MachineIdentity
    ) => Effect.Effect<Registered, RelayCallError>
    /**
     * `AgentService.Connect`: `incoming` must start with Hello (`Unreadable` messages are skipped; the caller may be
     * an effect that authenticates it, run first). The returned stream is what the relay sends to the
     * agent (Welcome first); it ends when the agent's stream ends or the relay closes the connection.
     */
    readonly connectAgent: <E>(
      caller: Authenticator.Caller | Effect.Effect<Authenticator.Caller, RelayCallError>,
      incoming: Stream.Stream<AgentLink.AgentMessage | { readonly _tag: "Unreadable" }, E>
    ) => Stream.Stream<AgentLink.RelayMessage, RelayCallError>
    /** Opens or joins an interactive session (see `internal/ptyViewer.ts` for how a viewer ends). */
    readonly attach: (
      caller: Authenticator.Caller,
      request: AttachRequest,
      input: Stream.Stream<AttachInput>
    ) => Stream.Stream<AttachEvent, RelayCallError>
    readonly listSessions: (
      caller: Authenticator.Caller,
      machine: string
    ) => Effect.Effect<
      { readonly machine: Machine.Machine; readonly sessions: ReadonlyArray<PtySession> },
      RelayCallError
    >
    /** Ends one interactive session (a guest: only one its link opened) and says how it ended. */
    readonly killSession: (
      caller: Authenticator.Caller,
      machine: string,
      sessionId: string
    ) => Effect.Effect<KilledSession, RelayCallError>
    /** `options.sessionId`: a link for that one live interactive session only (pair debugging). */
    readonly createShare: (
      caller: Authenticator.Caller,
      machine: string,
      ttlSeconds: number,
      options?: GuestAccess.ShareOptions
    ) => Effect.Effect<MintedShare, RelayCallError>
    /** A page of the workspace's links (the relay's default page size when `page.limit` is absent). */
    readonly listShares: (
      caller: Authenticator.Caller,
      machine: string | undefined,
      page?: ShareListPage
    ) => Effect.Effect<SharePage, RelayCallError>
    /**
     * Revokes a link and ends its guests' sessions on the machine; the answer says how many (`sessionsEnded`) and
     * whether the link was already revoked (`alreadyRevoked`).
     */
    readonly revokeShare: (caller: Authenticator.Caller, id: string) => Effect.Effect<ShareLink, RelayCallError>
    /**
     * Re-checks every live guest's link now and ends the sessions of links no longer valid (what the periodic
     * sweep does), for a change made elsewhere: another relay node, an admin command.
     */
    readonly sweepGuests: Effect.Effect<void>
    /**
     * For a cluster node that revoked the share link `shareId` (already revoked in the shared store): ends its
     * guests' sessions on this node's machines now and answers how many this node ended for it, now or just
     * before on the cluster event (each ended session is counted once, for the first question).
     */
    readonly endRevokedLink: (shareId: string) => Effect.Effect<number>
    /** Re-checks every live credential now (what the credential sweep does), for a change made elsewhere. */
    readonly sweepCredentials: Effect.Effect<void>
    /** The gate's held sessions on the workspace's online machines (workspace credentials only). */
    readonly listApprovals: (
      caller: Authenticator.Caller
    ) => Effect.Effect<ReadonlyArray<Approvals.MachineApproval>, RelayCallError>
    /** Answers one; the approver recorded on the machine is the caller's principal. */
    readonly answerApproval: (
      caller: Authenticator.Caller,
      answer: { readonly approvalId: string; readonly approve: boolean; readonly forLink: boolean }
    ) => Effect.Effect<{ readonly machine: string }, RelayCallError>
  }
>() {}

const DEFAULT_WINDOW = 8 * 1024 * 1024

/** How often agents' heartbeat times are written to the store, in one batch (`heartbeatWrites.ts`). */
const HEARTBEAT_WRITES = "15 seconds"

/** How long a stopping relay waits for its batch of offline writes (a store that does not answer must not hold it). */
const STOP_WRITES = "10 seconds"

/**
 * Builds the core over the `RelayStore` and `ShareService` in context. Every machine starts offline (no agent
 * stream survives a restart); the guest sweep and the liveness check run for the life of the scope.
 */
export const make = (
  options: Options
): Effect.Effect<RelayCore["Type"], never, RelayStore | ShareService | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* RelayStore
    const shares = yield* ShareService
    const server = options.server
    const authenticate = withKeyCache(Authenticator.make(store, shares, server, options.oauth).authenticate, options)
    const ctx: CoreContext = {
      settings: {
        server,
        publicUrl: () => {
          const base = options.publicUrl ?? `http://${server}`
          return (typeof base === "function" ? base() : base).replace(/\/+$/, "")
        },
        heartbeatSeconds: options.heartbeatSeconds ?? 30,
        staleAfterMs: Duration.toMillis(options.staleAfter ?? "90 seconds"),
        maxWindow: options.window ?? DEFAULT_WINDOW,
        ...(options.relayAddresses === undefined ? {} : { relayAddresses: options.relayAddresses })
      },
      store,
      shares,
      registry: new Registry(),
      ...(options.ownership === undefined ? {} : { ownership: options.ownership }),
      authenticate,
      recheck:
        options.recheckVersion === undefined ? authenticate : KeyVerdicts.cached(authenticate, options.recheckVersion)
    }
    yield* store.markAllOffline.pipe(Effect.mapError(internalError(server)), Effect.orDie)

    const tenancy = Tenancy.make(ctx)
    const execBridge = ExecBridge.make(ctx, tenancy)
    const agents = AgentConnection.make(ctx)
    const interactive = Attach.make(ctx, tenancy)
    const guests = GuestAccess.make(ctx, tenancy)
    const approvals = Approvals.make(ctx, tenancy)
    yield* guests.runGuestSweeps(options.guestSweep ?? "5 seconds")
    yield* Liveness.run(ctx.registry, ctx.settings.staleAfterMs)
    yield* HeartbeatWrites.run(ctx.registry, store, HEARTBEAT_WRITES)
    // People's access changes must reach live work within a second; without accounts only keys are watched.
    yield* CredentialSweep.run(
      ctx,
      options.credentialSweep ?? (options.oauth === undefined ? "5 seconds" : "250 millis")
    )

    // A stopping relay's connections left their store writes to this one batch: their last heartbeats, then every
    // machine this relay held goes offline (`markAllOffline`: the lone relay on its store holds them all; a cluster
    // node releases the routes it holds).
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const stopping = ctx.registry.stopping
        if (stopping === undefined) return Effect.void
        const closed = [...stopping.closed, ...ctx.registry.all()]
        return HeartbeatWrites.writeChanged(closed, store).pipe(
          Effect.zipRight(store.markAllOffline),
          Effect.timeout(STOP_WRITES),
          Effect.catchAll((e) => Effect.logWarning(`marking this relay's machines offline failed: ${e}`))
        )
      })
    )

    return RelayCore.of({
      server,
      stats: () => ctx.registry.stats(),
      stop: Effect.suspend(() => {
        ctx.registry.stopping ??= { closed: [] }
        return Effect.forEach(ctx.registry.all(), (conn) => conn.close(STOPPING), { discard: true })
      }),
      authenticate: ctx.authenticate,
      whoami: tenancy.whoami,
      listMachines: tenancy.listMachines,
      resolveMachine: tenancy.resolveMachine,
      holds: (machineId) => ctx.registry.get(machineId) !== undefined,
      connectedHere: (caller, query) => {
        const live = ctx.registry.exact(caller.workspaceId, query)
        return live !== undefined && (caller.machineId === undefined || caller.machineId === live.machineId)
          ? live.machine
          : undefined
      },
      exec: execBridge.exec,
      register: agents.register,
      connectAgent: agents.connectAgent,
      attach: interactive.attach,
      listSessions: interactive.listSessions,
      killSession: SessionKill.make(ctx, tenancy),
      createShare: guests.createShare,
      listShares: guests.listShares,
      revokeShare: guests.revokeShare,
      sweepGuests: guests.sweepGuestsNow,
      endRevokedLink: guests.endRevokedLink,
      sweepCredentials: CredentialSweep.sweep(ctx),
      listApprovals: approvals.listApprovals,
      answerApproval: approvals.answerApproval
    })
  })

/** The store's key check, with accepted keys' verdicts cached while the store is unchanged, when it can tell. */
const withKeyCache = (authenticate: KeyVerdicts.Authenticate, options: Options): KeyVerdicts.Authenticate =>
  options.storeVersion === undefined ? authenticate : KeyVerdicts.cached(authenticate, options.storeVersion)

/** The core over the `RelayStore` and `ShareService` in context; its background checks live as long as the layer. */
export const layer = (options: Options): Layer.Layer<RelayCore, never, RelayStore | ShareService> =>
  Layer.scoped(RelayCore, make(options))
