/**
 * `cmdop relay serve`: the store (embedded SQLite in the data dir, or PostgreSQL), the relay core, its gRPC
 * endpoint for agents and clients, and its HTTP endpoint (`/healthz`, `/metrics`), all for the life of a scope.
 * With accounts (`RelayAccounts.ts`, on the same database), the HTTP port also serves `cmdop login` (the OAuth
 * endpoints and `/device`), sign-in pages, the web cabinet and `/apix/machines/workspaces/`, and gRPC calls accept
 * OAuth access tokens.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as AccountStore from "@cmdop/accounts/AccountStore"
import { AccountStore as AccountStoreTag } from "@cmdop/accounts/AccountStore"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as HeapTrim from "@cmdop/node/HeapTrim"
import { ShareService } from "@cmdop/domain/ShareService"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as http from "node:http"
import * as path from "node:path"
import { RelayCore } from "./RelayCore.js"
import * as RelayAccounts from "./RelayAccounts.js"
import * as RelayCoreModule from "./RelayCore.js"
import * as Admission from "./internal/admission.js"
import * as ConnectionGuard from "./internal/connectionGuard.js"
import * as Limits from "./internal/limits.js"
import * as RelayGrpc from "./RelayGrpc.js"
import * as RelayStoreModule from "./RelayStore.js"
import * as MachineOwnership from "./internal/machineOwnership.js"
import * as OAuthCaller from "./internal/oauthCaller.js"
import * as SharePageRoute from "./share/SharePageRoute.js"
import * as ShareServiceLive from "./share/ShareServiceLive.js"
import type { RelayStore } from "./store/service.js"
import * as KeyVerdicts from "./internal/keyVerdicts.js"
import * as AccountRoutes from "./web/AccountRoutes.js"
import * as HomePage from "./web/HomePage.js"
import * as TerminalPage from "./web/TerminalPage.js"
import * as TerminalSocket from "./web/TerminalSocket.js"
import * as TerminalUpgrade from "./web/TerminalUpgrade.js"
import * as ClusterHealth from "./cluster/ClusterHealth.js"
import * as ClusterStartup from "./cluster/ClusterStartup.js"
import * as ClusterMode from "./cluster/ClusterMode.js"
import { ClusterNode } from "./cluster/ClusterNode.js"
import * as ClusterStore from "./cluster/ClusterStore.js"
import * as PeerNode from "./cluster/PeerNode.js"
import * as StoreLock from "./cluster/StoreLock.js"
import { MachineRoutes } from "./cluster/MachineRoutes.js"

export interface Options {
  /** Where the embedded store lives (`relay.db`). */
  readonly dataDir: string
  /** How the core tells that the store changed, to cache key verdicts meanwhile (`serve` sets it for SQLite). */
  readonly storeVersion?: RelayCoreModule.Options["storeVersion"]
  /** A PostgreSQL URL; when set, the store is there instead of the data dir. */
  readonly db?: Redacted.Redacted<string>
  /** Interface to listen on. Default 127.0.0.1 (use 0.0.0.0 to serve other hosts). */
  readonly host?: string
  readonly grpcPort: number
  readonly httpPort: number
  readonly tls?: {
    readonly certChain: string
    readonly privateKey: string
    /** When the chain's first certificate expires, if known: `/healthz` and `/metrics` report it, for monitoring. */
    readonly notAfter?: Date
  }
  /** The base URL share links point at; default the HTTP listen address. */
  readonly publicUrl?: string
  readonly heartbeatSeconds?: number
  readonly staleAfter?: Duration.DurationInput
  /**
   * Open gRPC connections one source address may hold (default 1,024): raise it behind a TCP load balancer or NAT,
   * where every agent arrives from the same address. The gRPC total (from the descriptor limit) still bounds it.
   */
  readonly maxConnectionsPerSource?: number
  /** The account store (people, `cmdop login`); without it the relay knows workspaces and keys only. */
  readonly accounts?: Layer.Layer<AccountStore.AccountStore, AccountStore.AccountStoreError>
  /** Single sign-on with an OpenID Connect provider (needs `accounts`); the callback is `<publicUrl>/sso/callback`. */
  readonly sso?: {
    readonly issuer: string
    readonly clientId: string
    readonly clientSecret: Redacted.Redacted<string>
    /** Allows an `http:` provider (loopback tests and development only). */
    readonly allowInsecureRequests?: boolean
  }
  /**
   * Cluster mode: this relay is one node of several on one PostgreSQL (`cluster/ClusterMode.ts`). Machine
   * liveness then comes from the shared routing table, and revocations anywhere reach this node's sessions.
   */
  readonly cluster?: ClusterMode.ClusterOptions
}

