/**
 * A share link's revocation across the cluster: the revocation is made in the shared store here, and it ends the
 * guests' sessions where the machine's stream is — here, counted; on another live node, which is asked to end them
 * now (`PeerService.EndGuestSessions`) and answers how many it ended.
 */
import * as Machine from "@cmdop/domain/Machine"
import { ShareLink } from "@cmdop/domain/ShareLink"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { RelayCore } from "../RelayCore.js"
import type { MachineRoutes, Route } from "./MachineRoutes.js"
import type { PeerClients } from "./PeerClients.js"
import type { Counters } from "./PeerStats.js"

export interface Options {
  readonly nodeId: string
  readonly routes: MachineRoutes["Type"]
  readonly clients: PeerClients
  readonly counters: Counters
  readonly metadata: Readonly<Record<string, string>>
}

/** How long a revocation waits for the count of the node holding the machine before it answers without one. */
const END_GUEST_SESSIONS_TIMEOUT = "3 seconds"

/** A revoked link's answer without a count of the sessions ended (another node ends them, uncounted). */
const uncounted = (link: ShareLink): ShareLink => {
  const { sessionsEnded: _counted, ...rest } = link
  return new ShareLink(rest)
}

/** `revokeShare` of `core` (this node's), with the count of the node that holds the link's machine. */
export const revokeShare = (core: RelayCore["Type"], options: Options): RelayCore["Type"]["revokeShare"] => {
  const { nodeId, routes, clients, counters, metadata } = options

  /**
   * A revocation ends the guests' sessions where the machine's stream is: here, counted; on another live node, which
   * is asked to end them now and answers how many it ended (now, or a moment before on the cluster event). When that
   * node cannot be asked, it still ends them on the cluster event, and the answer leaves `sessionsEnded` out rather
   * than claim none were running.
   */
  const revokeShare: RelayCore["Type"]["revokeShare"] = (caller, id) =>
    Effect.flatMap(core.revokeShare(caller, id), (link) =>
      core.holds(link.machineId) || (link.sessionsEnded ?? 0) > 0 || !Machine.isMachineId(link.machineId)
        ? Effect.succeed(link)
        : routes.locate(Machine.MachineId.make(link.machineId)).pipe(
            Effect.orElseSucceed(() => Option.none<Route>()),
            Effect.flatMap((route) =>
              Option.isNone(route) || route.value.nodeId === nodeId
                ? Effect.succeed(link)
                : endedAt(route.value, link.id).pipe(
                    Effect.map((sessionsEnded) => new ShareLink({ ...link, sessionsEnded })),
                    Effect.catchAll((e) =>
                      Effect.as(
                        Effect.logWarning(
                          `share link ${link.id} revoked; relay node ${route.value.nodeId}, which holds its machine, was not asked how many guest sessions it ended (${e.message}): it ends them on the cluster event`
                        ),
                        uncounted(link)
                      )
                    )
                  )
            )
          )
    )

  /** Asks the node of `route` to end the sessions of the revoked link `shareId`; how many it ended. */
  const endedAt = (route: Route, shareId: string) =>
    Effect.gen(function* () {
      const client = yield* clients.get(route.peerAddress)
      counters.forwarded()
      const answer = yield* client.unary(
        "endGuestSessions",
        { shareId, fromNode: nodeId },
        { metadata, timeout: END_GUEST_SESSIONS_TIMEOUT }
      )
      return answer.sessionsEnded
    })

  return revokeShare
}
