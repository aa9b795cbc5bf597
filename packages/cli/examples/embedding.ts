import { main } from "@cmdop/cli/Cli"
import * as Layers from "@cmdop/cli/Layers"
import * as RelayConnector from "@cmdop/cli/RelayConnector"
import { RelayClient } from "@cmdop/domain/RelayClient"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import { RelayStore } from "@cmdop/relay/RelayStore"
import { Effect, Redacted } from "effect"

const program = Effect.gen(function* () {
  // A workspace on the in-process relay, and its first API key.
  const store = yield* RelayStore
  const { apiKey } = yield* store.createWorkspace(WorkspaceName.make("acme"))

  // A RelayClient program: the client is built from the CredentialResolver (here: the --api-key override).
  const relay = Effect.flatMap(RelayClient, (client) => Effect.zip(client.whoami, client.listMachines()))
  const [me, { machines }] = yield* relay.pipe(Effect.provide(RelayConnector.layerClient({ apiKey })))

  // The whole command tree, in-process: `cmdop connect whoami --json` prints one JSON document.
  const code = yield* main(["node", "cmdop", "connect", "--api-key", Redacted.value(apiKey), "whoami", "--json"])
  return { workspace: me.workspaceName, machines: machines.length, exitCode: code }
})

// Layers.memory(): in-memory stores, an in-process relay, no sockets. Layers.live is the real CLI's.
Effect.runPromise(program.pipe(Effect.provide(Layers.memory()))).then((result) => console.log(result))
