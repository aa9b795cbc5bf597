/**
 * The cluster-mode flags of `cmdop relay serve`: several relay nodes on one PostgreSQL. Cluster mode is on when
 * `--node-id` or a cluster secret (`--cluster-secret`, env `CMDOP_CLUSTER_SECRET`) is given; it needs `--db`.
 * Defaults: the node id is this host's name, the peer port the gRPC port + 1, the peer address this host's
 * name (or the `--host` interface) with the peer port, the address agents are told (`--advertise-address`, env
 * `CMDOP_RELAY_ADVERTISE_ADDRESS`) the peer address's host with the gRPC port.
 */
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as os from "node:os"
import { CliError } from "../CliError.js"

export const clusterOptions = {
  nodeId: Options.text("node-id").pipe(
    Options.withDescription(
      "cluster mode (with --db): this node's id, unique among the nodes (default: this host's name)"
    ),
    Options.optional
  ),
  peerAddress: Options.text("peer-address").pipe(
    Options.withDescription(
      "cluster mode: host:port the other nodes reach this node's peer service at (default: <host name>:<peer port>)"
    ),
    Options.optional
  ),
  peerPort: Options.integer("peer-port").pipe(
    Options.withDescription(
      "cluster mode: port of the peer service, for the other nodes only (default: grpc port + 1)"
    ),
    Options.optional
  ),
  advertiseAddress: Options.text("advertise-address").pipe(
    Options.withDescription(
      "cluster mode: host:port agents reach this node's gRPC service at, told to every agent as a failover hint (env CMDOP_RELAY_ADVERTISE_ADDRESS; default: the peer address's host with the gRPC port)"
    ),
    Options.withFallbackConfig(Config.string("CMDOP_RELAY_ADVERTISE_ADDRESS")),
    Options.optional
  ),
  clusterSecret: Options.redacted("cluster-secret").pipe(
    Options.withDescription(
      "cluster mode: the secret every node shares, authenticating the peer port (env CMDOP_CLUSTER_SECRET); e.g. openssl rand -hex 32"
    ),
    Options.withFallbackConfig(Config.redacted("CMDOP_CLUSTER_SECRET")),
    Options.optional
  )
}

export interface ClusterArgs {
  readonly nodeId: Option.Option<string>
  readonly peerAddress: Option.Option<string>
  readonly peerPort: Option.Option<number>
  readonly advertiseAddress: Option.Option<string>
  readonly clusterSecret: Option.Option<Redacted.Redacted<string>>
}

export interface ClusterFlags {
  readonly nodeId: string
  readonly peerAddress: string
  readonly peerPort: number
  /** Where agents reach this node (`--advertise-address`); unset: the peer address's host with the gRPC port. */
  readonly clientAddress?: string
  readonly secret: Redacted.Redacted<string>
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const MIN_SECRET = 16

const usage = (message: string) => new CliError({ message, exitCode: 2 })

const validPort = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65535

/** `host:port` with a port in range (a bracketed IPv6 host allowed). */
const validAddress = (address: string) => {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d+)$/.exec(address)
  return match !== null && validPort(Number(match[2]))
}

/**
 * The cluster settings the flags ask for: `None` outside cluster mode; a usage error naming the flag and the fix
 * for anything wrong.
 */
export const clusterFlags = (
  args: ClusterArgs,
  serve: { readonly db: boolean; readonly host: string; readonly grpcPort: number }
): Effect.Effect<Option.Option<ClusterFlags>, CliError> =>
  Effect.gen(function* () {
    if (Option.isNone(args.nodeId) && Option.isNone(args.clusterSecret)) {
      if (Option.isSome(args.peerAddress) || Option.isSome(args.peerPort) || Option.isSome(args.advertiseAddress))
        return yield* usage(
          "--peer-address, --peer-port and --advertise-address are for cluster mode: add --node-id and --cluster-secret"
        )
      return Option.none()
    }
    if (!serve.db)
      return yield* usage(
        "cluster mode (--node-id, --cluster-secret) needs --db postgres://…: the nodes share their routing table there"
      )
    if (Option.isNone(args.clusterSecret))
      return yield* usage(
        "cluster mode needs --cluster-secret (or env CMDOP_CLUSTER_SECRET), the same on every node; make one with: openssl rand -hex 32"
      )
    const secret = args.clusterSecret.value
    if (Redacted.value(secret).length < MIN_SECRET)
      return yield* usage(
        `--cluster-secret is too short (under ${MIN_SECRET} characters); make one with: openssl rand -hex 32`
      )
    const nodeId = Option.getOrElse(args.nodeId, () => os.hostname().split(".")[0] ?? "relay")
    if (!NODE_ID.test(nodeId))
      return yield* usage(
        `invalid --node-id "${nodeId}": use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`
      )
    const peerPort = Option.getOrElse(args.peerPort, () => serve.grpcPort + 1)
    if (!validPort(peerPort))
      return yield* usage(
        Option.isSome(args.peerPort)
          ? `invalid --peer-port ${peerPort}: use a port from 1 to 65535`
          : `pass --peer-port: with --grpc-port ${serve.grpcPort} there is no default`
      )
    const advertised = serve.host === "0.0.0.0" || serve.host === "::" ? os.hostname() : serve.host
    const peerAddress = Option.getOrElse(args.peerAddress, () => `${advertised}:${peerPort}`)
    if (!validAddress(peerAddress))
      return yield* usage(`invalid --peer-address "${peerAddress}": use host:port, e.g. relay-2.internal:50052`)
    if (Option.isNone(args.advertiseAddress)) return Option.some({ nodeId, peerAddress, peerPort, secret })
    const clientAddress = args.advertiseAddress.value.trim()
    if (!validAddress(clientAddress))
      return yield* usage(
        `invalid --advertise-address (or CMDOP_RELAY_ADVERTISE_ADDRESS) "${clientAddress}": use the host:port agents reach this node's gRPC port at, e.g. relay-2.example.com:50051`
      )
    return Option.some({ nodeId, peerAddress, peerPort, clientAddress, secret })
  })
