/**
 * The relay's gRPC surface: `ClientService`, `AgentService` and `ApprovalService` as thin adapters over `RelayCore`. Each call
 * authenticates its `authorization: Bearer` metadata first; domain errors leave as gRPC statuses with the typed
 * error in trailing metadata (`ErrorCodec`). The service definitions of `@cmdop/protocol` carry domain values, so
 * neither these handlers nor the core see a wire type; a message the relay cannot read is skipped here.
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as PullStream from "@cmdop/grpc/PullStream"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import * as AgentService from "@cmdop/protocol/AgentService"
import * as ClientService from "@cmdop/protocol/ClientService"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { bearerOf } from "./Authenticator.js"
import * as Admission from "./internal/admission.js"
import { attachInputOfPull, execInputOfPull } from "./internal/callInput.js"
import { approvalService } from "./internal/approvalGrpc.js"
import { firstAndPullWithin } from "./internal/firstAndRest.js"
import * as Limits from "./internal/limits.js"
import { sourceOfPeer } from "./internal/refusalThrottle.js"
import { RelayCore } from "./RelayCore.js"

const toStatus = (e: RelayCallError): GrpcStatusError => ErrorCodec.toStatus(e)

const FIRST_MESSAGE_MILLIS = Duration.toMillis(Limits.FIRST_MESSAGE_TIMEOUT)

/** Why a stream that sent nothing within the first-message timeout was closed. */
const silentStream = (server: string, what: string) =>
  new RelayError({
    reason: "InvalidRequest",
    server,
    detail: `the stream sent no ${what} within ${Limits.FIRST_MESSAGE_TIMEOUT}; the relay closed it`
  })

/**
 * A client stream's first message (none when it ended or failed at once), the rest of its chunk and the pull of
 * the rest, for the life of the scope (`execInputOfPull`, `attachInputOfPull`: no stream stages of their own). A
 * stream that sends nothing within `FIRST_MESSAGE_TIMEOUT` is refused.
 */
const startAndPull = <A, E>(server: string, what: string, requests: Stream.Stream<A, E>) =>
  firstAndPullWithin(requests, FIRST_MESSAGE_MILLIS, () => silentStream(server, what))

/**
 * The call's caller, from its credential and the `x-cmdop-workspace` metadata (a person's per-call workspace,
 * `--workspace`, checked on the relay); refused unread while the peer's address is over its refusal budget.
 */
const caller = (core: RelayCore["Type"], admission: Admission.Admission, ctx: GrpcServer.CallContext) =>
  Admission.authenticateFrom(
    admission,
    core.server,
    sourceOfPeer(ctx.peer),
    core.authenticate(bearerOf(ctx.metadata["authorization"]), ctx.metadata["x-cmdop-workspace"])
  )

/**
 * The services, bound to the `RelayCore` in context; `admission` holds the per-principal stream counts (share it
 * with the browser terminal so both count against one cap).
 */
export const services = (admission: Admission.Admission = Admission.make()) =>
  Effect.map(
    RelayCore,
    (core) => [clientService(core, admission), agentService(core, admission), approvalService(core)] as const
  )

