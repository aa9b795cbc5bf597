/**
 * The machinery behind `GrpcClient`: one grpc-js `Client` per scope and Effect/Stream wrappers for its four call
 * shapes.
 */
import * as grpc from "@grpc/grpc-js"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as ScopedAcquire from "../ScopedAcquire.js"
import * as Stream from "effect/Stream"
import type { BidiChannel, CallOptions, GrpcClient, Options, StreamCallOptions } from "../GrpcClient.js"
import type * as GrpcMethod from "../GrpcMethod.js"
import { GrpcStatusError, fromUnknown, recordToMetadata } from "../GrpcStatusError.js"
import * as channelOptions from "./channelOptions.js"
import * as CallEnd from "../CallEnd.js"
import { callbackFor } from "../GrpcWritten.js"
import * as PullStream from "../PullStream.js"
import { awaitDrain, fromReadable, ignoreError, makeReader, type Reader, writeAll } from "./nodeStream.js"

type AnyMethod = grpc.MethodDefinition<any, any>

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error))

const startFailed = (error: unknown) =>
  new GrpcStatusError({ code: grpc.status.UNAVAILABLE, details: `cannot start call: ${errorText(error)}` })

const streamClosed = () => new GrpcStatusError({ code: grpc.status.CANCELLED, details: "call closed" })

const credentialsOf = (options: Options): grpc.ChannelCredentials =>
  options.tls === undefined
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(options.tls.caPem === undefined ? null : Buffer.from(options.tls.caPem))

const channelOptionsOf = (options: Options): grpc.ChannelOptions => ({
  ...channelOptions.defaults,
  ...(options.tls?.serverName === undefined
    ? {}
    : { "grpc.ssl_target_name_override": options.tls.serverName, "grpc.default_authority": options.tls.serverName }),
  ...options.channelOptions
})

/** Metadata and grpc-js call options for one call, computed when the call starts (the deadline is relative). */
const prepare = (options: CallOptions | undefined): Effect.Effect<[grpc.Metadata, grpc.CallOptions], GrpcStatusError> =>
  Effect.try({
    try: () => {
      const metadata = recordToMetadata(options?.metadata)
      metadata.setOptions({ waitForReady: options?.waitForReady ?? false })
      const callOptions: grpc.CallOptions = {}
      if (options?.timeout !== undefined) callOptions.deadline = wallClockIn(options.timeout)
      return [metadata, callOptions]
    },
    catch: (error) =>
      new GrpcStatusError({ code: grpc.status.INVALID_ARGUMENT, details: `invalid call metadata: ${errorText(error)}` })
  })

/**
 * An absolute deadline `after` from now on the wall clock. grpc-js compares deadlines with its own timers against
 * the real time, so this is deliberately not Effect's `Clock` (under a TestClock it would be 1970 and every call
 * would expire at once).
 */
const wallClockIn = (after: Duration.DurationInput): number => Date.now() + Duration.toMillis(Duration.decode(after))

/**
 * Starts a streaming call for the current scope. A no-op `error` listener is attached first and kept: grpc-js
 * emits CANCELLED as an `error` event after we cancel, when nobody reads the call any more. Closing the scope
 * cancels the call (a no-op when it already finished) — unless `tookLast` says the reader has taken the call's
 * final answer: then the call is left to end by itself (`linger`).
 */
const acquireCall = <C extends grpc.ClientReadableStream<unknown> | grpc.ClientWritableStream<unknown>>(
  start: () => C,
  tookLast?: () => boolean
): Effect.Effect<C, GrpcStatusError, Scope.Scope> =>
  ScopedAcquire.acquireRelease(
    Effect.try({
      try: () => {
        const call = start()
        call.on("error", ignoreError)
        return call
      },
      catch: startFailed
    }),
    (call) => Effect.sync(() => (tookLast?.() === true ? linger(call) : call.cancel()))
  )

/** How long a call whose final answer was read may take to end by itself before it is reset after all. */
const LINGER_MS = 5_000

