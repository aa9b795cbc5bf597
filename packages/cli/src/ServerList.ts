/** `--server` as a list: the nodes of one relay cluster separated by commas, checked, and picked from by clients. */
import * as Effect from "effect/Effect"
import * as net from "node:net"
import { CliError } from "./CliError.js"

/**
 * `--server a:50051,b:50051`: the nodes of one relay cluster, tried in turn (the daemon moves to another when its
 * node dies). Each entry must be a whole relay address, so a typo fails here rather than as endless reconnects.
 */
export const checkServerList = (server: string | undefined): Effect.Effect<void, CliError> => {
  if (server === undefined || !server.includes(",")) return Effect.void
  const bad = server
    .split(",")
    .map((s) => s.trim())
    .find((s) => !/^((https?|grpcs?):\/\/[^\s,/]+\/?|[^\s,/:]+:\d+|\[[0-9a-fA-F:]+\]:\d+)$/i.test(s))
  return bad === undefined
    ? Effect.void
    : Effect.fail(
        new CliError({
          message: `--server ${server}: ${bad === "" ? "an empty entry" : `"${bad}"`} is not a relay address; list the relay nodes as host:port or https://host, separated by commas (e.g. --server relay-1:50051,relay-2:50051)`
        })
      )
}

/** How long the CLI waits for one node of a list to accept a connection before it tries the next. */
const PROBE_TIMEOUT_MS = 1500

/** Whether `address` (`host:port`, `[v6]:port`) accepts a TCP connection within `PROBE_TIMEOUT_MS`. */
const accepts = (address: string): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const colon = address.lastIndexOf(":")
    const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1")
    const port = Number(address.slice(colon + 1))
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  })

/**
 * The node a client call goes to when its server is a list (`a:50051,b:50051`, as stored by
 * `connect key set --server` for a cluster): the first, in order, that accepts a connection. Every node of a
 * cluster serves every machine, so any live one will do; when none answers, the first (whose error names it).
 * `addresses` are `host:port` as `RelayAddress.parse` gives them.
 */
export const firstReachable = <T extends { readonly address: string }>(targets: ReadonlyArray<T>): Effect.Effect<T> =>
  Effect.gen(function* () {
    for (const target of targets) if (yield* accepts(target.address)) return target
    return targets[0]!
  })
