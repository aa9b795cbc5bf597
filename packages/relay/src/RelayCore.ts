/**
 * The relay's behaviour, independent of transport: authenticate every call (workspace keys and share-link
 * guests), scope it to its workspace (a guest to its one machine), resolve machines by name, run exec and
 * interactive sessions over the owning agent's stream, mint and revoke share links (revocation and expiry end a
 * guest's sessions at once), and keep machine liveness. The gRPC services (`RelayGrpc`), the browser terminal's
 * WebSocket and the in-process `RelayClient` are thin adapters over this one service.
 *
 * How an exec session ends:
 *  - the agent reports its exit: the client sees `Exit` and the end of its stream;
 *  - the client goes away (stream interrupted): the agent is told `SessionClose` and kills the process tree;
 *  - the agent's stream drops: the client's stream fails with `RelayError` Unavailable.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import * as Machine from "@cmdop/domain/Machine"
import { MachineError } from "@cmdop/domain/MachineError"
import {
  AttachEvent,
  type AttachInput,
  type AttachRequest,
  ExecEvent,
  type ExecRequest,
  type PtySession,
  type MachineList,
  type Principal,
  type RelayCallError
} from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import { formatInstant, type ShareError } from "@cmdop/domain/ShareError"
import { ShareService } from "@cmdop/domain/ShareService"
import type { MintedShare, ShareLink } from "@cmdop/domain/ShareLink"
import {
  type AgentMessage,
  type MachineIdentity,
  Pipe,
  type RelayMessage
} from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { createHash, randomUUID } from "node:crypto"
import * as Authenticator from "./Authenticator.js"
import * as AgentLink from "./internal/agentLink.js"
import * as Attach from "./internal/attach.js"
import { type Connection, Registry, type Session, type SessionItem } from "./internal/sessions.js"
import { RelayStore } from "./store/service.js"
import { toMachine } from "./store/records.js"
import type { RelayStoreError } from "./store/RelayStoreError.js"

export interface Options {
  /** The address clients use, for messages. */
  readonly server: string
  /** Seconds between agent heartbeats (told to agents in Welcome). Default 30. */
  readonly heartbeatSeconds?: number
  /** A machine whose last heartbeat is older than this is offline. Default 90 s. */
  readonly staleAfter?: Duration.DurationInput
  /** Per-session flow-control window in bytes. Default 2 MiB. */
  readonly window?: number
  /**
   * The base URL share links point at (`<publicUrl>/s/<token>`); a function when it is known only once the HTTP
   * endpoint is bound. Default `http://<server>`.
   */
  readonly publicUrl?: string | (() => string)
  /** How often guests' live sessions are re-checked (expiry, key rotation, revocation elsewhere). Default 5 s. */
  readonly guestSweep?: Duration.DurationInput
}

/** Input of an exec session beyond its start: stdin chunks, then its end. */
export type ExecInput = { readonly _tag: "Stdin"; readonly data: Uint8Array } | { readonly _tag: "Eof" }

export interface Registered {
  readonly machine: Machine.Machine
  readonly workspaceName: string
}

