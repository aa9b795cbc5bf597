/**
 * Reaching the relay from a command: resolve the credential for this call, then open a gRPC `RelayClient` for it.
 * Loaded lazily by the commands that talk to a relay, so local commands never load grpc-js.
 */
import { CredentialResolver, type Resolved } from "@cmdop/domain/CredentialResolver"
import type { RelayClient } from "@cmdop/domain/RelayClient"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as Effect from "effect/Effect"
import * as GlobalOptions from "./GlobalOptions.js"

/** Runs `f` with a client for the credential and relay this call resolves to. */
export const withClient = <A, E, R>(
  g: GlobalOptions.Globals,
  f: (client: RelayClient["Type"], resolved: Resolved) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const resolver = yield* CredentialResolver
    const resolved = yield* resolver.resolve(GlobalOptions.overrides(g))
    return yield* Effect.scoped(
      Effect.flatMap(RelayClientGrpc.make({ server: resolved.server, apiKey: resolved.apiKey }), (client) =>
        f(client, resolved)
      )
    )
  })
