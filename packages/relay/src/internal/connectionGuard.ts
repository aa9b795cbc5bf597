/**
 * Caps on the TCP connections the relay accepts, on each of its listening sockets (HTTP and gRPC): at most
 * `perSource` open connections from one address, at most `total` overall, and a connection that sends nothing
 * within `silentFor` is closed. Refused connections are closed at once, before any byte is read, so a flood of idle
 * sockets from one source cannot take the descriptors health checks and agents need.
 *
 * The totals come from the process's descriptor limit (`/proc/self/limits` on Linux): a reserve stays free for
 * the store, files and logs, and the HTTP port gets a smaller share than the gRPC port, where agents connect.
 * Behind a TCP load balancer or NAT every agent arrives from one address, so the gRPC per-source cap can be
 * raised (`relay serve --max-connections-per-source`), never past the gRPC total.
 */
import * as fs from "node:fs"
import type * as net from "node:net"

export interface Caps {
  /** Open connections one source address may hold. */
  readonly perSource: number
  /** Open connections the listener accepts in all. */
  readonly total: number
  /** A connection that has sent no byte after this many milliseconds is closed. */
  readonly silentForMs: number
}

/** Descriptors never handed to connections: the store, log files, DNS, child processes. */
export const FD_RESERVE = 512

/** The descriptor limit to plan for when the platform does not say (the common default). */
const DEFAULT_FD_LIMIT = 1024

/** The process's soft limit on open files, as the kernel reports it (Linux), else a conservative default. */
export const descriptorLimit = (): number => {
  try {
    const line = fs
      .readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))
    const soft = line?.split(/\s{2,}/)[1]
    if (soft === "unlimited") return 1_048_576
    const n = Number(soft)
    return Number.isFinite(n) && n > 0 ? n : DEFAULT_FD_LIMIT
  } catch {
    return DEFAULT_FD_LIMIT
  }
}

/** The default gRPC per-source cap: plenty for one host's agents and clients, a bound on one abusive address. */
export const GRPC_PER_SOURCE = 1024

/**
 * The caps for the HTTP and gRPC listeners: a quarter and the rest of what the reserve leaves. `grpcPerSource`
 * replaces the default gRPC per-source cap (the total still bounds it: one source cannot hold more than all).
 */
export const plan = (
  fdLimit = descriptorLimit(),
  options: { readonly grpcPerSource?: number | undefined } = {}
): { readonly http: Caps; readonly grpc: Caps } => {
  const budget = Math.max(64, fdLimit - FD_RESERVE)
  const http = Math.max(32, Math.floor(budget / 4))
  const grpc = Math.max(32, budget - http)
  return {
    http: { perSource: Math.min(256, http), total: http, silentForMs: 10_000 },
    grpc: { perSource: Math.min(options.grpcPerSource ?? GRPC_PER_SOURCE, grpc), total: grpc, silentForMs: 10_000 }
  }
}

/**
 * Applies `caps` to a listening server. Must be installed before connections arrive. The server's own connection
 * handlers (the HTTP parser, or grpc-js's HTTP/2 session) run only for an admitted socket: a refused one is closed
 * before any of them sees it, so a flood of sockets over the cap costs the relay an accept and a close each —
 * not an HTTP/2 session set up on a socket that is already gone (which is what a listener placed in front of
 * them, and not instead of them, cost: profiled under the idle-socket attack of the abuse suite).
 */
export const guard = (server: net.Server, caps: Caps): void => {
  server.maxConnections = caps.total
  const bySource = new Map<string, number>()
  const downstream = server.listeners("connection") as Array<(socket: net.Socket) => void>
  server.removeAllListeners("connection")
  server.on("connection", (socket: net.Socket) => {
    const source = socket.remoteAddress ?? "unknown"
    const n = bySource.get(source) ?? 0
    if (n >= caps.perSource) {
      socket.destroy()
      return
    }
    bySource.set(source, n + 1)
    socket.once("close", () => {
      const left = (bySource.get(source) ?? 1) - 1
      if (left <= 0) bySource.delete(source)
      else bySource.set(source, left)
    })
    // Silent sockets are closed; once the peer has spoken, the protocol's own timeouts apply.
    socket.setTimeout(caps.silentForMs, () => {
      if (socket.bytesRead === 0) socket.destroy()
      else socket.setTimeout(0)
    })
    for (const listener of downstream) listener.call(server, socket)
  })
}
