/**
 * How a command reaches a relay once its credential is resolved: a `RelayClient` layer for that key and server.
 * `layerGrpc` dials the relay over gRPC (loaded lazily, so local commands never load grpc-js); the in-process
 * variant lives in `InProcessRelay.ts`. `layerClient` is the `RelayClient` built from the `CredentialResolver`.
 */
import { CredentialResolver, type Overrides, type ResolveError, type Resolved } from "@cmdop/domain/CredentialResolver"
import type { RelayClient } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { CliError } from "./CliError.js"
import * as ServerList from "./ServerList.js"

export class RelayConnector extends Context.Tag("@cmdop/cli/RelayConnector")<
  RelayConnector,
  {
    /** The client for one resolved credential; its connection lives as long as the layer's scope. */
    readonly connect: (resolved: Resolved) => Layer.Layer<RelayClient, CliError | RelayError>
  }
>() {}

/** `layerGrpc` reports a client it cannot create as a defect; here it is the user's error it really is. */
const typedCreationFailure = <A>(layer: Layer.Layer<A>): Layer.Layer<A, RelayError> =>
  Layer.catchAllCause(layer, (cause) => {
    const defect = Cause.dieOption(cause)
    return Option.isSome(defect) && defect.value instanceof RelayError
      ? Layer.fail(defect.value)
      : Layer.failCause(cause as Cause.Cause<never>)
  })

/**
 * Over gRPC: `host:port` in plaintext, `https://host[:port]` with TLS (`CMDOP_TLS_CA` trusts a private CA); a list
 * of a cluster's nodes separated by commas goes to the first that accepts a connection.
 */
export const layerGrpc: Layer.Layer<RelayConnector> = Layer.succeed(
  RelayConnector,
  RelayConnector.of({
    connect: (resolved) =>
      Layer.unwrapEffect(
        Effect.gen(function* () {
          const RelayAddress = yield* Effect.promise(() => import("@cmdop/protocol/RelayAddress"))
          const RelayClientGrpc = yield* Effect.promise(() => import("@cmdop/protocol/RelayClientGrpc"))
          const ca = yield* Effect.try({
            try: RelayAddress.caFromEnv,
            catch: (e) => new CliError({ message: (e as Error).message })
          })
          // A list of cluster nodes: the first that accepts a connection.
          const entries = resolved.server
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "")
          const target =
            entries.length > 1
              ? yield* ServerList.firstReachable(entries.map((s) => RelayAddress.parse(s, ca)))
              : RelayAddress.parse(resolved.server, ca)
          return typedCreationFailure(
            RelayClientGrpc.layerGrpc({
              server: target.address,
              apiKey: resolved.apiKey,
              // A login acts in the stored workspace the call names (the relay checks the membership).
              ...(resolved.source === "oauth" && resolved.workspace !== undefined
                ? { workspace: resolved.workspace }
                : {}),
              ...(target.tls ? { tls: target.tls } : {})
            })
          )
        })
      )
  })
)

/** The `RelayClient` for the key and server `overrides` resolve to (flag → env → workspace → OAuth session). */
export const layerClient = (
  overrides: Overrides
): Layer.Layer<RelayClient, ResolveError | CliError | RelayError, CredentialResolver | RelayConnector> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const resolved = yield* Effect.flatMap(CredentialResolver, (resolver) => resolver.resolve(overrides))
      return (yield* RelayConnector).connect(resolved)
    })
  )
