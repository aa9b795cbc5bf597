/**
 * A cluster node in this process (`RelayServer.serve` with `cluster`), on a shared PostgreSQL database, for the
 * suites whose nodes never forward a call: its peer address leads nowhere. The nodes of one test file share one
 * peer secret.
 */
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"

const SECRET = Redacted.make(randomBytes(24).toString("hex"))

let made = 0

/**
 * A peer address that leads nowhere (a port below the ephemeral range that nothing here listens on), another for
 * each node: live nodes may not share one (`ClusterNode.PeerAddressInUse`). The host stays 127.0.0.1: a node tells
 * agents its client address on that host.
 */
const nowhere = () => `127.0.0.1:${1024 + (made++ % 800)}`

/**
 * Node `nodeId` on `db`, for the life of the scope; `leaseMs` as the cluster options take it (default theirs);
 * with `tls` (PEM), its client port serves TLS only.
 */
export const clusterNode = (
  db: Redacted.Redacted<string>,
  nodeId: string,
  options: { readonly leaseMs?: number; readonly tls?: RelayServer.Options["tls"] } = {}
) => {
  const { tls, ...cluster } = options
  return RelayServer.serve({
    dataDir: "/nonexistent/unused",
    db,
    host: "127.0.0.1",
    grpcPort: 0,
    httpPort: 0,
    ...(tls === undefined ? {} : { tls }),
    cluster: { nodeId, peerAddress: nowhere(), peerPort: 0, secret: SECRET, ...cluster }
  })
}
