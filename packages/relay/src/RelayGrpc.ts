/**
 * The relay's gRPC surface: `ClientService` and `AgentService` as thin adapters over `RelayCore`. Each call
 * authenticates its `authorization: Bearer` metadata first; domain errors leave as gRPC statuses with the typed
 * error in trailing metadata (`ErrorCodec`). This is the wire edge: messages are decoded and encoded here with the
 * codecs of `@cmdop/protocol`, and the core sees only domain values.
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import * as AgentLinkCodec from "@cmdop/protocol/AgentLinkCodec"
import * as AttachCodec from "@cmdop/protocol/AttachCodec"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as ExecCodec from "@cmdop/protocol/ExecCodec"
import { AgentServiceService } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import {
  type AttachRequest,
  ClientServiceService,
  type ExecRequest
} from "@cmdop/protocol/generated/cmdop/connect/v1/client"
import * as MachineCodec from "@cmdop/protocol/MachineCodec"
import * as ShareCodec from "@cmdop/protocol/ShareCodec"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { bearerOf } from "./Authenticator.js"
import { firstAndRest } from "./internal/firstAndRest.js"
import { type ExecInput, RelayCore } from "./RelayCore.js"

const toStatus = (e: RelayCallError): GrpcStatusError => ErrorCodec.toStatus(e)

/** A client stream's first message (none when it ended or failed at once) and the rest, for the life of the scope. */
const startAndRest = <A, E>(requests: Stream.Stream<A, E>) =>
  Effect.orElseSucceed(firstAndRest(requests), () => [Option.none<A>(), Stream.empty as Stream.Stream<A, E>] as const)

/** The `x-cmdop-workspace` metadata: a person's per-call workspace (`--workspace`), checked on the relay. */
const caller = (core: RelayCore["Type"], ctx: GrpcServer.CallContext) =>
  core.authenticate(bearerOf(ctx.metadata["authorization"]), ctx.metadata["x-cmdop-workspace"])

/** Both services, bound to the `RelayCore` in context. */
export const services = Effect.map(RelayCore, (core) => [clientService(core), agentService(core)] as const)

const clientService = (core: RelayCore["Type"]) =>
  GrpcServer.service(ClientServiceService, {
    whoAmI: (_req, ctx) =>
      Effect.gen(function* () {
        const p = yield* core.whoami(yield* caller(core, ctx))
        return {
          workspaceId: p.workspaceId,
          workspaceName: p.workspaceName,
          principalKind: p.kind,
          principal: p.principal,
          machineId: p.machineId ?? ""
        }
      }).pipe(Effect.mapError(toStatus)),
    listMachines: (req, ctx) =>
      Effect.gen(function* () {
        const list = yield* core.listMachines(yield* caller(core, ctx), { onlineOnly: req.onlineOnly })
        return { machines: list.machines.map(MachineCodec.toWire), now: list.now }
      }).pipe(Effect.mapError(toStatus)),
    resolveMachine: (req, ctx) =>
      Effect.gen(function* () {
        return MachineCodec.toWire(yield* core.resolveMachine(yield* caller(core, ctx), req.query))
      }).pipe(Effect.mapError(toStatus)),
    exec: (requests, ctx) => exec(core, requests, ctx),
    createShare: (req, ctx) =>
      Effect.gen(function* () {
        const minted = yield* core.createShare(yield* caller(core, ctx), req.machine, req.ttlSeconds)
        return ShareCodec.toWire(minted.link, { url: minted.url, token: minted.token })
      }).pipe(Effect.mapError(toStatus)),
    listShares: (req, ctx) =>
      Effect.gen(function* () {
        const links = yield* core.listShares(yield* caller(core, ctx), req.machine === "" ? undefined : req.machine)
        return { links: links.map((l) => ShareCodec.toWire(l)) }
      }).pipe(Effect.mapError(toStatus)),
    revokeShare: (req, ctx) =>
      Effect.gen(function* () {
        return ShareCodec.toWire(yield* core.revokeShare(yield* caller(core, ctx), req.id))
      }).pipe(Effect.mapError(toStatus)),
    attach: (requests, ctx) => attach(core, requests, ctx),
    listSessions: (req, ctx) =>
      Effect.gen(function* () {
        const r = yield* core.listSessions(yield* caller(core, ctx), req.machine)
        return { machine: MachineCodec.toWire(r.machine), sessions: r.sessions.map(AttachCodec.sessionToWire) }
      }).pipe(Effect.mapError(toStatus))
  })

