/**
 * Reaching the relay from a command: resolve the credential for this call, then open a gRPC `RelayClient` for it.
 * Loaded lazily by the commands that talk to a relay, so local commands never load grpc-js.
 */
import { CredentialResolver, type Resolved } from "@cmdop/domain/CredentialResolver"
import type { RelayClient } from "@cmdop/domain/RelayClient"
import * as RelayAddress from "@cmdop/protocol/RelayAddress"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as Effect from "effect/Effect"
import { CliError } from "./CliError.js"
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
      Effect.gen(function* () {
        const ca = yield* Effect.try({
          try: RelayAddress.caFromEnv,
          catch: (e) => new CliError({ message: (e as Error).message })
        })
        const target = RelayAddress.parse(resolved.server, ca)
        const client = yield* RelayClientGrpc.make({
          server: target.address,
          apiKey: resolved.apiKey,
          ...(target.tls ? { tls: target.tls } : {})
        })
        return yield* f(client, resolved)
      })
    )
  })
