/**
 * The agent side of the relay: registration, and the one long-lived stream of each machine. The agent's first
 * message must be `Hello` (within 15 s, listing at most `MAX_HELLO_SESSIONS` sessions); the relay registers the machine in the caller's workspace, installs the
 * connection (replacing an older one of the same machine), answers `Welcome`, re-adopts the PTY sessions the agent
 * reports and asks for their recent output, then handles the agent's messages (`agentDispatch.ts`).
 *
 * How a connection ends: the agent's stream ends or fails, or the relay closes it (replaced, stale, key no longer
 * valid). Either way, at once: exec sessions on it fail with MachineLost, PTY viewers are told the machine was
 * lost (the sessions may live on at the agent), and the machine is marked offline unless a newer connection of it
 * took over.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import * as Machine from "@cmdop/domain/Machine"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as PullStream from "@cmdop/grpc/PullStream"
import { isNonEmptyReadonlyArray } from "effect/Array"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { type Caller, linkOfPrincipal } from "../Authenticator.js"
import { toMachine } from "../store/records.js"
import { type CoreContext, internalError, storeError } from "./coreContext.js"
import { dispatcher } from "./agentDispatch.js"
import { firstOfPull } from "./firstAndRest.js"
import * as HeartbeatWrites from "./heartbeatWrites.js"
import * as Limits from "./limits.js"
import * as AgentOutbound from "./agentOutbound.js"
import * as Outbox from "./outbox.js"
import { roleAllows } from "./tenancy.js"
import * as PtyState from "./ptyState.js"
import { type Connection, STOPPING } from "./sessions.js"

/** The machine as registered, and the name of its workspace. */
export interface Registered {
  readonly machine: Machine.Machine
  readonly workspaceName: string
}

/** How long the relay waits for an agent's `Hello`. */
const HELLO_TIMEOUT = "15 seconds"

/** The store keeps only this hash of a machine secret (32 random bytes, so no salt is needed). */
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex")

/** The agent-facing half of the core, bound to its context. */
export const make = (ctx: CoreContext) => ({
  register: (caller: Caller, identity: AgentLink.MachineIdentity) => register(ctx, caller, identity),
  connectAgent: <E>(caller: CallerOf, incoming: Stream.Stream<AgentLink.AgentMessage | Skipped, E>) =>
    connectAgent(ctx, caller, incoming)
})

/**
 * The caller of `connectAgent`, or how to authenticate it: authenticated in the stream's setup, so the gRPC
 * adapter needs no stream stage of its own around the call (each held an executor for the connection's life).
 */
export type CallerOf = Caller | Effect.Effect<Caller, RelayCallError>

/**
 * A message the relay skips: one it could not read (a newer agent's, `Unreadable` in `@cmdop/protocol`). Skipped
 * while pulling, not by a `Stream.filter` stage (an executor per connection).
 */
export interface Skipped {
  readonly _tag: "Unreadable"
}

const readable = (m: AgentLink.AgentMessage | Skipped): m is AgentLink.AgentMessage => m._tag !== "Unreadable"

/** `pull` without the messages the relay skips (a chunk with none of them is passed on as it is). */
const readableOnly = <E>(
  pull: Effect.Effect<Chunk.Chunk<AgentLink.AgentMessage | Skipped>, Option.Option<E>>
): Effect.Effect<Chunk.Chunk<AgentLink.AgentMessage>, Option.Option<E>> =>
  Effect.map(pull, (chunk) =>
    Chunk.every(chunk, readable) ? (chunk as Chunk.Chunk<AgentLink.AgentMessage>) : Chunk.filter(chunk, readable)
  )

