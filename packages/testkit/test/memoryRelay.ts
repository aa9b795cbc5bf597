/**
 * A relay core on the memory store (with share links), for the life of the scope: the context in-process agents
 * and clients are given, and the store and core in it.
 */
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export const memoryRelay = (options: Parameters<typeof RelayCore.layer>[0]) =>
  Effect.map(
    Layer.build(
      RelayCore.layer(options).pipe(
        Layer.provideMerge(ShareServiceLive.layer),
        Layer.provideMerge(RelayStore.layerMemory)
      )
    ),
    (context) => ({
      context,
      store: Context.get(context, RelayStore.RelayStore),
      core: Context.get(context, RelayCore.RelayCore)
    })
  )