export class RelayServeError extends Data.TaggedError("RelayServeError")<{ readonly message: string }> {}

export interface Running {
  readonly grpcAddress: string
  readonly httpAddress: string
  readonly publicUrl: string
  readonly store: string
  /** In cluster mode: this node, and everything the peer service needs (routes, lease, events). */
  readonly cluster?: ClusterMode.ClusterContext
}

/** The store layer the options ask for. */
export const storeLayer = (options: Pick<Options, "dataDir" | "db">) =>
  options.db !== undefined
    ? RelayStoreModule.layerPostgres({ url: options.db })
    : RelayStoreModule.layerSqlite({ path: path.join(options.dataDir, "relay.db") })

/**
 * `grpcAddress`: the relay's bound gRPC address, which share pages tell guests to pass as `--server`; `tlsNotAfter`:
 * when the certificate chain it serves expires, if it serves TLS.
 */
const httpRoutes = (
  grpcAddress: string,
  cluster: ClusterMode.ClusterContext | undefined,
  accounts: boolean,
  admission: Admission.Admission,
  tlsNotAfter: Date | undefined
) =>
  Effect.gen(function* () {
    const clusterView = cluster === undefined ? undefined : Context.get(cluster, ClusterNode).view
    const tls = tlsNotAfter === undefined ? {} : { tls: { notAfter: tlsNotAfter.toISOString() } }
    const core = yield* RelayCore
    const shares = yield* ShareService
    return HttpRouter.empty.pipe(
      HttpRouter.get("/s/:token", SharePageRoute.handler(shares, admission, core.server, grpcAddress)),
      HttpRouter.get(
        "/",
        Effect.sync(() => HomePage.response({ grpcAddress, accounts }))
      ),
      // A single relay says `ok`, as JSON with the certificate's notAfter when it serves TLS.
      HttpRouter.get(
        "/healthz",
        clusterView === undefined
          ? tlsNotAfter === undefined
            ? HttpServerResponse.text("ok\n")
            : HttpServerResponse.json({ status: "ok", ...tls })
          : Effect.flatMap(clusterView, (view) => {
              const { status, body } = ClusterHealth.health(view)
              return HttpServerResponse.json({ ...body, ...tls }, { status })
            })
      ),
      // Browsers ask for it on every page; answering "no content" keeps their consoles (and our tests) clean.
      HttpRouter.get("/favicon.ico", HttpServerResponse.empty({ status: 204 })),
      HttpRouter.get("/s/:token/ws", TerminalSocket.handler),
      HttpRouter.get("/assets/terminal.js", TerminalPage.script),
      HttpRouter.get("/assets/terminal.css", TerminalPage.stylesheet),
      HttpRouter.get(
        "/metrics",
        Effect.map(clusterView ?? Effect.succeed(undefined), (view) =>
          HttpServerResponse.text(
            [
              "# HELP cmdop_agents_connected Agent streams connected to this relay node.",
              "# TYPE cmdop_agents_connected gauge",
              `cmdop_agents_connected ${core.stats().agents}`,
              "# HELP cmdop_sessions_active Exec sessions in progress on this relay node.",
              "# TYPE cmdop_sessions_active gauge",
              `cmdop_sessions_active ${core.stats().sessions}`,
              "# HELP cmdop_agent_handshakes Agent handshakes this relay node is working on or has waiting for a turn.",
              "# TYPE cmdop_agent_handshakes gauge",
              `cmdop_agent_handshakes ${core.stats().handshakes}`,
              ...processMetricLines(),
              ...(tlsNotAfter === undefined
                ? []
                : [
                    "# HELP cmdop_tls_certificate_not_after_seconds When the certificate chain the gRPC port serves expires (its first notAfter), in Unix seconds.",
                    "# TYPE cmdop_tls_certificate_not_after_seconds gauge",
                    `cmdop_tls_certificate_not_after_seconds ${Math.floor(tlsNotAfter.getTime() / 1000)}`
                  ]),
              ...(view === undefined ? [] : ClusterHealth.metricLines(view)),
              ""
            ].join("\n"),
            { contentType: "text/plain; version=0.0.4" }
          )
        )
      )
    )
  })