/** `AgentService.Register`: creates or updates the machine in the caller's workspace. */
const register = Effect.fn("RelayCore.register")(function* (
  ctx: CoreContext,
  caller: Caller,
  identity: AgentLink.MachineIdentity
) {
  if (!roleAllows(caller, "member"))
    return yield* new AccessError({
      reason: "PermissionDenied",
      detail: `a viewer of workspace ${caller.workspaceName} cannot register machines; ask an owner to make you a member`
    })
  const registration = yield* registrationOf(caller, identity)
  // A person's machine: who owns it, and whether this registration moves it (see `machineOwnership.ts`).
  const ownership = caller.kind === "user" ? ctx.ownership : undefined
  const from =
    ownership === undefined
      ? undefined
      : Option.getOrUndefined(yield* Effect.option(ctx.store.getMachine(registration.id)))?.workspaceId
  if (ownership !== undefined) yield* ownership.authorize(caller, registration.id, from)
  const record = yield* ctx.store.registerMachine(registration).pipe(Effect.mapError(storeError(ctx.settings.server)))
  if (ownership !== undefined) yield* ownership.registered(caller, toMachine(record), from)
  const live = ctx.registry.get(record.id)
  return {
    machine: new Machine.Machine({
      ...toMachine(record),
      online: live !== undefined && live.workspaceId === record.workspaceId
    }),
    workspaceName: caller.workspaceName
  }
})

/** The agent's `Hello`, or a protocol error when the stream starts with anything else (or nothing, in time). */
const awaitHello = <E>(server: string, incoming: Stream.Stream<AgentLink.AgentMessage | Skipped, E>) =>
  Effect.flatMap(PullStream.toPull(incoming), (pull) => firstOfPull(readableOnly(pull))).pipe(
    Effect.timeoutFail({ duration: HELLO_TIMEOUT, onTimeout: () => Option.none() }),
    Effect.catchAll(() =>
      Effect.fail(new RelayError({ reason: "InvalidRequest", server, detail: "the agent sent no Hello" }))
    ),
    Effect.flatMap(([first, more, pull]) =>
      Option.isNone(first) || first.value._tag !== "Hello"
        ? Effect.fail(
            new RelayError({ reason: "InvalidRequest", server, detail: "the first agent message must be Hello" })
          )
        : first.value.ptySessions.length > Limits.MAX_HELLO_SESSIONS
          ? Effect.fail(
              Limits.exhausted(
                server,
                `the agent reported ${first.value.ptySessions.length} live sessions, over the relay's limit of ${Limits.MAX_HELLO_SESSIONS}`
              )
            )
          : Effect.succeed([first.value, more, pull] as const)
    )
  )

/**
 * `AgentService.Connect`: what the relay sends to the agent (`Welcome` first). It ends when the agent's stream
 * ends or the relay closes the connection.
 *
 * A pushed stream (`PullStream.fromPush`): over gRPC the handshake and then the reading of the agent's messages run
 * on the call's own fiber, and what the relay sends goes from the outbox straight into the call. So an idle agent's
 * connection holds one fiber, waiting for its next message — no writer waiting for the outbox, no watcher waiting
 * for the close (which starts the cleanup itself) — and that fiber's reading ends as the stream does.
 */
const connectAgent = <E>(
  ctx: CoreContext,
  callerOf: CallerOf,
  incoming: Stream.Stream<AgentLink.AgentMessage | Skipped, E>
): Stream.Stream<AgentLink.RelayMessage, RelayCallError> =>
  PullStream.fromPush<AgentLink.RelayMessage, RelayCallError, never>((sink) =>
    // The span is the handshake's parent; the reading that follows runs outside it, so that `withParentSpan`'s
    // frames do not stay on an idle connection's stack (the span itself lasts the connection's life). No stack
    // trace: the span kept the frames it captured, and with them this closure and the whole handshake.
    Effect.flatMap(Effect.makeSpanScoped("RelayCore.connectAgent", { captureStackTrace: false }), (span) =>
      Effect.flatten(Effect.withParentSpan(handshake(ctx, callerOf, incoming, sink), span))
    )
  )

