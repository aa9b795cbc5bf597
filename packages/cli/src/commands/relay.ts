/**
 * `cmdop relay …`: run a relay (`serve`) and administer its store on the relay host (`workspace create`,
 * `key rotate`). Admin commands open the store directly: the data dir's SQLite file, or `--db` PostgreSQL.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Workspace from "@cmdop/domain/Workspace"
import * as HeapTrim from "@cmdop/node/HeapTrim"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { CliError, ExitCode } from "../CliError.js"
import * as Output from "../Output.js"
import { RelayHost } from "../RelayHost.js"
import { auditKeyChange, relayKeyCommands } from "./relayKey.js"
import { signingKeyList } from "./relaySigningKey.js"
import { relayUserCommand, ssoConfig, ssoOptions } from "./relayUser.js"
import { storeConfig, storeOptions, withShares, withStore } from "./relayStore.js"
import { clusterFlags, clusterOptions } from "./relayCluster.js"
import { connectionOptions, maxConnectionsPerSource } from "./relayConnections.js"
import { lockDataDir } from "./relayDataLock.js"
import * as RelayTls from "./relayTls.js"
import { workspaceList } from "./relayWorkspace.js"

const nameArg = Args.text({ name: "workspace" }).pipe(Args.withDescription("workspace name on the relay"))

const workspaceCreate = Command.make("create", { ...storeOptions, name: nameArg }, (args) =>
  Effect.gen(function* () {
    const name = yield* Schema.decodeUnknown(Workspace.WorkspaceName)(args.name).pipe(
      Effect.mapError(
        () =>
          new CliError({
            message: `invalid workspace name "${args.name}": use letters, digits, '.', '_' or '-'`,
            exitCode: ExitCode.usage
          })
      )
    )
    const created = yield* withStore(args, (store) => store.createWorkspace(name))
    const key = Redacted.value(created.apiKey)
    if (args.json) return yield* Output.json({ workspace: name, id: created.workspace.id, api_key: key })
    yield* Output.line(`created workspace ${name} (${created.workspace.id})`)
    yield* Output.line(`api key: ${key}`)
    yield* Output.notice("this key is shown once; store it now, e.g. cmdop connect key set <key> --workspace " + name)
  })
).pipe(Command.withDescription("create a workspace on this relay and print its first API key (once)"))

const keyRotate = Command.make("rotate", { ...storeOptions, name: nameArg }, (args) =>
  Effect.gen(function* () {
    const { key, workspaceId } = yield* withStore(args, (store) =>
      Effect.zipWith(store.rotateKey(args.name), store.getWorkspace(args.name), (key, workspace) => ({
        key,
        workspaceId: workspace.id
      }))
    )
    // Who and when, like `key create` / `key revoke`: the relay's audit trail (never the key itself). The old
    // keys are gone already, so a failure to record still shows the new key (it is the only one), then says so.
    const audited = yield* Effect.either(
      auditKeyChange(args, {
        action: "key.rotated",
        workspaceId,
        detail: `every API key and share link of ${args.name} retired and one new key issued on the relay host`
      })
    )
    if (args.json) yield* Output.json({ workspace: args.name, api_key: Redacted.value(key) })
    else {
      yield* Output.line(`new api key for ${args.name}: ${Redacted.value(key)}`)
      yield* Output.notice("the old key no longer works; agents and clients using it must get the new one")
    }
    if (audited._tag === "Left")
      return yield* new CliError({
        message: `the key was rotated (the new key is above) but not recorded in the audit trail: ${audited.left.message}`
      })
  })
).pipe(Command.withDescription("issue a new API key for a workspace and retire the old one (and its share links)"))

const signingKeyRotate = Command.make("rotate", storeOptions, (args) =>
  Effect.gen(function* () {
    const rotation = yield* withShares(args, (shares) => shares.rotateSigningKey)
    if (args.json) return yield* Output.json({ current: rotation.current, previous: rotation.previous ?? null })
    yield* Output.line(`share links are now signed with key ${rotation.current}`)
    yield* Output.notice(
      rotation.previous === undefined
        ? "there was no previous key"
        : `links signed with ${rotation.previous} keep working until it is retired: cmdop relay signing-key retire ${rotation.previous}`
    )
  })
).pipe(Command.withDescription("sign new share links with a fresh key (old links keep working until retired)"))

const signingKeyRetire = Command.make(
  "retire",
  { ...storeOptions, kid: Args.text({ name: "kid" }).pipe(Args.withDescription("the key id to retire")) },
  (args) =>
    Effect.gen(function* () {
      yield* withShares(args, (shares) => shares.retireSigningKey(args.kid))
      if (args.json) return yield* Output.json({ retired: args.kid })
      yield* Output.line(`retired signing key ${args.kid}: every share link it signed stops working now`)
    })
).pipe(Command.withDescription("retire a share-link signing key: the links it signed stop working at once"))

const serve = Command.make(
  "serve",
  {
    ...storeOptions,
    host: Options.text("host").pipe(
      Options.withDescription("interface to listen on (0.0.0.0 to serve other machines)"),
      Options.withDefault("127.0.0.1")
    ),
    grpcPort: Options.integer("grpc-port").pipe(
      Options.withDescription("gRPC port for agents and clients"),
      Options.withDefault(50051)
    ),
    httpPort: Options.integer("http-port").pipe(
      Options.withDescription("HTTP port (share pages, health, metrics)"),
      Options.withDefault(8080)
    ),
    publicUrl: Options.text("public-url").pipe(
      Options.withDescription("base URL that share links point at (default: the HTTP address)"),
      Options.optional
    ),
    // Text, not Options.file: a directory, a missing or an unreadable file is refused by RelayTls.load, naming the
    // flag and the fix (@effect/cli's "Expected path 'x' to be a regular file" named neither).
    tlsCert: Options.text("tls-cert").pipe(
      Options.withDescription("PEM certificate chain; serve TLS"),
      Options.optional
    ),
    tlsKey: Options.text("tls-key").pipe(Options.withDescription("PEM private key for --tls-cert"), Options.optional),
    ...ssoOptions,
    ...clusterOptions,
    ...connectionOptions
  },
  (args) =>
    Effect.gen(function* () {
      const perSource = yield* maxConnectionsPerSource(args)
      if (args.grpcPort !== 0 && args.grpcPort === args.httpPort)
        return yield* new CliError({
          message: `--grpc-port and --http-port are both ${args.grpcPort}: give each its own port`,
          exitCode: 2
        })
      // Share links, sign-in links and the OAuth issuer are built on it: a bare host name made all of them broken.
      if (Option.isSome(args.publicUrl) && !/^https?:\/\/[^/]/i.test(args.publicUrl.value))
        return yield* new CliError({
          message: `--public-url "${args.publicUrl.value}" is not an http:// or https:// URL: give the address browsers reach this relay's HTTP port at, e.g. https://relay.example or http://10.0.0.5:8080`,
          exitCode: 2
        })
      const config = yield* storeConfig(args)
      if (Option.isSome(args.tlsCert) !== Option.isSome(args.tlsKey))
        return yield* new CliError({ message: "--tls-cert and --tls-key go together", exitCode: 2 })
      const tls =
        Option.isSome(args.tlsCert) && Option.isSome(args.tlsKey)
          ? yield* RelayTls.load(args.tlsCert.value, args.tlsKey.value)
          : undefined
      const cluster = yield* clusterFlags(args, {
        db: config.db !== undefined,
        host: args.host,
        grpcPort: args.grpcPort
      })
      const RelayServer = yield* Effect.promise(() => import("@cmdop/relay/RelayServer"))
      const relayHost = yield* RelayHost
      yield* Effect.scoped(
        Effect.gen(function* () {
          // The certificate's dates: what is due soon now, and again once a day while the relay runs.
          if (tls !== undefined && Option.isSome(args.tlsCert)) yield* RelayTls.watch(args.tlsCert.value, tls.certChain)
          // One relay per embedded store: a second one on the same data dir is refused (cluster: use --db).
          // (The in-memory world's relay has no data dir: it writes nothing to disk.)
          if (config.db === undefined && relayHost.inMemory !== true) yield* lockDataDir(config.dataDir)
          // What a relay moves passes through malloc'd buffers; the heap is given back after each burst.
          yield* Layer.build(HeapTrim.layer)
          // Cluster nodes migrate the shared database one at a time, until each serves.
          const startup = yield* Scope.make()
          // What a starting node waits for (another node starting, its own earlier run's lease), said at once.
          const progress = (line: string) => Output.notice(`cmdop: ${line}`)
          yield* Effect.addFinalizer(() => Scope.close(startup, Exit.void))
          if (config.db !== undefined) {
            const ClusterStartup = yield* Effect.promise(() => import("@cmdop/relay/cluster/ClusterStartup"))
            // A single relay is refused on a live cluster's database (it would show the nodes' machines offline).
            // A cluster node is refused next to a single relay, and a second single relay next to the first.
            yield* (
              Option.isSome(cluster)
                ? Effect.zipRight(
                    ClusterStartup.lock(config.db, { progress }).pipe(Scope.extend(startup)),
                    ClusterStartup.refuseSingle(config.db)
                  )
                : Effect.zipRight(ClusterStartup.refuseLiveNodes(config.db), ClusterStartup.holdSingle(config.db))
            ).pipe(Effect.mapError((e) => new CliError({ message: e.message })))
          }
          const store = yield* Layer.build(relayHost.store(config))
          const running = yield* RelayServer.serveWith(
            {
              host: args.host,
              grpcPort: args.grpcPort,
              httpPort: args.httpPort,
              // People next to the store: the same file or database, or in memory in the in-memory world.
              accounts: relayHost.accounts(config),
              // The embedded store: key verdicts reused until its next commit (any process's).
              ...(config.db === undefined && relayHost.inMemory !== true
                ? { storeVersion: RelayServer.embeddedStoreVersion(config.dataDir) }
                : {}),
              ...(yield* ssoConfig(args)),
              ...(Option.isSome(args.publicUrl) ? { publicUrl: args.publicUrl.value } : {}),
              ...(perSource === undefined ? {} : { maxConnectionsPerSource: perSource }),
              ...(tls ? { tls } : {}),
              ...(Option.isSome(cluster) && config.db !== undefined
                ? { cluster: { ...cluster.value, db: config.db, progress } }
                : {})
            },
            relayHost.describe(config)
          ).pipe(
            Effect.provide(store),
            Effect.mapError((e) => new CliError({ message: e.message }))
          )
          yield* Scope.close(startup, Exit.void)
          const node = Option.getOrUndefined(cluster)
          if (args.json)
            yield* Output.json({
              grpc: running.grpcAddress,
              http: running.httpAddress,
              store: running.store,
              ...(node === undefined
                ? {}
                : {
                    node: node.nodeId,
                    peer_address: node.peerAddress,
                    ...(node.clientAddress === undefined ? {} : { advertise_address: node.clientAddress })
                  })
            })
          else
            yield* Output.line(
              `relay serving: grpc ${running.grpcAddress}${tls ? " (TLS)" : ""}, http ${running.httpAddress}, store ${running.store}` +
                (node === undefined
                  ? ""
                  : `, cluster node ${node.nodeId} (peers reach it at ${node.peerAddress}` +
                    (node.clientAddress === undefined ? ")" : `, agents at ${node.clientAddress})`))
            )
          return yield* Effect.never
        })
      )
    })
).pipe(Command.withDescription("run a relay: gRPC for agents and clients, HTTP for share pages; Ctrl-C stops it"))

export const relayCommand = Command.make("relay").pipe(
  Command.withDescription("run and administer a relay (run these on the relay host)"),
  Command.withSubcommands([
    serve,
    Command.make("workspace").pipe(
      Command.withDescription("workspaces on this relay"),
      Command.withSubcommands([workspaceCreate, workspaceList])
    ),
    Command.make("key").pipe(
      Command.withDescription("workspace API keys on this relay"),
      Command.withSubcommands([keyRotate, ...relayKeyCommands])
    ),
    relayUserCommand,
    Command.make("signing-key").pipe(
      Command.withDescription("the keys that sign share links"),
      Command.withSubcommands([signingKeyRotate, signingKeyRetire, signingKeyList])
    )
  ])
)
