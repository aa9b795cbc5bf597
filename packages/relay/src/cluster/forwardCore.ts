/**
 * Forwarding: a `RelayCore` whose exec, attach and session listing go to the node that holds the machine's agent
 * stream when that is another live node of the cluster (`MachineRoutes.locate`), over that node's peer port with
 * the caller this node authenticated. Every client path of the relay (gRPC, the browser terminal, share-link
 * guests, the in-process client) reaches machines through these three, so all of them work across nodes.
 *
 * Which node serves a call: this one when it holds the machine's stream (found in memory first, the hot path), when
 * the name does not resolve (the local handler gives the caller the very error it would anyway), or when no other
 * live node holds it (the local handler then says the machine is offline). Otherwise the owning node.
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
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { Caller } from "../Authenticator.js"
import type { ExecInput, RelayCore } from "../RelayCore.js"
import type { MachineRoutes, Route } from "./MachineRoutes.js"
import type { PeerClient, PeerClients } from "./PeerClients.js"
import * as PeerSecret from "./PeerSecret.js"
import type { Counters } from "./PeerStats.js"

export interface Options {
  readonly nodeId: string
  readonly secret: Redacted.Redacted<string>
  readonly routes: MachineRoutes["Type"]
  readonly clients: PeerClients
  readonly counters: Counters
}

/** `core` (this node's local core) with exec, attach and session listing forwarded where the machine is. */
export const wrap = (core: RelayCore["Type"], options: Options): RelayCore["Type"] => {
  const { nodeId, routes, clients, counters } = options
  const server = core.server
  const metadata = PeerSecret.metadata(options.secret)

  /** The route to another live node holding the machine `query` names, or `None` to serve the call here. */
  const elsewhere = (caller: Caller, query: string): Effect.Effect<Option.Option<Route>> => {
    if (core.connectedHere(caller, query) !== undefined) return Effect.succeedNone
    return Effect.gen(function* () {
      const machine = yield* Effect.option(core.resolveMachine(caller, query))
      if (Option.isNone(machine) || core.holds(machine.value.id)) return Option.none()
      const route = yield* routes.locate(machine.value.id).pipe(
        Effect.tapError((e) => Effect.logWarning(`cannot read the routing table: ${e.detail}`)),
        Effect.orElseSucceed(() => Option.none<Route>())
      )
      return Option.filter(route, (r) => r.nodeId !== nodeId)
    })
  }

  /** A failed forwarded call: the owning node's refusal as it sent it, or a peer link failure (counted). */
  const failure =
    (route: Route) =>
    (e: GrpcStatusError.GrpcStatusError): RelayCallError => {
      if (Option.isSome(GrpcStatusError.decodePayload(e))) return ErrorCodec.fromStatus(e, server)
      counters.peerError()
      return new RelayError({
        reason: "Unavailable",
        server,
        detail: `relay node ${route.nodeId} (${route.peerAddress}), which holds machine ${route.machineId}, did not answer (${e.message}); try again: if that node is gone, its agents come back through the others`
      })
    }

  /** A forwarded session: counted, live while it runs, its errors as the client should see them. */
  const session = <A>(route: Route, open: (client: PeerClient) => Stream.Stream<A, GrpcStatusError.GrpcStatusError>) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const client = yield* clients.get(route.peerAddress)
        counters.forwarded()
        yield* Effect.acquireRelease(
          Effect.sync(() => counters.forwardedLive++),
          () => Effect.sync(() => counters.forwardedLive--)
        )
        return open(client)
      })
    ).pipe(Stream.mapError(failure(route)))

  const exec = <E>(
    caller: Caller,
    request: ExecRequest,
    input: Stream.Stream<ExecInput, E> | undefined,
    execOptions: { readonly stdin?: boolean } = {}
  ): Stream.Stream<ExecEvent, RelayCallError> =>
    Stream.unwrap(
      Effect.map(elsewhere(caller, request.machine), (route) => {
        if (Option.isNone(route)) return core.exec(caller, request, input, execOptions)
        const stdin = execOptions.stdin ?? input !== undefined
        const start: PeerService.ExecMessage = { _tag: "Start", caller, fromNode: nodeId, request, stdin }
        const rest: Stream.Stream<PeerService.ExecMessage> =
          input === undefined
            ? Stream.empty
            : Stream.catchAll(input, () => (stdin ? Stream.succeed({ _tag: "Eof" } as const) : Stream.empty))
        return session(route.value, (client) =>
          Stream.filter(client.bidi("exec", Stream.concat(Stream.succeed(start), rest), { metadata }), isReadable)
        )
      })
    )

  const attach = (
    caller: Caller,
    request: AttachRequest,
    input: Stream.Stream<AttachInput>
  ): Stream.Stream<AttachEvent, RelayCallError> =>
    Stream.unwrap(
      Effect.map(elsewhere(caller, request.machine), (route) => {
        if (Option.isNone(route)) return core.attach(caller, request, input)
        const start: PeerService.AttachMessage = { _tag: "Start", caller, fromNode: nodeId, request }
        return session(route.value, (client) =>
          Stream.filter(client.bidi("attach", Stream.concat(Stream.succeed(start), input), { metadata }), isReadable)
        )
      })
    )

  const listSessions = (caller: Caller, query: string) =>
    Effect.flatMap(elsewhere(caller, query), (route) => {
      if (Option.isNone(route)) return core.listSessions(caller, query)
      return Effect.gen(function* () {
        const client = yield* clients.get(route.value.peerAddress)
        counters.forwarded()
        return yield* client.unary(
          "listSessions",
          { _tag: "ListSessions", caller, fromNode: nodeId, machine: query },
          { metadata }
        )
      }).pipe(
        Effect.mapError(failure(route.value)),
        Effect.flatMap(({ machine, sessions }) =>
          machine === undefined
            ? Effect.fail(
                new RelayError({ reason: "Internal", server, detail: `node ${route.value.nodeId} named no machine` })
              )
            : Effect.succeed({ machine: machine as Machine.Machine, sessions })
        )
      )
    })

  return { ...core, exec, attach, listSessions }
}
