/**
 * `ApprovalService` (approvals.proto) in domain terms: workspace key holders list the gate's held sessions and
 * answer them. The relay serves this definition and clients dial it; neither sees generated types.
 */
import type { MachineApproval } from "@cmdop/domain/RelayClient"
import * as GrpcCodec from "@cmdop/grpc/GrpcCodec"
import * as ApprovalCodec from "./ApprovalCodec.js"
import * as Wire from "./generated/cmdop/connect/v1/approvals.js"
import { mapped } from "./internal/wireCodec.js"

/** `listApprovals` asks nothing (an object: grpc-js treats a falsy request as none). */
export type ListApprovalsRequest = Record<string, never>

export interface ApprovalAnswer {
  readonly approvalId: string
  readonly approve: boolean
  /** Also let the share link's later asks through, for the rest of its lifetime. */
  readonly forLink: boolean
}

export interface AnswerApprovalResponse {
  /** The hostname of the machine that held the session. */
  readonly machine: string
}

const S = Wire.ApprovalServiceService

export const definition = {
  listApprovals: GrpcCodec.method(S.listApprovals, {
    request: mapped(
      Wire.ListApprovalsRequest,
      (_: ListApprovalsRequest) => ({}),
      (): ListApprovalsRequest => ({})
    ),
    response: mapped(
      Wire.ListApprovalsResponse,
      (list: ReadonlyArray<MachineApproval>) => ({
        approvals: list.map((a) => ({ machine: a.machine, approval: ApprovalCodec.pendingToWire(a.approval) }))
      }),
      (w): ReadonlyArray<MachineApproval> =>
        w.approvals.flatMap((a) =>
          a.approval === undefined ? [] : [{ machine: a.machine, approval: ApprovalCodec.pendingFromWire(a.approval) }]
        )
    )
  }),
  answerApproval: GrpcCodec.method(S.answerApproval, {
    request: mapped(
      Wire.AnswerApprovalRequest,
      (a: ApprovalAnswer) => ({ approvalId: a.approvalId, approve: a.approve, forLink: a.forLink }),
      (w): ApprovalAnswer => ({ approvalId: w.approvalId, approve: w.approve, forLink: w.forLink })
    ),
    response: mapped(
      Wire.AnswerApprovalResponse,
      (r: AnswerApprovalResponse) => ({ machine: r.machine }),
      (w): AnswerApprovalResponse => ({ machine: w.machine })
    )
  })
} as const
