/**
 * Counters of the traffic between relay nodes, for `/metrics`: sessions this node forwarded to the node holding
 * their machine (and how many are live), sessions it served for other nodes, and peer errors (a peer that could
 * not be reached or broke off a call, and calls refused for a missing or wrong cluster secret).
 */
import * as Context from "effect/Context"

export interface Snapshot {
  /** Calls (exec, attach, session listings) this node forwarded to another node, since start. */
  readonly forwardedTotal: number
  /** Forwarded exec and attach sessions still running. */
  readonly forwardedLive: number
  /** Forwarded exec and attach sessions of gRPC clients, their answers passed through as bytes, since start. */
  readonly passedThroughTotal: number
  /** Calls other nodes forwarded here, since start. */
  readonly servedTotal: number
  /** Exec and attach sessions served here for other nodes, still running. */
  readonly servedLive: number
  /** Forwarded calls that failed at the peer link itself (not a refusal of the owning node), since start. */
  readonly peerErrors: number
  /** Calls to this node's peer port refused for a missing or wrong cluster secret, since start. */
  readonly refused: number
}

/** Told of each forwarded session and each peer error (the cluster node's own counters, when it has them). */
export interface Listener {
  readonly forwarded: () => void
  readonly peerError: () => void
}

/** The mutable counters one node keeps; `snapshot` is what `/metrics` reads. */
export class Counters {
  constructor(private readonly listener?: Listener) {}

  forwardedTotal = 0
  forwardedLive = 0
  passedThroughTotal = 0
  servedTotal = 0
  servedLive = 0
  peerErrors = 0
  refused = 0

  forwarded(): void {
    this.forwardedTotal++
    this.listener?.forwarded()
  }

  peerError(): void {
    this.peerErrors++
    this.listener?.peerError()
  }

  snapshot(): Snapshot {
    return {
      forwardedTotal: this.forwardedTotal,
      forwardedLive: this.forwardedLive,
      passedThroughTotal: this.passedThroughTotal,
      servedTotal: this.servedTotal,
      servedLive: this.servedLive,
      peerErrors: this.peerErrors,
      refused: this.refused
    }
  }
}

/** This node's peer counters. */
export class PeerStats extends Context.Tag("@cmdop/relay/PeerStats")<
  PeerStats,
  { readonly snapshot: () => Snapshot }
>() {}