const agentService = (core: RelayCore["Type"]) =>
  GrpcServer.service(AgentServiceService, {
    register: (req, ctx) =>
      Effect.gen(function* () {
        const who = yield* caller(core, ctx)
        if (req.identity === undefined)
          return yield* new RelayError({
            reason: "Protocol",
            server: core.server,
            detail: "the agent sent no machine identity"
          })
        const r = yield* core.register(who, AgentLinkCodec.identityFromWire(req.identity))
        return { machine: MachineCodec.toWire(r.machine), workspaceName: r.workspaceName }
      }).pipe(Effect.mapError(toStatus)),
    // Messages the relay cannot read (a newer agent's) are skipped.
    connect: (requests, ctx) =>
      Stream.unwrap(
        Effect.map(caller(core, ctx), (who) =>
          core.connectAgent(
            who,
            Stream.filterMap(requests, (m) => Option.fromNullable(AgentLinkCodec.agentMessageFromWire(m)))
          )
        )
      ).pipe(Stream.map(AgentLinkCodec.relayMessageToWire), Stream.mapError(toStatus))
  })

/** `ClientService.Exec`: `ExecStart` first, then stdin (when asked for) up to `eof`. */
const exec = (
  core: RelayCore["Type"],
  requests: Stream.Stream<ExecRequest, GrpcStatusError>,
  ctx: GrpcServer.CallContext
) =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const who = yield* caller(core, ctx)
      const [first, rest] = yield* startAndRest(requests)
      const start = Option.getOrUndefined(first)
      if (start?.kind?.$case !== "start")
        return yield* new RelayError({
          reason: "Protocol",
          server: core.server,
          detail: "the first exec message must be ExecStart"
        })
      const input: Stream.Stream<ExecInput> | undefined = start.kind.value.stdin
        ? rest.pipe(
            Stream.filterMap((m): Option.Option<ExecInput> => {
              const k = m.kind
              if (k?.$case === "stdin") return Option.some({ _tag: "Stdin", data: k.value })
              if (k?.$case === "eof") return Option.some({ _tag: "Eof" })
              return Option.none()
            }),
            Stream.takeUntil((i) => i._tag === "Eof"),
            Stream.catchAll(() => Stream.succeed<ExecInput>({ _tag: "Eof" }))
          )
        : undefined
      return core.exec(who, ExecCodec.startFromWire(start.kind.value), input).pipe(Stream.map(ExecCodec.eventToWire))
    })
  ).pipe(Stream.mapError(toStatus))

/** `ClientService.Attach`: `AttachStart` first, then input and resizes until the client half-closes. */
const attach = (
  core: RelayCore["Type"],
  requests: Stream.Stream<AttachRequest, GrpcStatusError>,
  ctx: GrpcServer.CallContext
) =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const who = yield* caller(core, ctx)
      const [first, rest] = yield* startAndRest(requests)
      const start = Option.getOrUndefined(first)
      if (start?.kind?.$case !== "start")
        return yield* new RelayError({
          reason: "Protocol",
          server: core.server,
          detail: "the first attach message must be AttachStart"
        })
      // The client's half-close (or cancel) ends `input`, which detaches this viewer.
      const input = rest.pipe(
        Stream.filterMap((m) => Option.fromNullable(AttachCodec.inputFromWire(m))),
        Stream.catchAll(() => Stream.empty)
      )
      return core
        .attach(who, AttachCodec.startFromWire(start.kind.value), input)
        .pipe(Stream.map(AttachCodec.eventToWire))
    })
  ).pipe(Stream.mapError(toStatus))
