/**
 * `ApprovalService` (approvals.proto) as a thin adapter over `RelayCore`: workspace key holders list the gate's
 * held sessions of their online machines and answer them. Authenticated like every call (`authorization: Bearer`).
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as ApprovalService from "@cmdop/protocol/ApprovalService"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as Effect from "effect/Effect"
import { bearerOf } from "../Authenticator.js"
import type { RelayCore } from "../RelayCore.js"

const toStatus = (e: RelayCallError) => ErrorCodec.toStatus(e)

export const approvalService = (core: RelayCore["Type"]) => {
  const caller = (ctx: GrpcServer.CallContext) => core.authenticate(bearerOf(ctx.metadata["authorization"]))
  return GrpcServer.service(ApprovalService.definition, {
    listApprovals: (_req, ctx) =>
      Effect.gen(function* () {
        return yield* core.listApprovals(yield* caller(ctx))
      }).pipe(Effect.mapError(toStatus)),
    answerApproval: (req, ctx) =>
      Effect.gen(function* () {
        return yield* core.answerApproval(yield* caller(ctx), {
          approvalId: req.approvalId,
          approve: req.approve,
          forLink: req.forLink
        })
      }).pipe(Effect.mapError(toStatus))
  })
}