/**
 * The handshake: the caller, its Hello, the machine registered and its connection opened, `Welcome` sent. Answers
 * how the rest of the connection runs (the reading of the agent's messages, `readAll`), for the caller to run after
 * the handshake's frames and its generator (and what it holds, such as the Hello) are done with.
 */
const handshake = <E>(
  ctx: CoreContext,
  callerOf: CallerOf,
  incoming: Stream.Stream<AgentLink.AgentMessage | Skipped, E>,
  sink: PullStream.Sink<AgentLink.RelayMessage, RelayCallError>
): Effect.Effect<Effect.Effect<void>, RelayCallError, Scope.Scope> =>
  Effect.gen(function* () {
    // The store work of a handshake takes its turn (`handshakeGate.ts`); waiting for the Hello does not.
    const gate = ctx.registry.handshakes
    const server = ctx.settings.server
    const caller = Effect.isEffect(callerOf) ? yield* gate.within(server, callerOf) : callerOf
    const [hello, more, pull] = yield* awaitHello(server, incoming)
    const outbox = Outbox.make<AgentLink.RelayMessage, RelayCallError>()
    const { conn, finish } = yield* gate.within(
      server,
      Effect.flatMap(register(ctx, caller, hello.identity), (registered) =>
        open(ctx, caller, hello, registered, sendVia(outbox), closeVia(outbox, server))
      ).pipe(Effect.mapError(retryable(ctx)))
    )
    yield* conn.send({
      _tag: "Welcome",
      machine: conn.machine,
      workspaceName: caller.workspaceName,
      heartbeatSeconds: ctx.settings.heartbeatSeconds,
      window: conn.window,
      ...(yield* relayAddressesOf(ctx))
    })
    yield* adopt(conn, hello.ptySessions)
    // From here on what the relay sends goes straight to the agent's stream.
    outbox.drainTo(sink)
    return readAll(more, pull, dispatcher(ctx, conn), finish)
  })

// The connection's two long-lived closures are made here, not in `handshake`: a closure made there would keep the
// whole handshake (the call's context and credential check, the request stream, the Hello) for the connection's life.

/**
 * After the close, a send is dropped (a client's exec stream acknowledging output of a machine that just dropped
 * learns that the machine disconnected, from the session).
 */
const sendVia =
  (outbox: Outbox.Outbox<AgentLink.RelayMessage, RelayCallError>): Connection["send"] =>
  (m) =>
    Effect.sync(() => AgentOutbound.enqueue(outbox, m))

/**
 * Once the connection is closed, its stream ends; closed by the relay for a violation, with why (the agent logs
 * it), not as if all were well. One check at the end, nothing per message.
 */
const closeVia =
  (outbox: Outbox.Outbox<AgentLink.RelayMessage, RelayCallError>, server: string) =>
  (conn: Connection): Effect.Effect<void> =>
    Effect.sync(() => outbox.close(whyClosed(server, conn.closedWith())))

/**
 * Reads the agent's messages until its stream ends or fails, or the connection is closed (the end of the stream to
 * the agent stops the reading), then finishes the connection. Interrupted (the call cancelled), the connection's
 * scope cleans up instead. As few frames as it can: the one fiber of an idle connection waits here.
 */
const readAll = <E>(
  first: Chunk.Chunk<AgentLink.AgentMessage>,
  pull: PullStream.Pull<AgentLink.AgentMessage, E>,
  dispatch: (message: AgentLink.AgentMessage) => Effect.Effect<void>,
  finish: (reason: string) => Effect.Effect<void>
): Effect.Effect<void> =>
  Effect.zipRight(
    Effect.catchAll(
      PullStream.forEachChunkOfPull(PullStream.startingWith(first, pull), (chunk) =>
        PullStream.eachOf(chunk, dispatch)
      ),
      () => Effect.void
    ),
    Effect.suspend(() => finish("the agent closed its stream"))
  )

const ended: PullStream.Pull<never, never> = PullStream.end

/**
 * How the stream to a closed connection's agent ends: failed when the relay closed it for a violation or to stop,
 * else just ended.
 */
