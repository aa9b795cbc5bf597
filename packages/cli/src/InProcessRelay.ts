/**
 * A relay inside this process, for the CLI's memory world and for programs that embed the command tree: the
 * in-memory relay store, the share service and the relay core over it; a `RelayConnector` that gives each command
 * an in-process `RelayClient` (every call still authenticates its key); a `RelayHost` whose store is that same
 * one, so `cmdop relay workspace create` and friends act on it; and the `ProcessRunner` that agents attached to
 * this relay in-process run their exec sessions on — the in-memory twin by default. No sockets, no processes.
 */
import { ProcessRunner } from "@cmdop/agent/ProcessRunner"
import * as ProcessRunnerMemory from "@cmdop/agent/ProcessRunnerMemory"
import { ShareService } from "@cmdop/domain/ShareService"
import * as RelayAccounts from "@cmdop/relay/RelayAccounts"
import * as RelayClientInProcess from "@cmdop/relay/RelayClientInProcess"
import * as RelayCoreModule from "@cmdop/relay/RelayCore"
import { RelayCore } from "@cmdop/relay/RelayCore"
import * as RelayStoreModule from "@cmdop/relay/RelayStore"
import { RelayStore } from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RelayConnector } from "./RelayConnector.js"
import { RelayHost } from "./RelayHost.js"

export interface Options {
  /** The address the relay names in its messages. Default `in-process`. */
  readonly server?: string
  /** The base URL share links point at. Default `http://in-process`. */
  readonly publicUrl?: string
  /**
   * What the in-process agents' commands run on: the in-memory twin by default (`ProcessRunnerMemory`: echo,
   * printf, cat, sleep on the Effect clock, `sh -c`…); `ProcessRunner.layer` for real processes.
   */
  readonly runner?: Layer.Layer<ProcessRunner>
}

export type Services = RelayConnector | RelayHost | RelayCore | RelayStore | ShareService | ProcessRunner

/** The relay, its store, the connector and host that put them in the CLI's reach, and its agents' runner. */
export const layer = (options: Options = {}): Layer.Layer<Services> => {
  const store = Layer.provideMerge(ShareServiceLive.layer, RelayStoreModule.layerMemory)
  const core = Layer.provideMerge(
    RelayCoreModule.layer({
      server: options.server ?? "in-process",
      publicUrl: options.publicUrl ?? "http://in-process"
    }),
    store
  )
  const connector = Layer.effect(
    RelayConnector,
    Effect.map(RelayCore, (relay) =>
      RelayConnector.of({
        connect: (resolved) =>
          RelayClientInProcess.layer(resolved.apiKey).pipe(Layer.provide(Layer.succeed(RelayCore, relay)))
      })
    )
  )
  const host = Layer.scoped(
    RelayHost,
    Effect.gen(function* () {
      const context = yield* Effect.context<RelayStore | ShareService>()
      // The people of this in-memory relay: in memory too, never a file on disk.
      const accounts = yield* Layer.build(RelayAccounts.memoryStoreLayer)
      return RelayHost.of({
        store: () => Layer.succeedContext(Context.pick(RelayStore, ShareService)(context)),
        accounts: () => Layer.succeedContext(accounts),
        describe: () => "memory",
        inMemory: true
      })
    })
  )
  return Layer.mergeAll(
    Layer.provideMerge(Layer.merge(connector, host), core),
    options.runner ?? ProcessRunnerMemory.layer
  )
}
