/**
 * What a piece of code did to the outside world while it ran: servers it started listening, sockets it opened,
 * child processes it spawned. For tests that must prove a world is in-process ("no ports, no sockets, no child
 * processes": {@link violations} lists what broke that).
 * Recording patches `net.Server`, `net.Socket` and `ChildProcess` prototypes for the life of a scope, so it sees
 * everything in this process (grpc-js, http, node-pty's helpers alike); use it in one test at a time.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { ChildProcess } from "node:child_process"
import * as net from "node:net"

export interface Footprint {
  /** `listen` calls on any server (HTTP, HTTP/2, gRPC, raw TCP). */
  readonly listens: () => number
  /** Outgoing socket connections, as `host:port` or the path of a local socket. */
  readonly connects: () => ReadonlyArray<string>
  /** The program of every child process spawned. */
  readonly spawned: () => ReadonlyArray<string>
}

const describeConnect = (args: ReadonlyArray<unknown>): string => {
  const first = Array.isArray(args[0]) ? (args[0] as Array<unknown>)[0] : args[0]
  if (typeof first === "object" && first !== null) {
    const o = first as { host?: string; port?: number; path?: string }
    return o.path ?? `${o.host ?? "localhost"}:${o.port}`
  }
  return typeof first === "number" ? `${typeof args[1] === "string" ? args[1] : "localhost"}:${first}` : String(first)
}

/** Every `spawn`, `execFile`, `exec` and `fork` goes through this (undocumented, stable since Node 0.x) method. */
const childProto = ChildProcess.prototype as unknown as {
  spawn: (this: ChildProcess, options: { readonly file?: string }) => unknown
}

/** Records from now until the scope closes. */
export const record: Effect.Effect<Footprint, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    let listens = 0
    const connects: Array<string> = []
    const spawned: Array<string> = []
    const listen = net.Server.prototype.listen
    const connect = net.Socket.prototype.connect
    const spawn = childProto.spawn
    net.Server.prototype.listen = function (this: net.Server, ...args: Array<unknown>) {
      listens++
      return (listen as (...a: Array<unknown>) => net.Server).apply(this, args)
    } as typeof listen
    net.Socket.prototype.connect = function (this: net.Socket, ...args: Array<unknown>) {
      connects.push(describeConnect(args))
      return (connect as (...a: Array<unknown>) => net.Socket).apply(this, args)
    } as typeof connect
    childProto.spawn = function (this: ChildProcess, options: { readonly file?: string }) {
      spawned.push(options.file ?? "?")
      return spawn.call(this, options)
    }
    const footprint: Footprint = {
      listens: () => listens,
      connects: () => [...connects],
      spawned: () => [...spawned]
    }
    return { footprint, listen, connect, spawn }
  }),
  ({ connect, listen, spawn }) =>
    Effect.sync(() => {
      net.Server.prototype.listen = listen
      net.Socket.prototype.connect = connect
      childProto.spawn = spawn
    })
).pipe(Effect.map(({ footprint }) => footprint))

/**
 * Everything the recorded code did outside this process, one line each: a port it listened on, a socket it
 * dialed, a program it started. Empty for code that stayed in-process, e.g. `assert.deepStrictEqual(violations(f), [])`.
 */
export const violations = (footprint: Footprint): ReadonlyArray<string> => [
  ...(footprint.listens() > 0 ? [`listened on a port ${footprint.listens()} time(s)`] : []),
  ...footprint.connects().map((to) => `opened a socket to ${to}`),
  ...footprint.spawned().map((file) => `started a child process: ${file}`)
]
