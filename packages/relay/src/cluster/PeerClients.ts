/**
 * This node's clients of the other nodes' peer ports: one gRPC channel per peer address, opened on first use and
 * kept for the life of the node (HTTP/2 multiplexes every forwarded session to that node over it, each with its
 * own flow-control window). A dead peer's channel stays: its calls fail at once (UNAVAILABLE) and the routing
 * table stops naming the node when its lease lapses.
 */
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import * as GrpcPassthrough from "@cmdop/grpc/GrpcPassthrough"
import * as ResetPacer from "@cmdop/grpc/ResetPacer"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import * as PeerService from "@cmdop/protocol/PeerService"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"

export type PeerClient = GrpcClient.GrpcClient<typeof PeerService.definition>

export interface PeerClients {
  readonly get: (address: string) => Effect.Effect<PeerClient, GrpcStatusError>
  /** The same peer for calls passed through as bytes (`forwardPassthrough.ts`): one HTTP/2 connection of its own. */
  readonly upstream: (address: string) => GrpcPassthrough.Upstream
  /** The reset pacer of the gRPC channel to `address` (`ResetPacer`: its resets must not come in a burst). */
  readonly pacer: (address: string) => ResetPacer.ResetPacer
}

/** A pool whose channels close with the scope. */
export const make: Effect.Effect<PeerClients, never, Scope.Scope> = Effect.gen(function* () {
  const scope = yield* Effect.scope
  const clients = new Map<string, PeerClient>()
  const lock = yield* Effect.makeSemaphore(1)
  const open = (address: string) =>
    lock.withPermits(1)(
      Effect.suspend(() => {
        const known = clients.get(address)
        if (known !== undefined) return Effect.succeed(known)
        return GrpcClient.make(PeerService.definition, { address }).pipe(
          Scope.extend(scope),
          Effect.tap((client) => Effect.sync(() => clients.set(address, client)))
        )
      })
    )
  const upstreams = new Map<string, GrpcPassthrough.Upstream>()
  const pacers = new Map<string, ResetPacer.ResetPacer>()
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const upstream of upstreams.values()) upstream.close()
      upstreams.clear()
    })
  )
  return {
    pacer: (address) => {
      let known = pacers.get(address)
      if (known === undefined) pacers.set(address, (known = ResetPacer.make()))
      return known
    },
    upstream: (address) => {
      let known = upstreams.get(address)
      if (known === undefined) upstreams.set(address, (known = GrpcPassthrough.upstream(address)))
      return known
    },
    get: (address) => {
      const known = clients.get(address)
      return known !== undefined ? Effect.succeed(known) : open(address)
    }
  }
})
