/**
 * A typed client for one grpc-js service definition, open for the lifetime of a Scope. Every call is an Effect or
 * a Stream; no callback or event of grpc-js leaks out.
 *
 * Calls never wait for a connection unless asked (`waitForReady: false` by default): with no server listening
 * they fail at once with UNAVAILABLE. Use `waitForReady(client, deadline)` to wait for a connection explicitly.
 *
 * How calls end, and who sees what:
 *
 * - Interrupting a unary / client-streaming effect, or stopping to consume a response stream (interruption, `take`,
 *   scope close), cancels the call: the server's handler is interrupted; the client sees only its interruption.
 * - Request streams (`clientStream`, `bidi`): their end half-closes the call (`end()`); the server sees its
 *   request stream end and may go on answering. If the request stream fails, the call is cancelled and the
 *   caller sees that failure.
 * - The server finishing (status OK) ends the response stream after the last message; a bidi request stream
 *   still running is then stopped.
 * - A non-OK status fails the effect / response stream with a `GrpcStatusError` (code, details, trailing
 *   metadata), after the messages that arrived before it. Deadline: DEADLINE_EXCEEDED; lost connection or no
 *   server: UNAVAILABLE.
 *
 * Responses are read on demand: while the consumer does not pull, grpc-js stops reading and HTTP/2 flow control
 * stops the server. Requests are written with backpressure (`write()` false → wait for `drain`).
 */
import type * as grpc from "@grpc/grpc-js"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as GrpcMethod from "./GrpcMethod.js"
import type { GrpcStatusError } from "./GrpcStatusError.js"
import * as internal from "./internal/client.js"

/** Certificate checking for a TLS connection; without it the channel is insecure. */
export interface Tls {
  /** PEM of the CA to trust instead of the system's roots (e.g. a self-signed relay). */
  readonly caPem?: string
  /** Name to check the server certificate against, when it differs from the address's host. */
  readonly serverName?: string
}

export interface Options {
  /** `host:port` of the server. */
  readonly address: string
  readonly tls?: Tls
  /** Extra grpc-js channel options, over the defaults (32 MiB messages, keepalive 20 s / 10 s). */
  readonly channelOptions?: grpc.ChannelOptions
}

/** Per-call options. */
export interface CallOptions {
  /** Request metadata, e.g. `{ authorization: "Bearer …" }`. Values of `-bin` keys are sent as UTF-8. */
  readonly metadata?: Readonly<Record<string, string>>
  /** Deadline relative to the start of the call; the call then fails with DEADLINE_EXCEEDED. */
  readonly timeout?: Duration.DurationInput
  /** Queue the call until the channel connects instead of failing with UNAVAILABLE. Default false. */
  readonly waitForReady?: boolean
}

/** The options of a call that streams its answers. */
export interface StreamCallOptions<Res> extends CallOptions {
  /**
   * Whether `response` is the call's final answer (an exec's `Exit`). A reader that stops once it has taken that
   * answer does not cancel the call: the call is left to end by itself, and cancelled only if it has not within
   * 5 s. A cancel resets the call's HTTP/2 stream, and a server closes a connection that resets too many (Node's
   * HTTP/2 after 1,000 in a burst), failing every call on it: a loop of calls, each stopped at its final answer,
   * would lose its connection.
   */
  readonly isLast?: (response: Res) => boolean
}

/**
 * One long-lived bidi call that many fibers may write to. Obtained with `bidiChannel`; the call is cancelled when
 * the scope that obtained it closes.
 */
export interface BidiChannel<Req, Res> {
  /**
   * Sends one message, waiting while grpc-js's buffer is full. Safe to call from concurrent fibers: messages are
   * written one at a time, in the order the calls get the channel's lock. Fails once the call is over (with its
   * status when non-OK) or after `end`.
   */
  readonly send: (request: Req) => Effect.Effect<void, GrpcStatusError>
  /** Half-closes the call: the server's request stream ends; responses keep coming. Idempotent. */
  readonly end: Effect.Effect<void>
  /** The server's messages. Consume it once, from one fiber. */
  readonly responses: Stream.Stream<Res, GrpcStatusError>
}

export interface GrpcClient<S> {
  /** Calls a unary method. Interruption cancels the call. */
  readonly unary: <K extends GrpcMethod.Unary<S>>(
    method: K,
    request: GrpcMethod.RequestOf<S[K]>,
    options?: CallOptions
  ) => Effect.Effect<GrpcMethod.ResponseOf<S[K]>, GrpcStatusError>
  /** Calls a server-streaming method; the call starts when the stream is run and is cancelled when it stops. */
  readonly serverStream: <K extends GrpcMethod.ServerStreaming<S>>(
    method: K,
    request: GrpcMethod.RequestOf<S[K]>,
    options?: StreamCallOptions<GrpcMethod.ResponseOf<S[K]>>
  ) => Stream.Stream<GrpcMethod.ResponseOf<S[K]>, GrpcStatusError>
  /** Calls a client-streaming method, sending `requests` and half-closing after the last one. */
  readonly clientStream: <K extends GrpcMethod.ClientStreaming<S>, E, R>(
    method: K,
    requests: Stream.Stream<GrpcMethod.RequestOf<S[K]>, E, R>,
    options?: CallOptions
  ) => Effect.Effect<GrpcMethod.ResponseOf<S[K]>, GrpcStatusError | E, R>
  /**
   * Calls a bidi method: `requests` are sent from a background fiber (half-close after the last one) while the
   * returned stream reads the responses.
   */
  readonly bidi: <K extends GrpcMethod.Bidi<S>, E, R>(
    method: K,
    requests: Stream.Stream<GrpcMethod.RequestOf<S[K]>, E, R>,
    options?: StreamCallOptions<GrpcMethod.ResponseOf<S[K]>>
  ) => Stream.Stream<GrpcMethod.ResponseOf<S[K]>, GrpcStatusError | E, R>
  /** Opens a bidi call whose messages are sent imperatively; see `BidiChannel`. */
  readonly bidiChannel: <K extends GrpcMethod.Bidi<S>>(
    method: K,
    options?: CallOptions
  ) => Effect.Effect<BidiChannel<GrpcMethod.RequestOf<S[K]>, GrpcMethod.ResponseOf<S[K]>>, GrpcStatusError, Scope.Scope>
  /** Connects (if needed) and waits until the channel is ready; UNAVAILABLE when not ready by `deadline`. */
  readonly waitForReady: (deadline: Duration.DurationInput) => Effect.Effect<void, GrpcStatusError>
  /** The underlying grpc-js client, for what this module does not cover. */
  readonly raw: grpc.Client
}

/**
 * Opens a client for `service` at `options.address` (insecure unless `options.tls`); closes its channel when the
 * scope closes, which also ends the calls still running. Connection happens lazily, on the first call.
 */
export const make: <S extends GrpcMethod.Service>(
  service: S,
  options: Options
) => Effect.Effect<GrpcClient<S>, GrpcStatusError, Scope.Scope> = internal.make

/** Waits until `client` is connected, failing with UNAVAILABLE when it is not by `deadline`. */
export const waitForReady = <S>(
  client: GrpcClient<S>,
  deadline: Duration.DurationInput
): Effect.Effect<void, GrpcStatusError> => client.waitForReady(deadline)