/** The process's memory, and what `HeapTrim` gave back of it (zero where nothing runs it). */
const processMetricLines = (): ReadonlyArray<string> => {
  const trims = HeapTrim.stats()
  return [
    "# HELP process_resident_memory_bytes Resident memory size in bytes.",
    "# TYPE process_resident_memory_bytes gauge",
    `process_resident_memory_bytes ${process.memoryUsage.rss()}`,
    "# HELP cmdop_heap_trims_total Times this process gave its C heap's free memory back after a burst of data.",
    "# TYPE cmdop_heap_trims_total counter",
    `cmdop_heap_trims_total ${trims.trims}`,
    "# HELP cmdop_heap_trim_released_bytes_total Resident memory those trims gave back, in bytes.",
    "# TYPE cmdop_heap_trim_released_bytes_total counter",
    `cmdop_heap_trim_released_bytes_total ${trims.releasedBytes}`
  ]
}

/** Seconds a client has to send a request's headers, and its whole request (the relay's bodies are tiny). */
const HEADERS_TIMEOUT_MS = 10_000
const REQUEST_TIMEOUT_MS = 30_000

/** The HTTP server with the relay's connection caps and short header and request timeouts. */
const makeHttpServer = (caps: ConnectionGuard.Caps) => {
  const server = http.createServer({
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: 1_000,
    maxHeaderSize: 16 * 1024
  })
  ConnectionGuard.guard(server, caps)
  return server
}

/** The account store next to the relay store the options name (same SQLite file, or same PostgreSQL). */
/**
 * The embedded store's version probe (its WAL index, which every commit by any connection rewrites): with it, the
 * relay reuses an API key's verdict until the store changes (`storeVersion`), so `cmdop relay key revoke` from
 * another process is still refused on the very next call.
 */
export const embeddedStoreVersion = (dataDir: string) => KeyVerdicts.walIndexProbe(path.join(dataDir, "relay.db"))

export const accountsStore = (options: Pick<Options, "dataDir" | "db">) => RelayAccounts.storeLayer(options)

/**
 * Runs a relay on an already-provided store until the scope closes. In cluster mode the node takes its lease
 * first, and the relay runs on the store as the cluster sees it.
 */
export const serveWith = (
  options: Omit<Options, "dataDir" | "db">,
  storeName: string
): Effect.Effect<Running, RelayServeError, Scope.Scope | RelayStore> =>
  Effect.gen(function* () {
    if (options.cluster === undefined) return yield* serveOn(options, storeName, undefined)
    // The account tables must exist before the cluster installs its triggers on them: migrate them first (a
    // store built and closed again; the relay builds its own below).
    if (options.accounts !== undefined)
      yield* Effect.scoped(Layer.build(options.accounts)).pipe(
        Effect.mapError((e) => new RelayServeError({ message: e.message }))
      )
    const cluster = yield* ClusterMode.start(options.cluster).pipe(
      Effect.mapError((e) => new RelayServeError({ message: e.message }))
    )
    const store = ClusterStore.make(
      yield* RelayStoreModule.RelayStore,
      Context.get(cluster, MachineRoutes),
      options.cluster.nodeId
    )
    const running = yield* serveOn(options, storeName, cluster).pipe(
      Effect.provideService(RelayStoreModule.RelayStore, store)
    )
    return { ...running, cluster }
  })