const whyClosed = (server: string, reason: string | undefined): PullStream.Pull<never, RelayCallError> =>
  reason === Limits.WINDOW_OVERRUN || reason === Limits.HEARTBEAT_FLOOD
    ? Effect.fail(Option.some(Limits.exhausted(server, reason)))
    : reason === STOPPING
      ? Effect.fail(
          Option.some(new RelayError({ reason: "Unavailable", server, detail: `${STOPPING}: connect again` }))
        )
      : ended

/**
 * Installs the connection of a registered machine (online from now) and arranges its cleanup: once, as soon as it
 * is closed or its scope ends. `finish(reason)` closes it (unless it already was) and returns once the cleanup is
 * done, so that the connection's scope does not end (interrupting a cleanup a close forked) before.
 */
const open = (
  ctx: CoreContext,
  caller: Caller,
  hello: AgentLink.Hello,
  { machine }: Registered,
  send: Connection["send"],
  afterClose: (conn: Connection) => Effect.Effect<void>
): Effect.Effect<
  { readonly conn: Connection; readonly finish: (reason: string) => Effect.Effect<void> },
  RelayCallError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const maxWindow = ctx.settings.maxWindow
    const ending = makeEnding(yield* Effect.scope)
    const conn: Connection = {
      machineId: machine.id,
      workspaceId: machine.workspaceId,
      hostname: machine.hostname,
      machine: new Machine.Machine({ ...machine, online: true, lastHeartbeatAt: now }),
      credential: caller.credential,
      window: Math.min(hello.window > 0 ? hello.window : maxWindow, maxWindow),
      send,
      sessions: new Map(),
      ptys: new Map(),
      close: ending.close,
      closedWith: ending.closedWith,
      lastSeen: now,
      ...(hello.gateConfigured === undefined ? {} : { gateConfigured: hello.gateConfigured })
    }
    yield* ending.setCleanup(Effect.zipRight(close(ctx, conn), afterClose(conn)))
    yield* ctx.registry.replace(conn)
    yield* ctx.store
      .markOnline(machine.id, now, conn, hello.gateConfigured)
      .pipe(Effect.mapError(internalError(ctx.settings.server)))
    return { conn, finish: ending.finish }
  })

/**
 * How a connection ends, once: its close (`Connection.close`, which starts the cleanup on a fiber of its own, as
 * the watcher fiber this replaced would have), the reason it was closed with, and `finish`. Made apart from `open`,
 * so that what the connection keeps for its life holds only this, not the handshake (the Hello, the caller).
 */
const makeEnding = (scope: Scope.Scope) => {
  let reason: string | undefined
  let cleanup: Effect.Effect<void> = Effect.void
  let cleaning: Fiber.RuntimeFiber<void> | undefined
  return {
    /** Sets the cleanup (run at most once) and has the scope run it at its end, if nothing did before. */
    setCleanup: (effect: Effect.Effect<void>): Effect.Effect<void> =>
      Effect.flatMap(Effect.once(effect), (once) => {
        cleanup = once
        // On the scope itself: `Effect.addFinalizer` would keep a copy of the fiber's refs per connection.
        return Scope.addFinalizer(scope, once)
      }),
    close: (why: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (reason !== undefined) return Effect.void
        reason = why
        return Effect.map(Effect.forkIn(cleanup, scope), (fiber) => {
          cleaning = fiber
        })
      }),
    closedWith: (): string | undefined => reason,
    finish: (why: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (reason === undefined) {
          reason = why
          return cleanup
        }
        return cleaning === undefined ? cleanup : Fiber.await(cleaning)
      }).pipe(Effect.asVoid)
  }
}

/**
 * A handshake the store failed (busy or unreachable: not a refusal) is refused as UNAVAILABLE, so the agent backs
 * off and tries again (another node of its list), not as an internal error.
 */
