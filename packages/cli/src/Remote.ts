/**
 * Reaching the relay from a command: resolve the credential for this call, then run with the `RelayClient` the
 * composition root's `RelayConnector` makes for it (gRPC in the real CLI, an in-process relay in memory).
 */
import { CredentialResolver, type Resolved } from "@cmdop/domain/CredentialResolver"
import { AccessError } from "@cmdop/domain/AccessError"
import { OAuthSession } from "@cmdop/domain/OAuthSession"
import { RelayClient } from "@cmdop/domain/RelayClient"
import * as Option from "effect/Option"
import * as Effect from "effect/Effect"
import * as GlobalOptions from "./GlobalOptions.js"
import { RelayConnector } from "./RelayConnector.js"

/**
 * The credential this call resolves to. With both `--api-key` and `--server` given the call needs no saved state,
 * so a store file that cannot be read does not stand in its way.
 */
export const resolve = (g: GlobalOptions.Globals) =>
  Effect.flatMap(CredentialResolver, (r) => r.resolve(GlobalOptions.overrides(g))).pipe(
    Effect.catchIf(
      (e) =>
        e._tag === "WorkspaceStoreError" &&
        g.apiKey !== undefined &&
        g.server !== undefined &&
        g.workspace === undefined,
      () =>
        Effect.succeed<Resolved>({
          apiKey: g.apiKey!,
          source: "flag",
          workspace: undefined,
          server: g.server!,
          serverSource: "flag"
        })
    )
  )

/**
 * Runs `f` with a client for the credential and relay this call resolves to; the client closes after `f`. When
 * the credential is the OAuth login and the relay answers UNAUTHENTICATED, the login is refreshed once and `f`
 * runs again with the new token.
 */
export const withClient = <A, E, R>(
  g: GlobalOptions.Globals,
  f: (client: RelayClient["Type"], resolved: Resolved) => Effect.Effect<A, E, R>
) => {
  const once = Effect.gen(function* () {
    const resolved = yield* resolve(g)
    const connector = yield* RelayConnector
    return yield* Effect.flatMap(RelayClient, (client) => f(client, resolved)).pipe(
      Effect.provide(connector.connect(resolved))
    )
  })
  return Effect.gen(function* () {
    const resolved = yield* resolve(g)
    if (resolved.source !== "oauth") return yield* once
    const session = yield* OAuthSession
    return yield* once.pipe(
      Effect.catchIf(
        (e): e is E & AccessError =>
          e instanceof AccessError && e.reason === "Unauthenticated" && session.refresh !== undefined,
        (e) => Effect.flatMap(session.refresh!, (fresh) => (Option.isSome(fresh) ? once : Effect.fail(e)))
      )
    )
  })
}