/** A call whose final answer the reader took: left to end by itself (see `CallEnd.ts` for why not cancelled). */
const linger = (call: grpc.ClientReadableStream<unknown> | grpc.ClientWritableStream<unknown>): void =>
  CallEnd.awaitEndOrReset(call as CallEnd.EndingCall, LINGER_MS)

const responsesOf = <A>(call: grpc.ClientReadableStream<A> | grpc.ClientDuplexStream<unknown, A>) =>
  fromReadable<A, GrpcStatusError>(call, fromUnknown, streamClosed)

export const make = <S extends GrpcMethod.Service>(
  service: S,
  options: Options
): Effect.Effect<GrpcClient<S>, GrpcStatusError, Scope.Scope> =>
  Effect.gen(function* () {
    const client = yield* Effect.acquireRelease(
      Effect.try({
        try: () => new grpc.Client(options.address, credentialsOf(options), channelOptionsOf(options)),
        catch: (error) =>
          new GrpcStatusError({
            code: grpc.status.INVALID_ARGUMENT,
            details: `cannot create a client for ${options.address}: ${errorText(error)}`
          })
      }),
      (client) => Effect.sync(() => client.close())
    )
    const methodOf = (name: string): AnyMethod => service[name] as AnyMethod

    const unary = (name: string, request: unknown, callOptions?: CallOptions) =>
      Effect.flatMap(prepare(callOptions), ([metadata, opts]) =>
        Effect.async<unknown, GrpcStatusError>((resume) => {
          const method = methodOf(name)
          let call: grpc.ClientUnaryCall
          try {
            call = client.makeUnaryRequest(
              method.path,
              method.requestSerialize,
              method.responseDeserialize,
              request,
              metadata,
              opts,
              (error, value) => resume(error ? Effect.fail(fromUnknown(error)) : Effect.succeed(value))
            )
          } catch (error) {
            return resume(Effect.fail(startFailed(error)))
          }
          return Effect.sync(() => call.cancel())
        })
      )

    const serverStream = (name: string, request: unknown, callOptions?: StreamCallOptions<unknown>) =>
      PullStream.unwrapScoped(
        Effect.gen(function* () {
          const [metadata, opts] = yield* prepare(callOptions)
          const method = methodOf(name)
          const isLast = callOptions?.isLast
          let reader: Reader<unknown, GrpcStatusError> | undefined
          const call = yield* acquireCall(
            () =>
              client.makeServerStreamRequest(
                method.path,
                method.requestSerialize,
                method.responseDeserialize,
                request,
                metadata,
                opts
              ),
            isLast === undefined ? undefined : () => reader?.tookLast() === true
          )
          reader = yield* makeReader<unknown, GrpcStatusError>(call, fromUnknown, streamClosed, isLast)
          return reader.stream
        })
      )

    const clientStream = <E, R>(name: string, requests: Stream.Stream<unknown, E, R>, callOptions?: CallOptions) =>
      Effect.scoped(
        Effect.gen(function* () {
          const [metadata, opts] = yield* prepare(callOptions)
          const method = methodOf(name)
          const response = yield* Deferred.make<unknown, GrpcStatusError>()
          const call = yield* acquireCall(() =>
            client.makeClientStreamRequest(
              method.path,
              method.requestSerialize,
              method.responseDeserialize,
              metadata,
              opts,
              (error, value) =>
                Deferred.unsafeDone(response, error ? Exit.fail(fromUnknown(error)) : Exit.succeed(value))
            )
          )
          const writer = yield* writeAll(call, requests).pipe(
            Effect.zipRight(Effect.sync(() => call.end())),
            Effect.forkScoped
          )
          return yield* Effect.raceFirst(Deferred.await(response), Effect.zipRight(Fiber.join(writer), Effect.never))
        })
      )

    const bidi = <E, R>(
      name: string,
      requests: Stream.Stream<unknown, E, R>,
      callOptions?: StreamCallOptions<unknown>
    ) =>
      PullStream.unwrapScoped(
        Effect.gen(function* () {
          const [metadata, opts] = yield* prepare(callOptions)
          const method = methodOf(name)
          const isLast = callOptions?.isLast
          let tookLast: (() => boolean) | undefined
          const call = yield* acquireCall(
            () =>
              client.makeBidiStreamRequest(
                method.path,
                method.requestSerialize,
                method.responseDeserialize,
                metadata,
                opts
              ),
            isLast === undefined ? undefined : () => tookLast?.() === true
          )
          const reader = yield* makeReader<unknown, GrpcStatusError | E>(call, fromUnknown, streamClosed, isLast)
          tookLast = reader.tookLast
          // One writer fiber per call; the responses are read by the consumer's own pulls (no per-message merge).
          // A failed request stream cancels the call at once and fails the responses with its cause; the writer
          // is interrupted when the responses end (server status) or the consumer stops.
          yield* writeAll(call, requests).pipe(
            Effect.zipRight(Effect.sync(() => call.end())),
            Effect.catchAllCause((cause) =>
              Effect.sync(() => {
                if (Cause.isInterruptedOnly(cause)) return
                reader.abort(cause)
                call.cancel()
              })
            ),
            Effect.forkScoped
          )
          return reader.stream
        })
      )

    const bidiChannel = (name: string, callOptions?: CallOptions) =>
      Effect.gen(function* () {
        const [metadata, opts] = yield* prepare(callOptions)
        const method = methodOf(name)
        const call = yield* acquireCall(() =>
          client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, metadata, opts)
        )
        let status: grpc.StatusObject | undefined
        let halfClosed = false
        call.on("status", (s: grpc.StatusObject) => {
          status = s
        })
        const closedError = () =>
          status !== undefined && status.code !== grpc.status.OK
            ? fromUnknown(status)
            : new GrpcStatusError({
                code: grpc.status.FAILED_PRECONDITION,
                details: halfClosed ? "stream already half-closed" : "stream already closed"
              })
        const lock = yield* Effect.makeSemaphore(1)
        // Sends inside the lock: waiting for it, or for `drain` while holding it.
        let queued = 0
        const inLock = <E>(effect: Effect.Effect<void, E>) => {
          queued++
          return Effect.ensuring(
            lock.withPermits(1)(effect),
            Effect.sync(() => {
              queued--
            })
          )
        }
        const closed = () => halfClosed || status !== undefined || call.destroyed || call.writableEnded
        const locked = (request: unknown) =>
          inLock(
            Effect.suspend(() =>
              closed()
                ? Effect.fail(closedError())
                : call.write(request, callbackFor(request))
                  ? Effect.void
                  : awaitDrain(call)
            )
          )
        const channel: BidiChannel<unknown, unknown> = {
          // With nobody queued and room in grpc-js's buffer, a send is one plain write (a keystroke's echo, every
          // output message of an agent): no lock to take and give back. A write that fills the buffer waits for
          // `drain` holding the lock, so later sends queue behind it as before. Concurrent sends have no order among
          // themselves either way.
          send: (request) =>
            Effect.suspend(() => {
              if (queued > 0 || call.writableNeedDrain) return locked(request)
              if (closed()) return Effect.fail(closedError())
              return call.write(request, callbackFor(request)) ? Effect.void : inLock(awaitDrain(call))
            }),
          end: lock.withPermits(1)(
            Effect.sync(() => {
              if (halfClosed) return
              halfClosed = true
              call.end()
            })
          ),
          responses: responsesOf(call)
        }
        return channel
      })

    const waitForReady = (deadline: Duration.DurationInput) =>
      Effect.async<void, GrpcStatusError>((resume) => {
        try {
          client.waitForReady(wallClockIn(deadline), (error) =>
            resume(
              error
                ? Effect.fail(
                    new GrpcStatusError({
                      code: grpc.status.UNAVAILABLE,
                      details: `${options.address} not ready: ${error.message}`
                    })
                  )
                : Effect.void
            )
          )
        } catch (error) {
          resume(Effect.fail(startFailed(error)))
        }
      })

    // Method names and message types are checked by `GrpcClient<S>`'s signatures; the implementation is untyped.
    return { unary, serverStream, clientStream, bidi, bidiChannel, waitForReady, raw: client } as any as GrpcClient<S>
  })