export class RelayCore extends Context.Tag("@cmdop/relay/RelayCore")<
  RelayCore,
  {
    readonly server: string
    /** Live counts for `/metrics`. */
    readonly stats: () => { readonly agents: number; readonly sessions: number }
    /** Checks a bearer credential (every call). */
    readonly authenticate: (
      credential: Redacted.Redacted<string> | undefined
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
    readonly exec: <E>(
      caller: Authenticator.Caller,
      request: ExecRequest,
      input: Stream.Stream<ExecInput, E> | undefined
    ) => Stream.Stream<ExecEvent, RelayCallError>
    /** `AgentService.Register`: creates or updates the machine in the caller's workspace. */
    readonly register: (
      caller: Authenticator.Caller,
      identity: MachineIdentity | undefined
    ) => Effect.Effect<Registered, RelayCallError>
    /**
     * `AgentService.Connect`: `incoming` must start with Hello. The returned stream is what the relay sends to the
     * agent (Welcome first); it ends when the agent's stream ends or the relay closes the connection.
     */
    readonly connectAgent: <E>(
      caller: Authenticator.Caller,
      incoming: Stream.Stream<AgentMessage, E>
    ) => Stream.Stream<RelayMessage, RelayCallError>
    /** Opens or joins an interactive session (see `internal/attach.ts` for how a viewer ends). */
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
    readonly createShare: (
      caller: Authenticator.Caller,
      machine: string,
      ttlSeconds: number
    ) => Effect.Effect<MintedShare, RelayCallError>
    readonly listShares: (
      caller: Authenticator.Caller,
      machine: string | undefined
    ) => Effect.Effect<ReadonlyArray<ShareLink>, RelayCallError>
    readonly revokeShare: (caller: Authenticator.Caller, id: string) => Effect.Effect<ShareLink, RelayCallError>
  }
>() {}

const DEFAULT_WINDOW = 2 * 1024 * 1024
const STDIN_CHUNK = 64 * 1024

const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

export const make = (options: Options) =>
  Effect.gen(function* () {
    const store = yield* RelayStore
    const shares = yield* ShareService
    const server = options.server
    const publicUrl = () => {
      const base = options.publicUrl ?? `http://${options.server}`
      return (typeof base === "function" ? base() : base).replace(/\/+$/, "")
    }
    const heartbeatSeconds = options.heartbeatSeconds ?? 30
    const staleAfterMs = Duration.toMillis(options.staleAfter ?? "90 seconds")
    const maxWindow = options.window ?? DEFAULT_WINDOW
    const auth = Authenticator.make(store, shares, server)
    const registry = new Registry()

    const internal = (e: RelayStoreError) => new RelayError({ reason: "Internal", server, detail: e.message })
    const storeError = (e: RelayStoreError): RelayCallError =>
      e.reason === "MachineConflict" || e.reason === "MachineSecretMismatch"
        ? new AccessError({ reason: "PermissionDenied", detail: e.message })
        : internal(e)

    // Nothing survives a relay restart: every machine is offline until its agent dials in again.
    yield* store.markAllOffline.pipe(Effect.mapError(internal), Effect.orDie)

    const machinesOf = (caller: Authenticator.Caller) =>
      Effect.map(store.listMachines(Machine.WorkspaceId.make(caller.workspaceId)), (all) =>
        caller.machineId === undefined ? all : all.filter((m) => m.id === caller.machineId)
      ).pipe(Effect.mapError(internal))

    const resolveMachine = (
      caller: Authenticator.Caller,
      query: string
    ): Effect.Effect<Machine.Machine, RelayCallError> =>
      Effect.flatMap(machinesOf(caller), (machines): Effect.Effect<Machine.Machine, RelayCallError> =>
        caller.kind === "guest"
          ? // A guest's world is one machine: any other name is refused without saying whether it exists.
            Effect.flatMap(Effect.either(Machine.resolve(machines, query)), (found) =>
              found._tag === "Right"
                ? Effect.succeed(found.right)
                : Effect.fail(
                    new AccessError({
                      reason: "PermissionDenied",
                      detail: `share link is for machine ${caller.machineHostname ?? caller.machineId}, not ${query}`
                    })
                  )
            )
          : Machine.resolve(machines, query)
      )

    const listMachines = (caller: Authenticator.Caller, opts: { readonly onlineOnly: boolean }) =>
      Effect.gen(function* () {
        const machines = yield* machinesOf(caller)
        const now = yield* Clock.currentTimeMillis
        return { machines: opts.onlineOnly ? machines.filter((m) => m.online) : machines, now }
      })

    const offline = (m: Machine.Machine, now: number) =>
      new MachineError({ reason: "Offline", query: m.hostname, candidates: [Machine.candidateOf(m)], now })

    /**
     * The connected machine a session goes to. An exact id or hostname of a connected machine is answered from
     * memory (the hot path of `exec host …`); anything else goes through full resolution on the store.
     */
    const onlineConnection = (caller: Authenticator.Caller, query: string) =>
      Effect.gen(function* () {
        const live = registry.exact(caller.workspaceId, query)
        if (live && (caller.machineId === undefined || caller.machineId === live.machineId))
          return { machine: live.machine, conn: live }
        const machine = yield* resolveMachine(caller, query)
        const conn = registry.get(machine.id)
        if (!conn || !machine.online) return yield* offline(machine, yield* Clock.currentTimeMillis)
        return { machine, conn }
      })

    const exec = <E>(
      caller: Authenticator.Caller,
      request: ExecRequest,
      input: Stream.Stream<ExecInput, E> | undefined
    ): Stream.Stream<ExecEvent, RelayCallError> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          if (request.argv.length === 0 || request.argv[0] === "")
            return yield* new RelayError({ reason: "Protocol", server, detail: "exec needs a command" })
          const { conn, machine } = yield* onlineConnection(caller, request.machine)

          if (caller.shareId !== undefined) yield* shares.recordUse(caller.shareId, `exec ${request.argv[0]}`)
          const session: Session = {
            ...(caller.shareId === undefined ? {} : { shareId: caller.shareId, guest: caller }),
            id: randomUUID(),
            items: yield* Queue.unbounded<SessionItem>(),
            stdinCredit: yield* Effect.makeSemaphore(conn.window),
            exited: false
          }
          conn.sessions.set(session.id, session)
          // A guest's session ends the moment the link expires, not at the next sweep.
          if (caller.expiresAt !== undefined) {
            const expiresAt = caller.expiresAt
            yield* Effect.gen(function* () {
              yield* Effect.sleep(Duration.millis(Math.max(0, expiresAt - (yield* Clock.currentTimeMillis))))
              yield* Queue.offer(session.items, {
                _tag: "Lost",
                error: new AccessError({
                  reason: "Unauthenticated",
                  detail: `share link expired at ${formatInstant(expiresAt)}`
                })
              })
            }).pipe(Effect.forkScoped)
          }
          yield* Effect.addFinalizer(() =>
            Effect.suspend(() => {
              conn.sessions.delete(session.id)
              return session.exited
                ? Effect.void
                : conn.send({ kind: { $case: "close", value: { sessionId: session.id, reason: "client went away" } } })
            })
          )
          yield* conn.send({
            kind: {
              $case: "open",
              value: {
                sessionId: session.id,
                kind: {
                  $case: "exec",
                  value: {
                    argv: [...request.argv],
                    shell: request.shell ?? false,
                    timeoutMs: request.timeoutMs ?? 0,
                    stdin: input !== undefined,
                    env: { ...request.env },
                    cwd: request.cwd ?? ""
                  }
                },
                caller: { kind: caller.kind, principal: caller.principal, shareId: caller.shareId ?? "" }
              }
            }
          })

          if (input !== undefined) {
            const sendInput = (data: Uint8Array, eof: boolean) =>
              conn.send({
                kind: {
                  $case: "input",
                  value: {
                    sessionId: session.id,
                    data: toBuffer(data),
                    eof,
                    caller: { kind: caller.kind, principal: caller.principal, shareId: caller.shareId ?? "" }
                  }
                }
              })
            yield* input.pipe(
              Stream.runForEach((item) =>
                item._tag === "Eof"
                  ? sendInput(new Uint8Array(0), true)
                  : Effect.forEach(
                      Array.from({ length: Math.ceil(item.data.byteLength / STDIN_CHUNK) }, (_, i) =>
                        item.data.subarray(i * STDIN_CHUNK, (i + 1) * STDIN_CHUNK)
                      ),
                      (chunk) => Effect.zipRight(session.stdinCredit.take(chunk.byteLength), sendInput(chunk, false)),
                      { discard: true }
                    )
              ),
              // A client whose stdin fails just closes the remote stdin; the command decides what that means.
              Effect.catchAll(() => sendInput(new Uint8Array(0), true)),
              Effect.forkScoped
            )
          }

          const ack = (pipe: Pipe, bytes: number) =>
            conn.send({ kind: { $case: "ack", value: { sessionId: session.id, pipe, bytes } } })
          const events = Stream.fromQueue(session.items).pipe(
            Stream.takeUntil((item) => item._tag === "Lost" || item.event._tag === "Exit"),
            Stream.mapEffect((item) => (item._tag === "Lost" ? Effect.fail(item.error) : Effect.succeed(item.event))),
            // Credit goes back to the agent only as the client consumes output.
            Stream.tap((event) =>
              event._tag === "Stdout"
                ? ack(Pipe.PIPE_STDOUT, event.data.byteLength)
                : event._tag === "Stderr"
                  ? ack(Pipe.PIPE_STDERR, event.data.byteLength)
                  : Effect.void
            )
          )
          return Stream.concat(Stream.succeed(ExecEvent.Started({ machine, sessionId: session.id })), events)
        })
      )

    const identityOf = (caller: Authenticator.Caller, identity: MachineIdentity | undefined) =>
      Effect.gen(function* () {
        if (identity === undefined)
          return yield* new RelayError({ reason: "Protocol", server, detail: "the agent sent no machine identity" })
        const id = yield* Schema.decodeUnknown(Machine.MachineId)(identity.machineId).pipe(
          Effect.mapError(() => new AccessError({ reason: "PermissionDenied", detail: "the machine id is not a UUID" }))
        )
        const hostname = yield* Schema.decodeUnknown(Machine.Hostname)(identity.hostname).pipe(
          Effect.mapError(
            () => new AccessError({ reason: "PermissionDenied", detail: `invalid hostname "${identity.hostname}"` })
          )
        )
        if (identity.machineSecret.length < 16)
          return yield* new AccessError({
            reason: "PermissionDenied",
            detail: "the machine secret is missing or too short"
          })
        if (caller.kind === "guest")
          return yield* new AccessError({ reason: "PermissionDenied", detail: "a share link cannot register machines" })
        return {
          id,
          workspaceId: Machine.WorkspaceId.make(caller.workspaceId),
          hostname,
          name: identity.name === "" ? hostname : identity.name,
          os: identity.os,
          agentVersion: identity.agentVersion,
          secretHash: sha256(identity.machineSecret)
        }
      })

    const register = (caller: Authenticator.Caller, identity: MachineIdentity | undefined) =>
      Effect.gen(function* () {
        const registration = yield* identityOf(caller, identity)
        const record = yield* store.registerMachine(registration).pipe(Effect.mapError(storeError))
        const live = registry.get(record.id)
        return {
          machine: new Machine.Machine({
            ...toMachine(record),
            online: live !== undefined && live.workspaceId === record.workspaceId
          }),
          workspaceName: caller.workspaceName
        }
      })

    const connectAgent = <E>(
      caller: Authenticator.Caller,
      incoming: Stream.Stream<AgentMessage, E>
    ): Stream.Stream<RelayMessage, RelayCallError> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const pull = yield* Stream.toPull(incoming)
          const first = yield* pull.pipe(
            Effect.timeoutFail({
              duration: "15 seconds",
              onTimeout: () => Option.none()
            }),
            Effect.catchAll(() =>
              Effect.fail(new RelayError({ reason: "Protocol", server, detail: "the agent sent no Hello" }))
            )
          )
          const hello = first.length > 0 ? first.pipe((c) => [...c][0]) : undefined
          if (hello?.kind?.$case !== "hello")
            return yield* new RelayError({
              reason: "Protocol",
              server,
              detail: "the first agent message must be Hello"
            })
          const { machine, workspaceName } = yield* register(caller, hello.kind.value.identity)
          const now = yield* Clock.currentTimeMillis
          const outbound = yield* Queue.unbounded<RelayMessage>()
          const window = Math.min(hello.kind.value.window > 0 ? hello.kind.value.window : maxWindow, maxWindow)
          const conn: Connection = {
            machineId: machine.id,
            workspaceId: machine.workspaceId,
            hostname: machine.hostname,
            machine: new Machine.Machine({ ...machine, online: true, lastHeartbeatAt: now }),
            credential: caller.credential,
            window,
            send: (m) => Queue.offer(outbound, m),
            sessions: new Map(),
            ptys: new Map(),
            closed: yield* Deferred.make<string>(),
            lastSeen: now
          }
          yield* registry.replace(conn)
          let cleaned = false
          // Runs once, as soon as the connection is closed (or its scope ends): sessions fail, machine offline.
          const cleanup = Effect.suspend(() => {
            if (cleaned) return Effect.void
            cleaned = true
            return Effect.gen(function* () {
              const lost = new RelayError({
                reason: "Unavailable",
                server,
                detail: `machine ${conn.hostname} disconnected during the session`
              })
              for (const session of conn.sessions.values())
                yield* Queue.offer(session.items, { _tag: "Lost", error: lost })
              conn.sessions.clear()
              for (const pty of conn.ptys.values()) yield* Attach.finish(pty, { lost })
              conn.ptys.clear()
              if (registry.removeIfCurrent(conn)) yield* store.markOffline(conn.machineId).pipe(Effect.ignore)
            })
          })
          yield* Effect.addFinalizer(() => cleanup)
          yield* Effect.forkScoped(Effect.zipRight(Deferred.await(conn.closed), cleanup))
          yield* store.markOnline(machine.id, now).pipe(Effect.mapError(internal))
          yield* conn.send({
            kind: {
              $case: "welcome",
              value: {
                machine: {
                  id: machine.id,
                  workspaceId: machine.workspaceId,
                  hostname: machine.hostname,
                  name: machine.name,
                  os: machine.os,
                  agentVersion: machine.agentVersion,
                  online: true,
                  lastHeartbeatAt: now
                },
                workspaceName,
                heartbeatSeconds,
                window
              }
            }
          })

          // Interactive sessions outlive agent connections: adopt the live ones and ask for their recent output.
          for (const info of hello.kind.value.ptySessions) {
            const state = yield* Attach.makeState({
              id: info.sessionId,
              owner: info.owner,
              command: info.command,
              cols: info.cols,
              rows: info.rows,
              createdAt: info.createdAt,
              window
            })
            state.lastActivityAt = info.lastActivityAt
            conn.ptys.set(info.sessionId, state)
            yield* conn.send({ kind: { $case: "replay", value: { sessionId: info.sessionId, fromOffset: 0 } } })
          }

          const dispatch = AgentLink.dispatcher(conn, { store, authenticate: auth.authenticate })

          // Read the agent's messages until its stream ends; then the connection is over.
          yield* Stream.fromPull(Effect.succeed(pull)).pipe(
            Stream.runForEach(dispatch),
            Effect.ignore,
            // However the agent's side ends (half-close, failure, interruption), the connection is over.
            Effect.ensuring(Deferred.succeed(conn.closed, "the agent closed its stream")),
            Effect.forkScoped
          )
          return Stream.fromQueue(outbound).pipe(Stream.interruptWhen(Deferred.await(conn.closed)))
        })
      )

    const attach = (
      caller: Authenticator.Caller,
      request: AttachRequest,
      input: Stream.Stream<AttachInput>
    ): Stream.Stream<AttachEvent, RelayCallError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const { conn, machine } = yield* onlineConnection(caller, request.machine)
          const now = yield* Clock.currentTimeMillis
          if (caller.shareId !== undefined)
            yield* shares.recordUse(
              caller.shareId,
              request.sessionId === undefined ? "attach (new session)" : `attach ${request.sessionId}`
            )
          const existing = request.sessionId === undefined ? undefined : conn.ptys.get(request.sessionId)
          if (request.sessionId !== undefined && !existing)
            return yield* new MachineError({
              reason: "NotFound",
              query: `${machine.hostname} session ${request.sessionId}`,
              candidates: []
            })
          let pty = existing
          if (pty === undefined) {
            const id = randomUUID()
            pty = yield* Attach.makeState({
              id,
              owner: caller.principal,
              command: (request.command ?? []).join(" ") || "login shell",
              cols: request.cols,
              rows: request.rows,
              createdAt: now,
              window: conn.window
            })
            conn.ptys.set(id, pty)
            yield* conn.send({
              kind: {
                $case: "open",
                value: {
                  sessionId: id,
                  kind: {
                    $case: "pty",
                    value: {
                      cols: request.cols,
                      rows: request.rows,
                      term: request.term ?? "xterm-256color",
                      command: [...(request.command ?? [])]
                    }
                  },
                  caller: { kind: caller.kind, principal: caller.principal, shareId: caller.shareId ?? "" }
                }
              }
            })
          } else if (request.cols > 0 && request.rows > 0) {
            yield* conn.send({
              kind: { $case: "resize", value: { sessionId: pty.id, cols: request.cols, rows: request.rows } }
            })
          }
          const state = pty
          return Attach.view({
            conn,
            state,
            caller,
            request,
            input,
            head: (offset) =>
              AttachEvent.Attached({ machine, sessionId: state.id, created: existing === undefined, offset })
          })
        })
      )

    const listSessions = (caller: Authenticator.Caller, query: string) =>
      Effect.gen(function* () {
        const { conn, machine } = yield* onlineConnection(caller, query)
        const sessions: ReadonlyArray<PtySession> = [...conn.ptys.values()]
          .filter((p) => p.ended === undefined)
          .map((p) => ({
            sessionId: p.id,
            command: p.command,
            cols: p.cols,
            rows: p.rows,
            createdAt: p.createdAt,
            lastActivityAt: p.lastActivityAt,
            viewers: p.viewers.size,
            owner: p.owner
          }))
        return { machine, sessions }
      })

    const shareFailure = (e: ShareError): RelayCallError =>
      e.reason === "InvalidTtl"
        ? new RelayError({ reason: "InvalidRequest", server, detail: e.message })
        : e.reason === "Unavailable"
          ? new RelayError({ reason: "Internal", server, detail: e.message })
          : e.reason === "NotFound"
            ? new AccessError({ reason: "PermissionDenied", detail: e.message })
            : Authenticator.shareDenied(e)

    const workspaceOnly = (caller: Authenticator.Caller, what: string) =>
      caller.kind === "guest"
        ? Effect.fail(
            new AccessError({
              reason: "PermissionDenied",
              detail: `a share link cannot ${what}; use a workspace API key (share links reach one machine only)`
            })
          )
        : Effect.void

    const createShare = (caller: Authenticator.Caller, query: string, ttlSeconds: number) =>
      Effect.gen(function* () {
        yield* workspaceOnly(caller, "mint share links")
        const machine = yield* resolveMachine(caller, query)
        return yield* shares
          .mint({
            creator: { workspaceId: caller.workspaceId, principal: caller.principal, kind: caller.kind },
            machine: { id: machine.id, hostname: machine.hostname, workspaceId: machine.workspaceId },
            ttlSeconds,
            publicUrl: publicUrl()
          })
          .pipe(Effect.mapError(shareFailure))
      })

    const listShares = (caller: Authenticator.Caller, query: string | undefined) =>
      Effect.gen(function* () {
        yield* workspaceOnly(caller, "list share links")
        const machineId = query === undefined || query === "" ? undefined : (yield* resolveMachine(caller, query)).id
        return yield* shares.list(caller.workspaceId, machineId).pipe(Effect.mapError(shareFailure))
      })

    /** Ends every live session that came through `shareId`, at once, with `reason`. */
    const endGuestSessions = (shareId: string, reason: string, error: RelayCallError) =>
      Effect.forEach(
        registry.all(),
        (conn) =>
          Effect.gen(function* () {
            for (const session of conn.sessions.values()) {
              if (session.shareId !== shareId) continue
              yield* Queue.offer(session.items, { _tag: "Lost", error })
              yield* conn.send({ kind: { $case: "close", value: { sessionId: session.id, reason } } })
            }
            for (const pty of conn.ptys.values()) yield* Attach.cutViewers(pty, shareId, { exitCode: 0, reason })
          }),
        { discard: true }
      )

    const revokeShare = (caller: Authenticator.Caller, id: string) =>
      Effect.gen(function* () {
        yield* workspaceOnly(caller, "revoke share links")
        const link = yield* shares.revoke(caller.workspaceId, id).pipe(Effect.mapError(shareFailure))
        yield* endGuestSessions(
          link.id,
          "share link revoked",
          new AccessError({ reason: "Unauthenticated", detail: `share link ${link.id} was revoked` })
        )
        return link
      })

    // Guests' sessions end when their link stops validating for any reason (expiry, key rotation, revocation
    // through another relay node): each live guest credential is checked again every `guestSweep`.
    yield* Effect.gen(function* () {
      const credentials = new Map<string, Authenticator.Caller>()
      for (const conn of registry.all()) {
        for (const session of conn.sessions.values())
          if (session.guest !== undefined) credentials.set(session.guest.shareId!, session.guest)
        for (const pty of conn.ptys.values())
          for (const viewer of pty.viewers)
            if (viewer.guest !== undefined) credentials.set(viewer.guest.shareId!, viewer.guest)
      }
      for (const [shareId, guest] of credentials) {
        const check = yield* Effect.either(shares.validate(Redacted.value(guest.credential)))
        if (check._tag === "Left" && check.left.reason !== "Unavailable") {
          const reason = check.left.reason === "Expired" ? "share link expired" : check.left.message
          yield* endGuestSessions(shareId, reason, Authenticator.shareDenied(check.left))
        }
      }
    }).pipe(Effect.repeat(Schedule.spaced(options.guestSweep ?? "5 seconds")), Effect.forkScoped)

    // Liveness: a machine silent for longer than `staleAfter` is closed (and so marked offline).
    yield* Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const conn of registry.all()) {
        if (now - conn.lastSeen > staleAfterMs)
          yield* Deferred.succeed(conn.closed, `no heartbeat for ${Math.round((now - conn.lastSeen) / 1000)} s`)
      }
    }).pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(250, Math.min(10_000, staleAfterMs / 6))))),
      Effect.forkScoped
    )

    return RelayCore.of({
      server,
      stats: () => {
        const conns = registry.all()
        return { agents: conns.length, sessions: conns.reduce((n, c) => n + c.sessions.size, 0) }
      },
      authenticate: auth.authenticate,
      whoami: (caller) =>
        Effect.succeed({
          workspaceId: caller.workspaceId,
          workspaceName: caller.workspaceName,
          kind: caller.kind,
          principal: caller.principal,
          ...(caller.machineId === undefined ? {} : { machineId: caller.machineId })
        }),
      listMachines,
      resolveMachine,
      exec,
      register,
      connectAgent,
      attach,
      listSessions,
      createShare,
      listShares,
      revokeShare
    })
  })

/** The store keeps only this hash of a machine secret (32 random bytes, so no salt is needed). */
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex")

/** The core over the `RelayStore` and `ShareService` in context; its background checks live as long as the layer. */
export const layer = (options: Options): Layer.Layer<RelayCore, never, RelayStore | ShareService> =>
  Layer.scoped(RelayCore, make(options))
