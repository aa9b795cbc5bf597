/**
 * Forwarding: a `RelayCore` whose exec, attach, session listing and session kill go to the node that holds the
 * machine's agent stream when that is another live node of the cluster (`MachineRoutes.locate`), over that node's
 * peer port with the caller this node authenticated. Every client path of the relay (gRPC, the browser terminal,
 * share-link guests, the in-process client) reaches machines through these, so all of them work across nodes. A share
 * link's revocation (`forwardRevoke.ts`) and a gate's approvals (`forwardApprovals.ts`) reach the node holding the
 * machine too.
 *
 * Which node serves a call: this one when it holds the machine's stream (found in memory first, the hot path), when
 * the name does not resolve (the local handler gives the caller the very error it would anyway), or when no other
 * live node holds it (the local handler then says the machine is offline). Otherwise the owning node, whose route
 * is reused for a moment for the same name (`forwardRoutes.ts`), so a busy client's calls skip the store.
 *
 * A call the owning node refuses for the cluster secret (the nodes' secrets differ: one was changed while it ran)
 * is said as such to the client, naming that node, counted as a peer error and logged at most once a minute per
 * node, not per call.
 *
 * Flow control is end to end: the forwarded call's responses are read only as this node's client reads them, so
 * HTTP/2 holds the owning node's writes for that one stream, whose handler then stops acknowledging the agent's
 * output — the same credit the local path runs on. Other sessions over the same peer channel have their own
 * stream windows and go on.
 */
import * as Machine from "@cmdop/domain/Machine"
import type { AttachEvent, AttachInput, AttachRequest, ExecEvent, ExecRequest } from "@cmdop/domain/RelayClient"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcPassthrough from "@cmdop/grpc/GrpcPassthrough"
import * as GrpcStatusError from "@cmdop/grpc/GrpcStatusError"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as PeerService from "@cmdop/protocol/PeerService"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Caller } from "../Authenticator.js"
import type { ExecInput, RelayCore } from "../RelayCore.js"
import type { MachineRoutes, Route } from "./MachineRoutes.js"
import type { PeerClient, PeerClients } from "./PeerClients.js"
import * as ForwardApprovals from "./forwardApprovals.js"
import * as ForwardPassthrough from "./forwardPassthrough.js"
import * as ForwardRevoke from "./forwardRevoke.js"
import * as ForwardRoutes from "./forwardRoutes.js"
import * as PeerCall from "./peerCall.js"
import * as PeerSecret from "./PeerSecret.js"
import type { Counters } from "./PeerStats.js"

export interface Options {
  readonly nodeId: string
  readonly secret: Redacted.Redacted<string>
  readonly routes: MachineRoutes["Type"]
  readonly clients: PeerClients
  readonly counters: Counters
  /** How long a route found for a name is reused (`forwardRoutes.ts`). */
  readonly routeTtlMs?: number
}

/**
 * A call to forward: its peer method, start and input — opened as a peer call (`peerCall.ts`, its answers decoded)
 * or passed through as bytes (`forwardPassthrough.ts`).
 */
interface Peer {
  readonly method: {
    readonly path: string
    readonly requestSerialize: (message: any) => Buffer
    readonly responseDeserialize: (bytes: Buffer) => any
  }
  readonly start: unknown
  readonly rest: PeerCall.Rest
}

/** How often, at most, a node's refusals for the cluster secret are logged (they come with every call). */
const SECRET_WARNING_EVERY_MS = 60_000

/** What a share-link guest reads when the relay node holding its machine cannot be reached (nothing internal). */
const GUEST_LINK_FAILURE = "the relay could not reach this machine just now; try again in a moment"

/** A route to another node, and whether it came from the recent-routes cache. */
interface Found {
  readonly route: Route
  readonly cached: boolean
}