const serveOn = (
  options: Omit<Options, "dataDir" | "db">,
  storeName: string,
  cluster: ClusterMode.ClusterContext | undefined
): Effect.Effect<Running, RelayServeError, Scope.Scope | RelayStore> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const display = (port: number) => `${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`
    // The core needs the address clients use in its messages; with port 0 it is known only after binding, so
    // the core is built with the requested one and corrected below for messages only.
    // Share links point at the public URL, by default the HTTP address, known once it is bound (port 0).
    let boundHttp = `http://${display(options.httpPort)}`
    const publicUrl = () => options.publicUrl ?? boundHttp
    const accounts =
      options.accounts === undefined
        ? undefined
        : yield* Layer.build(
            options.sso === undefined
              ? RelayAccounts.servicesLayer(publicUrl, options.accounts)
              : RelayAccounts.ssoLayer(publicUrl, options.sso).pipe(
                  Layer.provideMerge(RelayAccounts.servicesLayer(publicUrl, options.accounts))
                )
          ).pipe(Effect.mapError((e) => new RelayServeError({ message: e.message })))
    const store = yield* RelayStoreModule.RelayStore
    // Expired web sessions, links, device codes and tokens go hourly (grants stay, for the audit).
    if (accounts !== undefined)
      yield* Effect.forkScoped(
        Effect.sleep("1 hour").pipe(
          Effect.zipRight(Clock.currentTimeMillis),
          Effect.flatMap((now) => Context.get(accounts, AccountStoreTag).purgeExpired(now)),
          Effect.catchAll((e) => Effect.logWarning(`purging expired logins failed: ${e.message}`)),
          Effect.forever
        )
      )
    const oauthCaller =
      accounts === undefined
        ? undefined
        : OAuthCaller.make({ oauth: Context.get(accounts, OAuthServer), store, server: display(options.grpcPort) })
    // Cluster mode: agents' heartbeats reuse their key's verdict until the cluster announces a change.
    const recheckVersion = cluster === undefined ? undefined : yield* ClusterMode.eventCount(cluster)
    const coreLayer = RelayCoreModule.layer({
      ...(accounts === undefined || oauthCaller === undefined
        ? {}
        : {
            oauth: oauthCaller.authenticate,
            ownership: MachineOwnership.make(Context.get(accounts, AccountStoreTag), display(options.grpcPort))
          }),
      server: display(options.grpcPort),
      publicUrl,
      ...(options.heartbeatSeconds === undefined ? {} : { heartbeatSeconds: options.heartbeatSeconds }),
      ...(options.staleAfter === undefined ? {} : { staleAfter: options.staleAfter }),
      ...(cluster === undefined ? {} : { relayAddresses: Context.get(cluster, ClusterNode).relayAddresses }),
      ...(options.storeVersion === undefined ? {} : { storeVersion: options.storeVersion }),
      ...(recheckVersion === undefined ? {} : { recheckVersion })
    })
    const local = yield* Layer.build(Layer.provideMerge(coreLayer, ShareServiceLive.layer))
    // Cluster mode: a call for a machine another node holds goes to that node over its peer port.
    const context =
      cluster === undefined
        ? local
        : yield* PeerNode.inCluster(local, cluster, host).pipe(
            Effect.mapError((e) => new RelayServeError({ message: e.message }))
          )
    // A change made elsewhere (another node, an admin command) reaches this node's guests and logins at once.
    if (cluster !== undefined) {
      const core = Context.get(context, RelayCore)
      yield* ClusterMode.react(cluster, Effect.zipRight(core.sweepGuests, core.sweepCredentials))
    }
    // Per-principal stream counts and per-source refusals, shared by gRPC, the share page and the browser terminal.
    const admission = Admission.make()
    const caps = ConnectionGuard.plan(ConnectionGuard.descriptorLimit(), {
      grpcPerSource: options.maxConnectionsPerSource
    })
    if (options.maxConnectionsPerSource !== undefined && options.maxConnectionsPerSource > caps.grpc.total)
      yield* Effect.logWarning(
        `--max-connections-per-source ${options.maxConnectionsPerSource} is more than the gRPC port's ${caps.grpc.total} connections in all (from the descriptor limit): one source may hold ${caps.grpc.total}; raise the limit (ulimit -n, LimitNOFILE) for more`
      )
    const services = yield* Effect.provide(RelayGrpc.services(admission), context)
    const grpc = yield* GrpcServer.make({
      services,
      host,
      port: options.grpcPort,
      shutdownTimeout: "1 second",
      onListening: (listeners) => listeners.forEach((l) => ConnectionGuard.guard(l, caps.grpc)),
      channelOptions: { "grpc.max_receive_message_length": Limits.MAX_MESSAGE_BYTES },
      ...(options.tls ? { tls: { certChain: options.tls.certChain, privateKey: options.tls.privateKey } } : {})
    }).pipe(
      Effect.provide(context),
      Effect.mapError(
        (e) => new RelayServeError({ message: `${e.message} (is another relay running? pick --grpc-port)` })
      )
    )
    // Stopping (finalizers run in reverse): the agents' streams are closed first, so that the gRPC server's
    // shutdown above finds them ending, and the core writes the machines offline in one batch once they are.
    yield* Effect.addFinalizer(() => Context.get(context, RelayCore).stop)
    // Agents learn where every node serves them (Welcome), for failover: this node's address on the peer host.
    if (cluster !== undefined) {
      const node = Context.get(cluster, ClusterNode)
      const peerHost = node.config.peerAddress.replace(/:\d+$/, "")
      yield* node.advertise(`${peerHost}:${grpc.address.replace(/^.*:/, "")}`)
    }
    const relayRoutes = yield* Effect.provide(
      httpRoutes(grpc.address, cluster, accounts !== undefined, admission, options.tls?.notAfter),
      context
    )
    const routes =
      accounts === undefined
        ? relayRoutes
        : HttpRouter.concat(
            relayRoutes,
            yield* AccountRoutes.make({
              secure: publicUrl().startsWith("https:"),
              publicUrl,
              sso: options.sso !== undefined,
              refusals: admission.refusals
            }).pipe(Effect.provide(Context.merge(context, accounts)))
          )
    const httpServer = makeHttpServer(caps.http)
    const httpContext = yield* Layer.build(
      // Share tokens (JWTs) are longer than the router's default 100-character limit for a path parameter.
      HttpServer.serve(HttpRouter.withRouterConfig(routes, { maxParamLength: 4096 })).pipe(
        Layer.provideMerge(NodeHttpServer.layer(() => httpServer, { port: options.httpPort, host }))
      )
    ).pipe(
      Effect.mapError(
        (e) =>
          new RelayServeError({
            // The platform's ServeError carries the reason (EADDRINUSE, EACCES) in its cause; its message is empty.
            message: `cannot listen on ${display(options.httpPort)} (HTTP): ${e.message || (e.cause instanceof Error ? e.cause.message : String(e.cause))}; pick --http-port`
          })
      )
    )
    yield* TerminalUpgrade.install(Context.get(context, RelayCore), httpServer, {
      publicUrl: () => options.publicUrl ?? boundHttp,
      admission
    })
    const bound = Context.get(httpContext, HttpServer.HttpServer).address
    const httpPort = bound._tag === "TcpAddress" ? bound.port : options.httpPort
    boundHttp = `http://${display(httpPort)}`
    const httpAddress = `http://${display(httpPort)}`
    return {
      grpcAddress: grpc.address,
      httpAddress,
      publicUrl: options.publicUrl ?? httpAddress,
      store: storeName
    }
  })

