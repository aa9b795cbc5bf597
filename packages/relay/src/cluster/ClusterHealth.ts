/**
 * What a cluster node reports over HTTP: `/healthz` as JSON (its lease, its live peers and their lease age;
 * status 503 once its own lease has lapsed, so a load balancer stops sending it clients), and the per-node lines
 * of `/metrics` (Prometheus text).
 */
import type { ClusterView } from "./ClusterNode.js"

/** The `/healthz` answer: status and JSON body. */
export const health = (view: ClusterView) => {
  const leased = view.leaseAgeMs < view.leaseMs
  return {
    status: leased ? 200 : 503,
    body: {
      status: leased ? "ok" : "lease lapsed",
      node: view.nodeId,
      peerAddress: view.peerAddress,
      leaseAgeMs: view.leaseAgeMs,
      leaseMs: view.leaseMs,
      ...(view.lastError === undefined ? {} : { lastError: view.lastError }),
      peers: view.peers
    }
  }
}

/** The cluster lines of `/metrics`, labelled with the node id. */
export const metricLines = (view: ClusterView): ReadonlyArray<string> => {
  const node = `node="${view.nodeId.replace(/["\\\n]/g, "_")}"`
  return [
    "# HELP cmdop_cluster_peers Other relay nodes with a live lease, as this node sees them.",
    "# TYPE cmdop_cluster_peers gauge",
    `cmdop_cluster_peers{${node}} ${view.peers.length}`,
    "# HELP cmdop_cluster_lease_age_seconds Time since this node last renewed its lease.",
    "# TYPE cmdop_cluster_lease_age_seconds gauge",
    `cmdop_cluster_lease_age_seconds{${node}} ${(view.leaseAgeMs / 1000).toFixed(3)}`,
    "# HELP cmdop_cluster_forwarded_sessions_total Sessions this node forwarded to the node holding their machine.",
    "# TYPE cmdop_cluster_forwarded_sessions_total counter",
    `cmdop_cluster_forwarded_sessions_total{${node}} ${view.forwardedSessions}`,
    "# HELP cmdop_cluster_peer_errors_total Failed calls from this node to a peer node.",
    "# TYPE cmdop_cluster_peer_errors_total counter",
    `cmdop_cluster_peer_errors_total{${node}} ${view.peerErrors}`
  ]
}