const clientService = (core: RelayCore["Type"], admission: Admission.Admission) =>
  GrpcServer.service(ClientService.definition, {
    whoAmI: (_req, ctx) =>
      Effect.gen(function* () {
        return yield* core.whoami(yield* caller(core, admission, ctx))
      }).pipe(Effect.mapError(toStatus)),
    listMachines: (req, ctx) =>
      Effect.gen(function* () {
        return yield* core.listMachines(yield* caller(core, admission, ctx), { onlineOnly: req.onlineOnly })
      }).pipe(Effect.mapError(toStatus)),
    resolveMachine: (req, ctx) =>
      Effect.gen(function* () {
        return yield* core.resolveMachine(yield* caller(core, admission, ctx), req.query)
      }).pipe(Effect.mapError(toStatus)),
    exec: (requests, ctx) => exec(core, admission, requests, ctx),
    createShare: (req, ctx) =>
      Effect.gen(function* () {
        return yield* core.createShare(
          yield* caller(core, admission, ctx),
          req.machine,
          req.ttlSeconds,
          req.sessionId === undefined ? {} : { sessionId: req.sessionId }
        )
      }).pipe(Effect.mapError(toStatus)),
    listShares: (req, ctx) =>
      Effect.gen(function* () {
        return yield* core.listShares(yield* caller(core, admission, ctx), req.machine, req.page)
      }).pipe(Effect.mapError(toStatus)),
    revokeShare: (req, ctx) =>
      Effect.gen(function* () {
        return yield* core.revokeShare(yield* caller(core, admission, ctx), req.id)
      }).pipe(Effect.mapError(toStatus)),
    attach: (requests, ctx) => attach(core, admission, requests, ctx),
    listSessions: (req, ctx) =>
      Effect.gen(function* () {
        return yield* core.listSessions(yield* caller(core, admission, ctx), req.machine)
      }).pipe(Effect.mapError(toStatus)),
    killSession: (req, ctx) =>
      Effect.gen(function* () {
        return yield* core.killSession(yield* caller(core, admission, ctx), req.machine, req.sessionId)
      }).pipe(Effect.mapError(toStatus))
  })

const agentService = (core: RelayCore["Type"], admission: Admission.Admission) =>
  GrpcServer.service(AgentService.definition, {
    register: (req, ctx) =>
      Effect.gen(function* () {
        const who = yield* caller(core, admission, ctx)
        if (req.identity === undefined)
          return yield* new RelayError({
            reason: "InvalidRequest",
            server: core.server,
            detail: "the agent sent no machine identity"
          })
        return yield* core.register(who, req.identity)
      }).pipe(Effect.mapError(toStatus)),
    // Messages the relay cannot read (a newer agent's) are skipped by the core. The caller is authenticated in
    // the core's setup: no stream stage here (each would hold an executor for the connection's life).
    connect: (requests, ctx) => PullStream.mapError(core.connectAgent(caller(core, admission, ctx), requests), toStatus)
  })

/** `ClientService.Exec`: `ExecStart` first, then stdin (when asked for) up to `eof`. */
const exec = (
  core: RelayCore["Type"],
  admission: Admission.Admission,
  requests: Stream.Stream<ClientService.ExecMessage, GrpcStatusError>,
  ctx: GrpcServer.CallContext
) =>
  PullStream.unwrapScoped(
    Effect.gen(function* () {
      const who = yield* caller(core, admission, ctx)
      yield* Admission.holdStream(admission, core.server, who)
      const [first, more, pull] = yield* startAndPull(core.server, "ExecStart", requests)
      const start = Option.getOrUndefined(first)
      if (start?._tag !== "Start")
        return yield* new RelayError({
          reason: "InvalidRequest",
          server: core.server,
          detail: "the first exec message must be ExecStart"
        })
      return core.exec(who, start.request, execInputOfPull(more, pull, start.stdin), { stdin: start.stdin })
    })
  ).pipe((stream) => PullStream.mapError(stream, toStatus))

/** `ClientService.Attach`: `AttachStart` first, then input and resizes until the client half-closes. */
const attach = (
  core: RelayCore["Type"],
  admission: Admission.Admission,
  requests: Stream.Stream<ClientService.AttachMessage, GrpcStatusError>,
  ctx: GrpcServer.CallContext
) =>
  PullStream.unwrapScoped(
    Effect.gen(function* () {
      const who = yield* caller(core, admission, ctx)
      yield* Admission.holdStream(admission, core.server, who)
      const [first, more, pull] = yield* startAndPull(core.server, "AttachStart", requests)
      const start = Option.getOrUndefined(first)
      if (start?._tag !== "Start")
        return yield* new RelayError({
          reason: "InvalidRequest",
          server: core.server,
          detail: "the first attach message must be AttachStart"
        })
      const request = start.request
      yield* Limits.checkAttachRequest(core.server, request)
      if (request.sessionId === undefined) yield* Admission.checkNewPty(core, who, request.machine)
      // The client's half-close (or cancel) ends `input`, which detaches this viewer.
      const input = attachInputOfPull(more, pull)
      return core.attach(who, request, input)
    })
  ).pipe((stream) => PullStream.mapError(stream, toStatus))
