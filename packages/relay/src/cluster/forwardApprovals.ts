/**
 * A gate's approvals across the cluster: the requests a machine's gate holds are kept by the node that holds the
 * machine's agent stream, so a list through any node gathers every live node's, and an answer through any node goes
 * to the node whose gate holds the request (`PeerService.ListApprovals`, `AnswerApproval`).
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import type * as GrpcStatusError from "@cmdop/grpc/GrpcStatusError"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as Effect from "effect/Effect"
import type { RelayCore } from "../RelayCore.js"
import type { MachineRoutes } from "./MachineRoutes.js"
import type { PeerClients } from "./PeerClients.js"

export interface Options {
  readonly nodeId: string
  readonly routes: MachineRoutes["Type"]
  readonly clients: PeerClients
  readonly metadata: Readonly<Record<string, string>>
  /** Whether a failed peer call failed at the link (no typed answer of the node). */
  readonly linkFailure: (e: GrpcStatusError.GrpcStatusError) => boolean
}

/** `listApprovals` and `answerApproval` of `core` (this node's), across the live nodes. */
export const make = (
  core: RelayCore["Type"],
  options: Options
): Pick<RelayCore["Type"], "listApprovals" | "answerApproval"> => {
  const { nodeId, routes, clients, metadata, linkFailure } = options
  const server = core.server

  /** The other live nodes: the gates of their machines hold their own requests for approval. */
  const peers = routes.liveNodes.pipe(
    Effect.map((nodes) => nodes.filter((n) => n.nodeId !== nodeId)),
    Effect.tapError((e) => Effect.logWarning(`cannot read the cluster's live nodes: ${e.detail}`)),
    Effect.orElseSucceed(() => [])
  )

  /**
   * The requests the gates of the workspace's machines hold, on every live node: this node's (which checks the
   * caller may see them) and each other node's. A node that does not answer within 2 s is left out, and logged.
   */
  const listApprovals: RelayCore["Type"]["listApprovals"] = (caller) =>
    Effect.flatMap(core.listApprovals(caller), (here) =>
      Effect.flatMap(peers, (others) =>
        Effect.forEach(
          others,
          (node) =>
            Effect.flatMap(clients.get(node.peerAddress), (client) =>
              client.unary(
                "listApprovals",
                { _tag: "ListApprovals", caller, fromNode: nodeId },
                { metadata, timeout: "2 seconds" }
              )
            ).pipe(
              Effect.tapError((e) =>
                Effect.logWarning(`relay node ${node.nodeId} did not list its approvals: ${e.message}`)
              ),
              Effect.orElseSucceed(() => [])
            ),
          { concurrency: "unbounded" }
        ).pipe(
          Effect.map((lists) => [...here, ...lists.flat()].sort((a, b) => a.approval.createdAt - b.approval.createdAt))
        )
      )
    )

  /** This node's gates hold no such request (it may be another node's). */
  const noSuchApproval = (e: RelayCallError) =>
    e._tag === "RelayError" && e.reason === "InvalidRequest" && e.detail.startsWith("no pending approval")

  /**
   * Answers a held request where its machine's gate holds it: here, or on the other live nodes in turn; when none
   * holds it, the answer is this node's "no pending approval".
   */
  const answerApproval: RelayCore["Type"]["answerApproval"] = (caller, answer) =>
    Effect.catchIf(core.answerApproval(caller, answer), noSuchApproval, (missing) =>
      Effect.flatMap(peers, (others) =>
        Effect.reduce(others, undefined as { readonly machine: string } | undefined, (done, node) =>
          done !== undefined
            ? Effect.succeed(done)
            : Effect.flatMap(clients.get(node.peerAddress), (client) =>
                client.unary(
                  "answerApproval",
                  { _tag: "AnswerApproval", caller, fromNode: nodeId, answer },
                  { metadata, timeout: "2 seconds" }
                )
              ).pipe(
                Effect.map((answered): { readonly machine: string } | undefined => answered),
                Effect.catchAll((e) => {
                  const error = ErrorCodec.fromStatus(e, server)
                  return noSuchApproval(error) || linkFailure(e) ? Effect.succeed(undefined) : Effect.fail(error)
                })
              )
        ).pipe(Effect.flatMap((done) => (done === undefined ? Effect.fail(missing) : Effect.succeed(done))))
      )
    )

  return { listApprovals, answerApproval }
}
