/**
 * The peer port of a relay node: `PeerService` over this node's own (local, never forwarding) `RelayCore`. Every
 * call must carry the cluster secret (`PeerSecret`), or it is refused with UNAUTHENTICATED before anything is read;
 * the caller it names was authenticated by the forwarding node, and runs here exactly as a local client would, so
 * the owning node keeps every rule of its own (roles, guest scope, the gate, flow control, guest re-checks). Domain
 * errors leave with their typed payload (`ErrorCodec`), so the forwarding node hands its client the same error.
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import { AccessError } from "@cmdop/domain/AccessError"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as PeerService from "@cmdop/protocol/PeerService"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { attachInput, execInput } from "../internal/callInput.js"
import { firstAndRest } from "../internal/firstAndRest.js"
import * as Limits from "../internal/limits.js"
import type { RelayCore } from "../RelayCore.js"
import * as PeerSecret from "./PeerSecret.js"
import type { Counters } from "./PeerStats.js"

const refusal = ErrorCodec.toStatus(
  new AccessError({
    reason: "Unauthenticated",
    detail: "this is a relay node's peer port: calls need the cluster secret (clients use the relay's gRPC port)"
  })
)

/** The call's first message within the limit every relay stream has, and the rest. */
const startAndRest = <A>(server: string, requests: Stream.Stream<A, GrpcStatusError>) =>
  Effect.orElseSucceed(
    firstAndRest(requests),
    () => [Option.none<A>(), Stream.empty as Stream.Stream<A, GrpcStatusError>] as const
  ).pipe(
    Effect.timeoutFail({
      duration: Limits.FIRST_MESSAGE_TIMEOUT,
      onTimeout: () =>
        new RelayError({ reason: "InvalidRequest", server, detail: "the peer sent no start of its forwarded call" })
    })
  )

const notStart = (server: string, what: string) =>
  new RelayError({
    reason: "InvalidRequest",
    server,
    detail: `the first message of a forwarded ${what} must be its start, with a caller this node can read`
  })

/**
 * The `PeerService` handlers over `core` (this node's local core: a forwarded call is never forwarded again), with
 * `secret` checked on every call.
 */
export const service = (core: RelayCore["Type"], secret: Redacted.Redacted<string>, counters: Counters) => {
  const server = core.server
  /** Refuses a call without the secret (counted), and counts the ones let in. */
  const check = (ctx: GrpcServer.CallContext): Effect.Effect<void, GrpcStatusError> =>
    Effect.suspend(() => {
      if (!PeerSecret.matches(secret, ctx.metadata[PeerService.CLUSTER_SECRET_HEADER])) {
        counters.refused++
        return Effect.fail(refusal)
      }
      counters.servedTotal++
      return Effect.void
    })
  /** A forwarded session, checked, tracked while it runs. */
  const session = <A>(ctx: GrpcServer.CallContext, body: Stream.Stream<A, RelayCallError>) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        yield* check(ctx)
        yield* Effect.acquireRelease(
          Effect.sync(() => counters.servedLive++),
          () => Effect.sync(() => counters.servedLive--)
        )
        return Stream.mapError(body, ErrorCodec.toStatus)
      })
    )

  const exec = (requests: Stream.Stream<PeerService.ExecMessage, GrpcStatusError>) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const [first, rest] = yield* startAndRest(server, requests)
        const start = Option.getOrUndefined(first)
        if (start?._tag !== "Start") return yield* notStart(server, "exec")
        return core.exec(start.caller, start.request, execInput(rest, start.stdin), { stdin: start.stdin })
      })
    )

  const attach = (requests: Stream.Stream<PeerService.AttachMessage, GrpcStatusError>) =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const [first, rest] = yield* startAndRest(server, requests)
        const start = Option.getOrUndefined(first)
        if (start?._tag !== "Start") return yield* notStart(server, "attach")
        // The forwarding node's half-close (its client detached) ends `input`, which detaches this viewer.
        const input = attachInput(rest)
        return core.attach(start.caller, start.request, input)
      })
    )

  return GrpcServer.service(PeerService.definition, {
    exec: (requests, ctx) => session(ctx, exec(requests)),
    attach: (requests, ctx) => session(ctx, attach(requests)),
    listSessions: (request, ctx) =>
      Effect.zipRight(
        check(ctx),
        (request._tag === "Unreadable"
          ? Effect.fail(notStart(server, "session listing"))
          : core.listSessions(request.caller, request.machine)
        ).pipe(Effect.mapError(ErrorCodec.toStatus))
      )
  })
}