/** `core` (this node's local core) with exec, attach and session listing forwarded where the machine is. */
export const wrap = (core: RelayCore["Type"], options: Options): RelayCore["Type"] => {
  const { nodeId, routes, clients, counters } = options
  const server = core.server
  const metadata = PeerSecret.metadata(options.secret)

  const recent = ForwardRoutes.make(options.routeTtlMs)

  /**
   * The route to another live node holding the machine `query` names (and whether it came from the cache), or
   * `None` to serve the call here.
   */
  const elsewhere = (caller: Caller, query: string, useCache = true): Effect.Effect<Option.Option<Found>> =>
    core.connectedHere(caller, query) !== undefined ? Effect.succeedNone : lookUp(caller, query, useCache)

  /** `elsewhere` for a name this node was just found not to hold a stream for. */
  const lookUp = (caller: Caller, query: string, useCache = true): Effect.Effect<Option.Option<Found>> =>
    Effect.gen(function* () {
      const cached = useCache ? yield* recent.get(caller, query) : undefined
      if (cached !== undefined && !core.holds(cached.machineId)) return Option.some({ route: cached, cached: true })
      const machine = yield* Effect.option(core.resolveMachine(caller, query))
      if (Option.isNone(machine) || core.holds(machine.value.id)) return Option.none()
      const route = yield* routes.locate(machine.value.id).pipe(
        Effect.tapError((e) => Effect.logWarning(`cannot read the routing table: ${e.detail}`)),
        Effect.orElseSucceed(() => Option.none<Route>())
      )
      const remote = Option.filter(route, (r) => r.nodeId !== nodeId)
      if (Option.isNone(remote)) return Option.none()
      yield* recent.set(caller, query, remote.value)
      return Option.some({ route: remote.value, cached: false })
    })

  /** A peer-link failure (no typed error from the owning node): its node is gone or unreachable. */
  const linkFailure = (e: GrpcStatusError.GrpcStatusError) => Option.isNone(GrpcStatusError.decodePayload(e))

  /** The owning node refused the call for the cluster secret: its secret is not this node's. */
  const secretRefused = (e: GrpcStatusError.GrpcStatusError) => {
    const error = ErrorCodec.fromStatus(e, server)
    return (
      error._tag === "AccessError" && error.reason === "Unauthenticated" && error.detail === PeerSecret.REFUSAL_DETAIL
    )
  }

  const secretDiffers = (route: Route) =>
    `relay node ${route.nodeId} (${route.peerAddress}), which holds machine ${route.machineId}, refused this node's call for the cluster secret: the relay nodes' cluster secrets differ; give every node the same --cluster-secret (or CMDOP_CLUSTER_SECRET) and restart the one that differs`

  /** When each node's secret refusal was last logged. */
  const secretWarned = new Map<string, number>()

  /** Logs a secret refusal of `route`'s node, at most once a minute per node; anything else: nothing. */
  const warnSecret = (route: Route, e: GrpcStatusError.GrpcStatusError): Effect.Effect<void> =>
    secretRefused(e)
      ? Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (now - (secretWarned.get(route.nodeId) ?? -Infinity) < SECRET_WARNING_EVERY_MS) return Effect.void
          secretWarned.set(route.nodeId, now)
          return Effect.logWarning(secretDiffers(route))
        })
      : Effect.void

  /**
   * Whether a call on a cached route failed because the route went stale: the node is gone (a link failure), or it
   * no longer holds the machine's stream (the machine moved to another node: it says Offline). Either way the call
   * is made again on a fresh lookup, so a move takes effect on the very next call, not when the cache entry lapses.
   */
  const staleRoute = (e: GrpcStatusError.GrpcStatusError, error: RelayCallError) =>
    linkFailure(e) || (error._tag === "MachineError" && error.reason === "Offline")

  /**
   * The owning node's refusal as this node's: a `RelayError` names the relay that refused (`relay <address> refused:
   * …`), and the owning node names itself there, an address the client never dialed (and, for a share-link guest, a
   * part of the cluster's insides). The client reached this node: it is named instead.
   */
  const asThisNode = (error: RelayCallError): RelayCallError =>
    error._tag === "RelayError" && error.server !== server
      ? new RelayError({
          reason: error.reason,
          server,
          detail: error.detail,
          ...(error.unreachable === undefined ? {} : { unreachable: error.unreachable })
        })
      : error

  /**
   * A failed forwarded call: the owning node's refusal as it sent it, or a peer link failure (counted). A share-link
   * guest (`caller.shareId`) is told only that the relay could not reach the machine just now: node names, peer
   * addresses and machine ids are the operator's, not an anonymous guest's.
   */
  const failure =
    (route: Route, caller?: Caller) =>
    (e: GrpcStatusError.GrpcStatusError): RelayCallError => {
      // Whatever went wrong, the next call to this machine looks its route up afresh.
      recent.forget(route.machineId)
      const guest = caller?.shareId !== undefined
      if (secretRefused(e)) {
        counters.peerError()
        return new RelayError({ reason: "Internal", server, detail: guest ? GUEST_LINK_FAILURE : secretDiffers(route) })
      }
      if (!linkFailure(e)) return asThisNode(ErrorCodec.fromStatus(e, server))
      counters.peerError()
      if (guest) return new RelayError({ reason: "Unavailable", server, detail: GUEST_LINK_FAILURE })
      return new RelayError({
        reason: "Unavailable",
        server,
        detail: `relay node ${route.nodeId} (${route.peerAddress}), which holds machine ${route.machineId}, did not answer: ${e.message.replace(/\s*Resolution note:[^;]*$/, "").trim()}; try again: if that node is gone, its agents come back through the others; if it runs, check that its --peer-address is where this node reaches its peer port`
      })
    }

  /**
   * One forwarded session to `found`'s node, counted and live while the scope lasts. The call's input waits for the
   * owning node's first answer (`peerCall.ts`): a call that fails before it has consumed no input. On a cached
   * route, such a failure at the peer link, or the owning node saying the machine is offline, means the route went
   * stale (the node died, the machine moved): the call is made once more on a fresh lookup, or served here.
   */
  const forwardTo = <A extends { readonly _tag: string }>(
    caller: Caller,
    query: string,
    found: Found,
    peer: Peer,
    here: () => Stream.Stream<A, RelayCallError>
  ): Effect.Effect<Stream.Stream<A, RelayCallError>, RelayCallError, Scope.Scope> =>
    Effect.gen(function* () {
      const client = yield* Effect.mapError(clients.get(found.route.peerAddress), failure(found.route, caller))
      counters.forwarded()
      yield* live
      const fail = failure(found.route, caller)
      const opened = yield* Effect.mapError(
        PeerCall.open<A, RelayCallError>(
          client,
          peer.method,
          metadata,
          peer.start,
          peer.rest,
          fail,
          PeerCall.CANCEL_FALLBACK_MS,
          clients.pacer(found.route.peerAddress)
        ),
        fail
      )
      // The first answer is awaited here, so a stale route is retried before anything reaches the client; after
      // it, the answers go on as they come (no stage of their own).
      const early = yield* Effect.flip(opened.first).pipe(Effect.option)
      if (Option.isNone(early)) return opened.answers
      const error = fail(early.value)
      yield* warnSecret(found.route, early.value)
      if (!(found.cached && staleRoute(early.value, error))) return Stream.fail(error)
      const fresh = yield* elsewhere(caller, query, false)
      return Option.isNone(fresh) ? here() : yield* forwardTo(caller, query, fresh.value, peer, here)
    })

  /**
   * Counts a forwarded session live while its scope lasts. A plain scope finalizer: `acquireRelease` would capture
   * the fiber's refs and diff them twice (the whole context) when the scope closes, on every call.
   */
  const live = Effect.uninterruptible(
    Effect.flatMap(Effect.scope, (scope) => {
      counters.forwardedLive++
      return Scope.addFinalizer(
        scope,
        Effect.sync(() => counters.forwardedLive--)
      )
    })
  )

  /**
   * A session for the machine `query` names: here when this node holds its stream (the hot path, no stage added),
   * else through the owning node when another live node holds it, else here.
   */
  const routed = <A extends { readonly _tag: string }>(
    caller: Caller,
    query: string,
    peer: Peer,
    here: () => Stream.Stream<A, RelayCallError>
  ): Stream.Stream<A, RelayCallError> =>
    core.connectedHere(caller, query) !== undefined
      ? here()
      : PullStream.unwrapScoped(
          Effect.map(lookUp(caller, query), (found) =>
            Option.isNone(found) ? here() : forwarded(caller, query, found.value, peer, here)
          )
        )

  /**
   * The stream of a call forwarded to `found`'s node: decoded for any reader (`forwardTo`), passed through as bytes
   * for the gRPC server's writer (`forwardPassthrough.ts`).
   */
  const forwarded = <A extends { readonly _tag: string }>(
    caller: Caller,
    query: string,
    found: Found,
    peer: Peer,
    here: () => Stream.Stream<A, RelayCallError>
  ): Stream.Stream<A, RelayCallError> =>
    GrpcPassthrough.withDownstream(
      PullStream.unwrapScoped(forwardTo(caller, query, found, peer, here)),
      ForwardPassthrough.passthrough({
        found,
        address: found.route.peerAddress,
        upstream: clients.upstream,
        path: peer.method.path,
        metadata,
        encode: peer.method.requestSerialize,
        start: peer.start,
        rest: peer.rest,
        count: Effect.zipRight(
          Effect.sync(() => {
            counters.forwarded()
            counters.passedThroughTotal++
          }),
          live
        ),
        failure: failure(found.route, caller),
        warn: (e) => warnSecret(found.route, e),
        stale: (e, error) => found.cached && staleRoute(e, error),
        again: () =>
          Effect.map(elsewhere(caller, query, false), (fresh) =>
            Option.isNone(fresh) ? here() : forwarded(caller, query, fresh.value, peer, here)
          )
      })
    )

  const exec = <E>(
    caller: Caller,
    request: ExecRequest,
    input: Stream.Stream<ExecInput, E> | undefined,
    execOptions: { readonly stdin?: boolean } = {}
  ): Stream.Stream<ExecEvent, RelayCallError> => {
    const stdin = execOptions.stdin ?? input !== undefined
    const start: PeerService.ExecMessage = { _tag: "Start", caller, fromNode: nodeId, request, stdin }
    // A failed input ends stdin (an `Eof`), as on the local path; no stream stage of its own (`peerCall.ts`). The
    // input's end is not passed on: the call stays open for its in-band cancel (`PeerCall.Rest.halfClose`).
    const rest: PeerCall.Rest = { input, onFailure: stdin ? [{ _tag: "Eof" }] : [], halfClose: false }
    return routed(caller, request.machine, { method: PeerService.definition.exec, start, rest }, () =>
      core.exec(caller, request, input, execOptions)
    )
  }

  const attach = (
    caller: Caller,
    request: AttachRequest,
    input: Stream.Stream<AttachInput>
  ): Stream.Stream<AttachEvent, RelayCallError> => {
    const start: PeerService.AttachMessage = { _tag: "Start", caller, fromNode: nodeId, request }
    // The end of the input is the detach: passed on.
    const rest: PeerCall.Rest = { input, onFailure: [], halfClose: true }
    return routed(caller, request.machine, { method: PeerService.definition.attach, start, rest }, () =>
      core.attach(caller, request, input)
    )
  }

  /**
   * A unary call to `found`'s node (`ask`), counted. Its failure is the error `failure` makes of it; on a cached
   * route that went stale it is asked again on a fresh lookup (`again`) or answered here (`here`). `named` makes the
   * answer, or `undefined` when the node named no machine in it.
   */
  const askAt = <A, B>(
    caller: Caller,
    query: string,
    found: Found,
    ask: (client: PeerClient) => Effect.Effect<A, GrpcStatusError.GrpcStatusError>,
    named: (answer: A) => B | undefined,
    here: () => Effect.Effect<B, RelayCallError>,
    again: (fresh: Found) => Effect.Effect<B, RelayCallError>
  ): Effect.Effect<B, RelayCallError> =>
    Effect.gen(function* () {
      const client = yield* clients.get(found.route.peerAddress)
      counters.forwarded()
      return yield* ask(client)
    }).pipe(
      Effect.flatMap((answer) => {
        const made = named(answer)
        return made === undefined
          ? Effect.fail(
              new RelayError({ reason: "Internal", server, detail: `node ${found.route.nodeId} named no machine` })
            )
          : Effect.succeed(made)
      }),
      Effect.catchIf(
        (e): e is GrpcStatusError.GrpcStatusError => e instanceof GrpcStatusError.GrpcStatusError,
        (e) =>
          Effect.gen(function* () {
            const error = failure(found.route, caller)(e)
            yield* warnSecret(found.route, e)
            if (!found.cached || !staleRoute(e, error)) return yield* Effect.fail(error)
            const fresh = yield* elsewhere(caller, query, false)
            return yield* Option.isNone(fresh) ? here() : again(fresh.value)
          })
      )
    )

  const listSessionsAt = (caller: Caller, query: string, found: Found): ReturnType<RelayCore["Type"]["listSessions"]> =>
    askAt(
      caller,
      query,
      found,
      (client) =>
        client.unary("listSessions", { _tag: "ListSessions", caller, fromNode: nodeId, machine: query }, { metadata }),
      (answer) =>
        answer.machine === undefined
          ? undefined
          : { machine: answer.machine as Machine.Machine, sessions: answer.sessions },
      () => core.listSessions(caller, query),
      (fresh) => listSessionsAt(caller, query, fresh)
    )

  /** `killSession` on the node that holds the machine (the session lives at its agent). */
  const killSessionAt = (
    caller: Caller,
    query: string,
    sessionId: string,
    found: Found
  ): ReturnType<RelayCore["Type"]["killSession"]> =>
    askAt(
      caller,
      query,
      found,
      (client) =>
        client.unary(
          "killSession",
          { _tag: "KillSession", caller, fromNode: nodeId, machine: query, sessionId },
          { metadata }
        ),
      ({ machine, ...rest }) => (machine === undefined ? undefined : { ...rest, machine: machine as Machine.Machine }),
      () => core.killSession(caller, query, sessionId),
      (fresh) => killSessionAt(caller, query, sessionId, fresh)
    )

  /** Ends a live session where its machine's stream is: here, or on the node that holds it. */
  const killSession: RelayCore["Type"]["killSession"] = (caller, query, sessionId) =>
    Effect.flatMap(elsewhere(caller, query), (found) =>
      Option.isNone(found)
        ? core.killSession(caller, query, sessionId)
        : killSessionAt(caller, query, sessionId, found.value)
    )

  const listSessions = (caller: Caller, query: string) =>
    Effect.flatMap(elsewhere(caller, query), (found) =>
      Option.isNone(found) ? core.listSessions(caller, query) : listSessionsAt(caller, query, found.value)
    )

  const shared = { nodeId, routes, clients, counters, metadata }
  return {
    ...core,
    exec,
    attach,
    listSessions,
    killSession,
    revokeShare: ForwardRevoke.revokeShare(core, shared),
    ...ForwardApprovals.make(core, { ...shared, linkFailure })
  }
}
