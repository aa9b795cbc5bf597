/**
 * A real relay on 127.0.0.1 (ephemeral ports, SQLite in a temp dir) with real agent daemons dialing it over gRPC,
 * each in its own temp HOME: the live twin of the in-process world, for contract and end-to-end tests.
 */
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as AgentDaemon from "@cmdop/agent/AgentDaemon"
import * as AgentIdentity from "@cmdop/agent/AgentIdentity"
import * as DaemonCredential from "@cmdop/agent/DaemonCredential"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import type { RelayClient } from "@cmdop/domain/RelayClient"
import * as OAuthSession from "@cmdop/domain/OAuthSession"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import { Scope } from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"

export interface Relay {
  readonly address: string
  readonly httpAddress: string
  readonly store: RelayStore.RelayStore["Type"]
  /** Creates a workspace and returns its first key. */
  readonly createWorkspace: (name: string) => Effect.Effect<string, unknown>
  /**
   * Starts a real agent daemon for `hostname` with `key`; interrupt the fiber to stop it. `permissions`: the text of
   * its `~/.cmdop/permissions.yaml` (the machine's gate; none by default).
   */
  readonly startAgent: (
    key: string,
    hostname: string,
    options?: { readonly permissions?: string }
  ) => Effect.Effect<{ readonly home: string; readonly fiber: Fiber.RuntimeFiber<never, unknown> }, unknown>
  /** A gRPC client with `key`. */
  readonly client: (key: string) => Effect.Effect<RelayClient["Type"], unknown>
  /** Waits until `hostnames` are all online as `key` sees them. */
  readonly waitOnline: (key: string, hostnames: ReadonlyArray<string>) => Effect.Effect<void, unknown>
  /** Waits until `hostnames` are all listed offline as `key` sees them (the relay has seen their streams close). */
  readonly waitOffline: (key: string, hostnames: ReadonlyArray<string>) => Effect.Effect<void, unknown>
}

export const make = (options: { readonly heartbeatSeconds?: number } = {}) =>
  Effect.gen(function* () {
    const dir = yield* TempHome.make("cmdop-relay-")
    const storeContext = yield* Layer.build(RelayStore.layerSqlite({ path: path.join(dir, "relay.db") }))
    const store = Context.get(storeContext, RelayStore.RelayStore)
    const running = yield* RelayServer.serveWith(
      {
        grpcPort: 0,
        httpPort: 0,
        host: "127.0.0.1",
        ...(options.heartbeatSeconds === undefined ? {} : { heartbeatSeconds: options.heartbeatSeconds })
      },
      "sqlite"
    ).pipe(Effect.provide(storeContext))
    const scope = yield* Effect.scope
    const waitListed = (key: string, hostnames: ReadonlyArray<string>, online: boolean) =>
      Effect.gen(function* () {
        const client = yield* relay.client(key)
        yield* eventually(
          `agents ${online ? "online" : "offline"}: ${hostnames.join(", ")}`,
          Effect.map(client.listMachines(), ({ machines }) =>
            hostnames.every((h) => machines.some((m) => m.hostname === h && m.online === online)) ? true : undefined
          ),
          { timeout: "15 seconds", interval: "50 millis" }
        ).pipe(Effect.catchTag("EventuallyTimeout", (e) => Effect.dieMessage(e.message)))
      })

    const relay: Relay = {
      address: running.grpcAddress,
      httpAddress: running.httpAddress,
      store,
      createWorkspace: (name) =>
        Effect.map(store.createWorkspace(WorkspaceName.make(name)), (c) => Redacted.value(c.apiKey)),
      startAgent: (key, hostname, options = {}) =>
        Effect.gen(function* () {
          const home = yield* TempHome.make("cmdop-agent-")
          if (options.permissions !== undefined) {
            fs.mkdirSync(path.join(home, ".cmdop"), { recursive: true, mode: 0o700 })
            fs.writeFileSync(path.join(home, ".cmdop", "permissions.yaml"), options.permissions)
          }
          const env = Layer.mergeAll(NodeFileSystem.layer, CmdopPaths.layerHome(home), ProcessRunner.layer)
          const credential = DaemonCredential.layer.pipe(Layer.provide(OAuthSession.layerEmpty), Layer.provide(env))
          yield* AgentIdentity.loadOrCreate({ hostname }).pipe(Effect.provide(env))
          const fiber = yield* AgentDaemon.run({
            overrides: { apiKey: Redacted.make(key), server: running.grpcAddress },
            backoff: { base: "50 millis", cap: "500 millis" }
          }).pipe(
            Effect.provide(Layer.merge(env, credential)),
            Logger.withMinimumLogLevel(LogLevel.Warning),
            Effect.forkIn(scope)
          )
          return { home, fiber }
        }).pipe(Effect.provideService(Scope, scope)),
      client: (key) =>
        RelayClientGrpc.make({ server: running.grpcAddress, apiKey: Redacted.make(key) }).pipe(
          Effect.provideService(Scope, scope)
        ),
      waitOnline: (key, hostnames) => waitListed(key, hostnames, true),
      waitOffline: (key, hostnames) => waitListed(key, hostnames, false)
    }
    return relay
  })