const retryable =
  (ctx: CoreContext) =>
  (e: RelayCallError): RelayCallError =>
    e._tag === "RelayError" && e.reason === "Internal"
      ? new RelayError({
          reason: "Unavailable",
          server: ctx.settings.server,
          detail: `this relay could not take the agent's connection now (${e.detail}); the agent tries again`
        })
      : e

/** Cluster mode: where agents reach the live nodes, for Welcome (a failover hint); nothing for a single relay. */
const relayAddressesOf = (ctx: CoreContext) =>
  Effect.map(ctx.settings.relayAddresses ?? Effect.succeed([]), (addresses) =>
    isNonEmptyReadonlyArray(addresses) ? { relayAddresses: addresses } : {}
  )

/** The connection is over: its sessions learn it, and the machine goes offline unless replaced. */
const close = (ctx: CoreContext, conn: Connection) =>
  Effect.gen(function* () {
    const lost = new RelayError({
      reason: "MachineLost",
      server: ctx.settings.server,
      detail: `machine ${conn.hostname} disconnected during the session`
    })
    for (const session of conn.sessions.values()) yield* Queue.offer(session.items, { _tag: "Lost", error: lost })
    conn.sessions.clear()
    for (const pty of conn.ptys.values()) yield* PtyState.finish(pty, { lost })
    conn.ptys.clear()
    if (ctx.registry.removeIfCurrent(conn)) {
      // A stopping relay closes all its connections at once: one batch for all of them (`RelayCore.stop`), not
      // two store writes each, one connection after another (a thousand agents took minutes to let go of).
      if (ctx.registry.stopping !== undefined) ctx.registry.stopping.closed.push(conn)
      else {
        yield* HeartbeatWrites.writeLast(ctx.store, conn)
        yield* ctx.store.markOffline(conn.machineId, conn).pipe(Effect.ignore)
      }
    }
  })

/** Interactive sessions outlive agent connections: adopt the live ones and ask for their recent output. */
const adopt = (conn: Connection, sessions: ReadonlyArray<AgentLink.PtySessionInfo>) =>
  Effect.forEach(
    sessions,
    (info) =>
      Effect.gen(function* () {
        const shareId = linkOfPrincipal(info.owner)
        const state = yield* PtyState.makeState({
          id: info.sessionId,
          owner: info.owner.slice(0, Limits.MAX_LABEL),
          // A guest's session stays its link's: only that link reaches it, and the link's end ends it.
          ...(shareId === undefined ? {} : { shareId }),
          command: info.command.slice(0, Limits.MAX_LABEL),
          cols: info.cols,
          rows: info.rows,
          createdAt: info.createdAt,
          lastActivityAt: info.lastActivityAt,
          window: conn.window
        })
        conn.ptys.set(info.sessionId, state)
        yield* conn.send({ _tag: "SessionReplay", sessionId: info.sessionId, fromOffset: 0 })
      }),
    { discard: true }
  )

/** Validates what an agent claims before anything is stored. */
const registrationOf = (caller: Caller, identity: AgentLink.MachineIdentity) =>
  Effect.gen(function* () {
    const id = yield* Schema.decodeUnknown(Machine.MachineId)(identity.machineId).pipe(
      Effect.mapError(() => new AccessError({ reason: "PermissionDenied", detail: "the machine id is not a UUID" }))
    )
    const hostname = yield* Schema.decodeUnknown(Machine.Hostname)(identity.hostname).pipe(
      Effect.mapError(
        () => new AccessError({ reason: "PermissionDenied", detail: `invalid hostname "${identity.hostname}"` })
      )
    )
    if (identity.name !== "" && !Machine.isDisplayName(identity.name))
      return yield* new AccessError({
        reason: "PermissionDenied",
        detail: `invalid machine name ${JSON.stringify(identity.name)}: a name has no control characters`
      })
    const secret = Redacted.value(identity.machineSecret)
    if (secret.length < 16)
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
      secretHash: sha256(secret)
    }
  })
