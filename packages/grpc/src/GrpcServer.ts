/**
 * A grpc-js server whose handlers are Effects and Streams, bound for the lifetime of a Scope.
 *
 * Handlers run on the runtime captured when the server is made (so they may require services `R`), each call on
 * its own fiber. How a call ends, and who sees what:
 *
 * - Success: a unary / client-streaming handler's value is sent with status OK; a server-streaming / bidi
 *   handler's response stream ending sends status OK after the written messages. The client's response stream
 *   ends normally.
 * - Failure: a `GrpcStatusError` becomes the call's status (code, details, trailing metadata); messages written
 *   before it are still delivered. The client's effect or response stream fails with an equal `GrpcStatusError`.
 * - Defect: logged on the server with its cause; the client sees INTERNAL "internal error" and nothing more.
 * - Client half-close (client-streaming, bidi): the handler's request stream ends; its response side carries on.
 * - Client cancel, deadline or lost connection: the handler fiber is interrupted (finalizers run, `ctx.cancelled`
 *   completes); nothing more is sent.
 * - `ctx.abort(status)` (a cancel the client asked for in a message): the handler fiber is interrupted as for a
 *   cancel, and the call ends with `status`.
 * - Server shutdown (scope close): new calls are refused at once, in-flight calls get `shutdownTimeout` to finish,
 *   then their handlers are interrupted and their clients see UNAVAILABLE "server is shutting down".
 *
 * Incoming messages are read on demand (a handler that stops pulling its request stream stops the client through
 * HTTP/2 flow control); outgoing messages wait for `drain` when grpc-js's buffer is full.
 */
import * as grpc from "@grpc/grpc-js"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as net from "node:net"
import type * as GrpcMethod from "./GrpcMethod.js"
import type { GrpcStatusError } from "./GrpcStatusError.js"
import * as channelOptions from "./internal/channelOptions.js"
import * as internal from "./internal/server.js"

/** What a handler knows about its call besides the request. */
export interface CallContext {
  /** The method path, e.g. `/cmdop.connect.v1.Relay/Attach`. */
  readonly path: string
  /** The client's address as grpc-js reports it, e.g. `ipv4:127.0.0.1:51234`. */
  readonly peer: string
  /** Request metadata, first value per key (lower-case keys, e.g. `authorization`). `-bin` values as UTF-8. */
  readonly metadata: Readonly<Record<string, string>>
  /** The request metadata as grpc-js has it, for repeated keys or binary values. */
  readonly rawMetadata: grpc.Metadata
  /** The client's deadline (`Infinity` when none). */
  readonly deadline: grpc.Deadline
  /** Completes when the client cancels the call (the handler is being interrupted at the same time). */
  readonly cancelled: Effect.Effect<void>
  /** Whether the client has cancelled the call. */
  readonly isCancelled: Effect.Effect<boolean>
  /**
   * Ends the call as the client's cancel would, for a client that asks for it in a message rather than by
   * resetting the stream: the handler is interrupted (its finalizers run), then the call is answered with
   * `status` (a stream's messages already written go before it). Later calls, or a handler already done, change
   * nothing.
   */
  readonly abort: (status: GrpcStatusError) => void
}

/** The Effect handler for method definition `M`, chosen by its streaming shape. */
export type Handler<M, R> = M extends { readonly requestStream: false; readonly responseStream: false }
  ? (request: GrpcMethod.RequestOf<M>, ctx: CallContext) => Effect.Effect<GrpcMethod.ResponseOf<M>, GrpcStatusError, R>
  : M extends { readonly requestStream: false; readonly responseStream: true }
    ? (
        request: GrpcMethod.RequestOf<M>,
        ctx: CallContext
      ) => Stream.Stream<GrpcMethod.ResponseOf<M>, GrpcStatusError, R>
    : M extends { readonly requestStream: true; readonly responseStream: false }
      ? (
          requests: Stream.Stream<GrpcMethod.RequestOf<M>, GrpcStatusError>,
          ctx: CallContext
        ) => Effect.Effect<GrpcMethod.ResponseOf<M>, GrpcStatusError, R>
      : M extends { readonly requestStream: true; readonly responseStream: true }
        ? (
            requests: Stream.Stream<GrpcMethod.RequestOf<M>, GrpcStatusError>,
            ctx: CallContext
          ) => Stream.Stream<GrpcMethod.ResponseOf<M>, GrpcStatusError, R>
        : never

/** One handler per method of service definition `S`. */
export type Handlers<S, R = any> = { readonly [K in keyof S]: Handler<S[K], R> }

/** The services required by a set of handlers. */
export type HandlersContext<H> = {
  [K in keyof H]: H[K] extends (...args: ReadonlyArray<any>) => infer Out
    ? Out extends Stream.Stream<any, any, infer R>
      ? R
      : Out extends Effect.Effect<any, any, infer R>
        ? R
        : never
    : never
}[keyof H]

/** A service definition with its handlers, ready to be served by `make` / `layer`. */
export interface Service<R> {
  readonly definition: grpc.ServiceDefinition
  readonly implement: (run: internal.Run<R>) => grpc.UntypedServiceImplementation
}