/** Runs a relay on the store the options name until the scope closes. */
export const serve = (options: Options): Effect.Effect<Running, RelayServeError, Scope.Scope> =>
  Effect.gen(function* () {
    if (options.cluster !== undefined && options.db === undefined)
      return yield* new RelayServeError({
        message: "cluster mode needs the shared PostgreSQL: pass --db postgres://… on every node"
      })
    const storeName = options.db !== undefined ? "postgresql" : `sqlite ${path.join(options.dataDir, "relay.db")}`
    const serveError = (e: { readonly message: string }) => new RelayServeError({ message: e.message })
    // One relay per embedded store; cluster nodes migrate the shared database one at a time, until each serves.
    if (options.db === undefined) yield* StoreLock.lockDataDir(options.dataDir).pipe(Effect.mapError(serveError))
    // A single relay on PostgreSQL: not on a live cluster's database, nor next to another single relay.
    else if (options.cluster === undefined)
      yield* Effect.zipRight(ClusterStartup.refuseLiveNodes(options.db), ClusterStartup.holdSingle(options.db)).pipe(
        Effect.mapError(serveError)
      )
    const startup = yield* Scope.make()
    const started = Effect.gen(function* () {
      if (options.cluster !== undefined && options.db !== undefined)
        yield* ClusterStartup.lock(options.db, {
          ...(options.cluster.progress === undefined ? {} : { progress: options.cluster.progress })
        }).pipe(
          Scope.extend(startup),
          Effect.zipRight(ClusterStartup.refuseSingle(options.db)),
          Effect.mapError(serveError)
        )
      const store = yield* Layer.build(storeLayer(options)).pipe(Effect.mapError(serveError))
      const cluster =
        options.cluster === undefined || options.db === undefined
          ? {}
          : { cluster: { db: options.db, ...options.cluster } }
      // The embedded store tells every commit apart (its WAL index): key verdicts are cached between changes.
      const storeVersion = options.db === undefined ? { storeVersion: embeddedStoreVersion(options.dataDir) } : {}
      return yield* serveWith(
        { accounts: accountsStore(options), ...options, ...cluster, ...storeVersion },
        storeName
      ).pipe(Effect.provide(store))
    })
    return yield* Effect.ensuring(started, Scope.close(startup, Exit.void))
  })
