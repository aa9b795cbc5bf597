/**
 * Forwarding: a `RelayCore` whose exec, attach and session listing go to the node that holds the machine's agent
 * stream when that is another live node of the cluster (`MachineRoutes.locate`), over that node's peer port with
 * the caller this node authenticated. Every client path of the relay (gRPC, the browser terminal, share-link
 * guests, the in-process client) reaches machines through these three, so all of them work across nodes.
 *
 * Which node serves a call: this one when it holds the machine's stream (found in memory first, the hot path), when
 * the name does not resolve (the local handler gives the caller the very error it would anyway), or when no other
 * live node holds it (the local handler then says the machine is offline). Otherwise the owning node, whose route
 * is reused for a moment for the same name (`forwardRoutes.ts`), so a busy client's calls skip the store.
 *
 * Flow control is end to end: the forwarded call's responses are read only as this node's client reads them, so
 * HTTP/2 holds the owning node's writes for that one stream, whose handler then stops acknowledging the agent's
 * output — the same credit the local path runs on. Other sessions over the same peer channel have their own
 * stream windows and go on.
 */
import type * as Machine from "@cmdop/domain/Machine"
import type { AttachEvent, AttachInput, AttachRequest, ExecEvent, ExecRequest } from "@cmdop/domain/RelayClient"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcStatusError from "@cmdop/grpc/GrpcStatusError"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import type * as PeerService from "@cmdop/protocol/PeerService"
import { isReadable } from "@cmdop/protocol/Unreadable"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { Caller } from "../Authenticator.js"
import type { ExecInput, RelayCore } from "../RelayCore.js"
import type { MachineRoutes, Route } from "./MachineRoutes.js"
import type { PeerClient, PeerClients } from "./PeerClients.js"
import * as ForwardRoutes from "./forwardRoutes.js"
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
  const elsewhere = (caller: Caller, query: string, useCache = true): Effect.Effect<Option.Option<Found>> => {
    if (core.connectedHere(caller, query) !== undefined) return Effect.succeedNone
    return Effect.gen(function* () {
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
  }

  /** A peer-link failure (no typed error from the owning node): its node is gone or unreachable. */
  const linkFailure = (e: GrpcStatusError.GrpcStatusError) => Option.isNone(GrpcStatusError.decodePayload(e))

  /** A failed forwarded call: the owning node's refusal as it sent it, or a peer link failure (counted). */
  const failure =
    (route: Route) =>
    (e: GrpcStatusError.GrpcStatusError): RelayCallError => {
      // Whatever went wrong, the next call to this machine looks its route up afresh.
      recent.forget(route.machineId)
      if (!linkFailure(e)) return ErrorCodec.fromStatus(e, server)
      counters.peerError()
      return new RelayError({
        reason: "Unavailable",
        server,
        detail: `relay node ${route.nodeId} (${route.peerAddress}), which holds machine ${route.machineId}, did not answer (${e.message}); try again: if that node is gone, its agents come back through the others`
      })
    }

  /**
   * One forwarded session to `found`'s node, counted and live while it runs. `call` gets the peer client and
   * `answered`, which its input awaits: a call that fails before the owning node answered has consumed no input.
   * On a cached route, such a failure at the peer link means the route went stale (the node died, the machine
   * moved): the call is made once more on a fresh lookup, or served here.
   */
  const forward = <A>(
    caller: Caller,
    query: string,
    found: Found,
    call: (client: PeerClient, answered: Effect.Effect<void>) => Stream.Stream<A, GrpcStatusError.GrpcStatusError>,
    here: () => Stream.Stream<A, RelayCallError>
  ): Stream.Stream<A, RelayCallError> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const answered = yield* Deferred.make<void>()
        const client = yield* Effect.mapError(clients.get(found.route.peerAddress), failure(found.route))
        counters.forwarded()
        yield* Effect.acquireRelease(
          Effect.sync(() => counters.forwardedLive++),
          () => Effect.sync(() => counters.forwardedLive--)
        )
        const retry = (e: GrpcStatusError.GrpcStatusError) =>
          Effect.gen(function* () {
            const stale = found.cached && linkFailure(e) && !(yield* Deferred.isDone(answered))
            const error = failure(found.route)(e)
            if (!stale) return Stream.fail(error)
            const fresh = yield* elsewhere(caller, query, false)
            return Option.isNone(fresh) ? here() : forward(caller, query, fresh.value, call, here)
          })
        return call(client, Deferred.await(answered)).pipe(
          Stream.tap(() => Deferred.succeed(answered, undefined)),
          Stream.catchAll((e) => Stream.unwrap(retry(e)))
        )
      })
    )

  const exec = <E>(
    caller: Caller,
    request: ExecRequest,
    input: Stream.Stream<ExecInput, E> | undefined,
    execOptions: { readonly stdin?: boolean } = {}
  ): Stream.Stream<ExecEvent, RelayCallError> => {
    const here = () => core.exec(caller, request, input, execOptions)
    const stdin = execOptions.stdin ?? input !== undefined
    const start: PeerService.ExecMessage = { _tag: "Start", caller, fromNode: nodeId, request, stdin }
    const rest: Stream.Stream<PeerService.ExecMessage> =
      input === undefined
        ? Stream.empty
        : Stream.catchAll(input, () => (stdin ? Stream.succeed({ _tag: "Eof" } as const) : Stream.empty))
    const call = (client: PeerClient, answered: Effect.Effect<void>) =>
      Stream.filter(
        client.bidi("exec", Stream.concat(Stream.succeed(start), Stream.unwrap(Effect.as(answered, rest))), {
          metadata
        }),
        isReadable
      )
    return Stream.unwrap(
      Effect.map(elsewhere(caller, request.machine), (found) =>
        Option.isNone(found) ? here() : forward(caller, request.machine, found.value, call, here)
      )
    )
  }

  const attach = (
    caller: Caller,
    request: AttachRequest,
    input: Stream.Stream<AttachInput>
  ): Stream.Stream<AttachEvent, RelayCallError> => {
    const here = () => core.attach(caller, request, input)
    const start: PeerService.AttachMessage = { _tag: "Start", caller, fromNode: nodeId, request }
    const call = (client: PeerClient, answered: Effect.Effect<void>) =>
      Stream.filter(
        client.bidi("attach", Stream.concat(Stream.succeed(start), Stream.unwrap(Effect.as(answered, input))), {
          metadata
        }),
        isReadable
      )
    return Stream.unwrap(
      Effect.map(elsewhere(caller, request.machine), (found) =>
        Option.isNone(found) ? here() : forward(caller, request.machine, found.value, call, here)
      )
    )
  }

  const listSessionsAt = (caller: Caller, query: string, found: Found): ReturnType<RelayCore["Type"]["listSessions"]> =>
    Effect.gen(function* () {
      const client = yield* clients.get(found.route.peerAddress)
      counters.forwarded()
      return yield* client.unary(
        "listSessions",
        { _tag: "ListSessions", caller, fromNode: nodeId, machine: query },
        { metadata }
      )
    }).pipe(
      Effect.catchAll((e) =>
        Effect.gen(function* () {
          const error = failure(found.route)(e)
          if (!found.cached || !linkFailure(e)) return yield* Effect.fail(error)
          const fresh = yield* elsewhere(caller, query, false)
          return yield* Option.isNone(fresh)
            ? core.listSessions(caller, query)
            : listSessionsAt(caller, query, fresh.value)
        })
      ),
      Effect.flatMap((answer) =>
        answer.machine === undefined
          ? Effect.fail(
              new RelayError({ reason: "Internal", server, detail: `node ${found.route.nodeId} named no machine` })
            )
          : Effect.succeed({ machine: answer.machine as Machine.Machine, sessions: answer.sessions })
      )
    )

  const listSessions = (caller: Caller, query: string) =>
    Effect.flatMap(elsewhere(caller, query), (found) =>
      Option.isNone(found) ? core.listSessions(caller, query) : listSessionsAt(caller, query, found.value)
    )

  return { ...core, exec, attach, listSessions }
}