/** The services required by the handlers of `S` (a `Service` or a union of them). */
export type ServiceContext<S> = S extends Service<infer R> ? R : never

/** Pairs a service definition with its handlers; the handlers' requirements become the server's. */
export const service = <S extends GrpcMethod.Service, H extends Handlers<S>>(
  definition: S,
  handlers: H
): Service<HandlersContext<H>> => ({
  definition,
  implement: (run) => internal.implement(definition, handlers as any, run)
})

/** PEM-encoded certificate chain and private key; the server then speaks TLS only. */
export interface Tls {
  readonly certChain: string
  readonly privateKey: string
}

export interface Options<Services extends ReadonlyArray<Service<any>>> {
  readonly services: Services
  /** Interface to listen on. Default `0.0.0.0`. */
  readonly host?: string
  /** Port to listen on; 0 picks a free one (read it back from `GrpcServer.port`). Default 0. */
  readonly port?: number
  /** TLS material; insecure when absent. */
  readonly tls?: Tls
  /** How long in-flight calls get to finish on shutdown before their handlers are interrupted. Default 5 s. */
  readonly shutdownTimeout?: Duration.DurationInput
  /** Extra grpc-js channel options, over the defaults (32 MiB messages, keepalive 20 s / 10 s). */
  readonly channelOptions?: grpc.ChannelOptions
  /** Called once bound with the listening sockets (grpc-js's http2 servers), e.g. to cap their connections. */
  readonly onListening?: (listeners: ReadonlyArray<net.Server>) => void
}

/** The http2 servers grpc-js listens with (an internal of grpc-js; empty if a grpc-js upgrade moves it). */
const listenersOf = (server: object): ReadonlyArray<net.Server> => {
  const internals = server as { http2Servers?: Map<net.Server, unknown> }
  return [...(internals.http2Servers?.keys() ?? [])]
}

/** The server could not be started. */
export class GrpcServerError extends Data.TaggedError("GrpcServerError")<{
  readonly reason: "Bind" | "Credentials"
  readonly address: string
  readonly cause: unknown
}> {
  override get message(): string {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return this.reason === "Bind"
      ? `cannot listen on ${this.address}: ${detail}`
      : `invalid TLS material for ${this.address}: ${detail}`
  }
}

/** A running server: where it listens. */
export class GrpcServer extends Context.Tag("@cmdop/grpc/GrpcServer")<
  GrpcServer,
  {
    readonly host: string
    readonly port: number
    /** `host:port`, ready for `GrpcClient.make` (with `0.0.0.0` replaced by `127.0.0.1`). */
    readonly address: string
  }
>() {}

const hostPort = (host: string, port: number) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)

/**
 * Starts a server for `options.services` and binds it; shuts it down when the scope closes (see the module header
 * for the stages).
 */
export const make = <const Services extends ReadonlyArray<Service<any>>>(
  options: Options<Services>
): Effect.Effect<GrpcServer["Type"], GrpcServerError, Scope.Scope | ServiceContext<Services[number]>> =>
  Effect.gen(function* () {
    const host = options.host ?? "0.0.0.0"
    const address = hostPort(host, options.port ?? 0)
    const credentials = yield* Effect.try({
      try: () =>
        options.tls === undefined
          ? grpc.ServerCredentials.createInsecure()
          : grpc.ServerCredentials.createSsl(
              null,
              [{ cert_chain: Buffer.from(options.tls.certChain), private_key: Buffer.from(options.tls.privateKey) }],
              false
            ),
      catch: (cause) => new GrpcServerError({ reason: "Credentials", address, cause })
    })
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const run: internal.Run<ServiceContext<Services[number]>> =
      yield* FiberSet.runtime(fibers)<ServiceContext<Services[number]>>()
    const server = new grpc.Server({ ...channelOptions.defaults, ...options.channelOptions })
    channelOptions.tuneServerBeforeBind(server)
    for (const s of options.services) server.addService(s.definition, s.implement(run))
    const timeoutMillis = Duration.toMillis(Duration.decode(options.shutdownTimeout ?? "5 seconds"))
    const port = yield* Effect.acquireRelease(
      internal.bind(server, address, credentials).pipe(
        Effect.tap(() => Effect.sync(() => channelOptions.tuneServerAfterBind(server))),
        Effect.tap(() => Effect.sync(() => options.onListening?.(listenersOf(server)))),
        Effect.tapError(() => Effect.sync(() => server.forceShutdown())),
        Effect.mapError((cause) => new GrpcServerError({ reason: "Bind", address, cause }))
      ),
      () => internal.shutdown(server, fibers, timeoutMillis)
    )
    const clientHost = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host
    return { host, port, address: hostPort(clientHost, port) }
  })

/** `make` as a layer providing `GrpcServer`. */
export const layer = <const Services extends ReadonlyArray<Service<any>>>(
  options: Options<Services>
): Layer.Layer<GrpcServer, GrpcServerError, ServiceContext<Services[number]>> => Layer.scoped(GrpcServer, make(options))
