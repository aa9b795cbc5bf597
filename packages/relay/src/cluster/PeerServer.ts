/**
 * The peer port of a relay node: `PeerService` over this node's own (local, never forwarding) `RelayCore`. Every
 * call must carry the cluster secret (`PeerSecret`), or it is refused with UNAUTHENTICATED before anything is read;
 * the caller it names was authenticated by the forwarding node, and runs here exactly as a local client would, so
 * the owning node keeps every rule of its own (roles, guest scope, the gate, flow control, guest re-checks). Domain
 * errors leave with their typed payload (`ErrorCodec`), so the forwarding node hands its client the same error.
 *
 * A forwarded exec or attach whose client went away ends with the forwarding node's `Cancel` (not a reset: see
 * `peer.proto`): the handler is interrupted as on a reset and the call answered CANCELLED. The `Cancel` is seen
 * where the session reads its input (no reader of its own on the hot path), so a call whose input is not being read
 * (stdin waiting for the agent's credit) ends on the forwarding node's fallback reset instead, 5 s later, paced with
 * that connection's other resets (`ResetPacer`).
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as PullStream from "@cmdop/grpc/PullStream"
import { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import { AccessError } from "@cmdop/domain/AccessError"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as PeerService from "@cmdop/protocol/PeerService"
import type { Unreadable } from "@cmdop/protocol/Unreadable"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { attachInputOfPull, execInputOfPull } from "../internal/callInput.js"
import { firstAndPullWithin } from "../internal/firstAndRest.js"
import * as Limits from "../internal/limits.js"
import type { RelayCore } from "../RelayCore.js"
import * as PeerSecret from "./PeerSecret.js"
import type { Counters } from "./PeerStats.js"

const refusal = ErrorCodec.toStatus(
  new AccessError({
    reason: "Unauthenticated",
    detail: PeerSecret.REFUSAL_DETAIL
  })
)

const FIRST_MESSAGE_MILLIS = Duration.toMillis(Limits.FIRST_MESSAGE_TIMEOUT)

const noStart = (server: string) => () =>
  new RelayError({ reason: "InvalidRequest", server, detail: "the peer sent no start of its forwarded call" })

/**
 * The call's first message within the limit every relay stream has, what came with it and the pull of the rest
 * (read by `execInputOfPull`: no stream stage of its own). One timer in the request reader's wait
 * (`firstAndPullWithin`), not a race of fibers.
 */
const startAndPull = <A>(server: string, requests: Stream.Stream<A, GrpcStatusError>) =>
  firstAndPullWithin(requests, FIRST_MESSAGE_MILLIS, noStart(server))

/**
 * The status a forwarded call stopped by its `Cancel` ends with: the forwarding node's client went away, and the
 * call ends as that client's reset would have ended it (`GrpcServer.CallContext.abort`).
 */
const cancelled = (ctx: GrpcServer.CallContext) => () =>
  ctx.abort(new GrpcStatusError({ code: CANCELLED, details: "cancelled by the forwarding node" }))

const CANCELLED = 1

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
  const isSecret = PeerSecret.checker(secret)
  /** Refuses a call without the secret (counted), and counts the ones let in. */
  const check = (ctx: GrpcServer.CallContext): Effect.Effect<void, GrpcStatusError> =>
    Effect.suspend(() => {
      if (!isSecret(ctx.metadata[PeerService.CLUSTER_SECRET_HEADER])) {
        counters.refused++
        return Effect.fail(refusal)
      }
      counters.servedTotal++
      return Effect.void
    })
  /**
   * Counts a forwarded session live while its scope lasts. A plain scope finalizer: `acquireRelease` would capture
   * the fiber's refs and diff them twice (the whole context) when the scope closes, on every call.
   */
  const live = Effect.uninterruptible(
    Effect.flatMap(Effect.scope, (scope) => {
      counters.servedLive++
      return Scope.addFinalizer(
        scope,
        Effect.sync(() => counters.servedLive--)
      )
    })
  )
  /**
   * A forwarded session: checked, tracked while it runs, its start read, then `body` for it; one stream stage in
   * all (the error mapping), so what the call costs beyond the local session is the peer link alone.
   */
  const session = <A>(
    ctx: GrpcServer.CallContext,
    open: Effect.Effect<Stream.Stream<A, RelayCallError>, RelayCallError, Scope.Scope>
  ) =>
    PullStream.unwrapScoped(
      Effect.gen(function* () {
        yield* check(ctx)
        yield* live
        return PullStream.mapError(yield* Effect.mapError(open, ErrorCodec.toStatus), ErrorCodec.toStatus)
      })
    )

  /**
   * A forwarded one-answer call: checked, then `run` for its request, which names the caller the forwarding node
   * authenticated (a request this node cannot read is refused as `what` without a start).
   */
  const asked = <R extends { readonly _tag: string }, A>(
    ctx: GrpcServer.CallContext,
    request: R | Unreadable,
    what: string,
    run: (request: R) => Effect.Effect<A, RelayCallError>
  ): Effect.Effect<A, GrpcStatusError> =>
    Effect.zipRight(
      check(ctx),
      (request._tag === "Unreadable" ? Effect.fail(notStart(server, what)) : run(request as R)).pipe(
        Effect.mapError(ErrorCodec.toStatus)
      )
    )

  return GrpcServer.service(PeerService.definition, {
    exec: (requests, ctx) =>
      session(
        ctx,
        Effect.gen(function* () {
          const [first, more, pull] = yield* startAndPull(server, requests)
          const start = Option.getOrUndefined(first)
          if (start?._tag !== "Start") return yield* notStart(server, "exec")
          return core.exec(start.caller, start.request, execInputOfPull(more, pull, start.stdin, cancelled(ctx)), {
            stdin: start.stdin
          })
        })
      ),
    // The forwarding node's half-close (its client detached) ends the input, which detaches this viewer. Its
    // `Cancel` (its client went away) ends the call as a reset would: the handler is interrupted.
    attach: (requests, ctx) =>
      session(
        ctx,
        Effect.gen(function* () {
          const [first, more, pull] = yield* startAndPull(server, requests)
          const start = Option.getOrUndefined(first)
          if (start?._tag !== "Start") return yield* notStart(server, "attach")
          return core.attach(start.caller, start.request, attachInputOfPull(more, pull, cancelled(ctx)))
        })
      ),
    listSessions: (request, ctx) =>
      asked(ctx, request, "session listing", (r) => core.listSessions(r.caller, r.machine)),
    listApprovals: (request, ctx) => asked(ctx, request, "approval listing", (r) => core.listApprovals(r.caller)),
    answerApproval: (request, ctx) =>
      asked(ctx, request, "approval answer", (r) => core.answerApproval(r.caller, r.answer)),
    killSession: (request, ctx) =>
      asked(ctx, request, "session kill", (r) => core.killSession(r.caller, r.machine, r.sessionId)),
    // The link is checked against the store here: a question about a link still valid ends nothing.
    endGuestSessions: (request, ctx) =>
      Effect.zipRight(
        check(ctx),
        Effect.map(core.endRevokedLink(request.shareId), (sessionsEnded) => ({ sessionsEnded }))
      )
  })
}
