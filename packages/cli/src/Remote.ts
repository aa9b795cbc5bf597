/**
 * Reaching the relay from a command: resolve the credential for this call, then run with the `RelayClient` the
 * composition root's `RelayConnector` makes for it (gRPC in the real CLI, an in-process relay in memory).
 */
import { CredentialResolver, type Resolved } from "@cmdop/domain/CredentialResolver"
import { RelayClient } from "@cmdop/domain/RelayClient"
import * as Effect from "effect/Effect"
import * as GlobalOptions from "./GlobalOptions.js"
import { RelayConnector } from "./RelayConnector.js"

/** Runs `f` with a client for the credential and relay this call resolves to; the client closes after `f`. */
export const withClient = <A, E, R>(
  g: GlobalOptions.Globals,
  f: (client: RelayClient["Type"], resolved: Resolved) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const resolved = yield* Effect.flatMap(CredentialResolver, (r) => r.resolve(GlobalOptions.overrides(g)))
    const connector = yield* RelayConnector
    return yield* Effect.flatMap(RelayClient, (client) => f(client, resolved)).pipe(
      Effect.provide(connector.connect(resolved))
    )
  })
