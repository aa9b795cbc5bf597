/**
 * The machinery behind `GrpcServer`: turns Effect handlers into grpc-js handlers run on a captured runtime, binds
 * the server and shuts it down in stages.
 */
import * as grpc from "@grpc/grpc-js"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberSet from "effect/FiberSet"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { CallContext } from "../GrpcServer.js"
import { GrpcStatusError, fromUnknown, metadataToRecord, toStatusObject } from "../GrpcStatusError.js"
import { makeReader, type Reader, sleepReal, writeAll } from "./nodeStream.js"

/** Forks an effect on the server's runtime; its fibers are interrupted when the server shuts down. */
export type Run<R> = <A, E>(effect: Effect.Effect<A, E, R>) => Fiber.RuntimeFiber<A, E>

type AnyHandler<R> = (
  input: unknown,
  ctx: CallContext
) => Effect.Effect<unknown, GrpcStatusError, R> | Stream.Stream<unknown, GrpcStatusError, R>

type ServerCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>

const internalError = () => new GrpcStatusError({ code: grpc.status.INTERNAL, details: "internal error" })

const callClosed = () => new GrpcStatusError({ code: grpc.status.CANCELLED, details: "call closed" })

/** Keeps typed failures and interruption; turns defects into a generic INTERNAL after logging them. */
const sanitize =
  (path: string) =>
  (cause: Cause.Cause<GrpcStatusError>): Effect.Effect<never, GrpcStatusError> => {
    if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure) && failure.value instanceof GrpcStatusError) return Effect.fail(failure.value)
    return Effect.logError("gRPC handler died", cause).pipe(
      Effect.annotateLogs("grpc.path", path),
      Effect.zipRight(Effect.fail(internalError()))
    )
  }

/** The status a client gets for a handler that did not succeed. */
const statusOf = (cause: Cause.Cause<GrpcStatusError>, call: ServerCall): GrpcStatusError =>
  Option.getOrElse(Cause.failureOption(cause), () =>
    call.cancelled
      ? new GrpcStatusError({ code: grpc.status.CANCELLED, details: "cancelled by client" })
      : new GrpcStatusError({ code: grpc.status.UNAVAILABLE, details: "server is shutting down" })
  )

/**
 * A call's context. What a handler may ask of its call is made when it asks (most ask for the metadata only): a
 * long-lived call, such as an agent's connection, keeps its context for its life.
 */
class ServerCallContext implements CallContext {
  readonly path: string
  readonly rawMetadata: grpc.Metadata
  #metadata: Readonly<Record<string, string>> | undefined
  #cancelled: Deferred.Deferred<void> | undefined
  constructor(
    private readonly call: ServerCall,
    readonly abort: (status: GrpcStatusError) => void
  ) {
    this.path = call.getPath()
    this.rawMetadata = call.metadata
  }
  get peer(): string {
    return this.call.getPeer()
  }
  get metadata(): Readonly<Record<string, string>> {
    return (this.#metadata ??= metadataToRecord(this.call.metadata))
  }
  get deadline(): grpc.Deadline {
    return this.call.getDeadline()
  }
  get cancelled(): Effect.Effect<void> {
    if (this.call.cancelled) return Effect.void
    this.#cancelled ??= Deferred.unsafeMake<void>(FiberId.none)
    return Deferred.await(this.#cancelled)
  }
  get isCancelled(): Effect.Effect<boolean> {
    return Effect.sync(() => this.call.cancelled)
  }
  /** The client cancelled: whoever awaits `cancelled` goes on. */
  markCancelled(): void {
    if (this.#cancelled !== undefined) Deferred.unsafeDone(this.#cancelled, Exit.void)
  }
}

/**
 * Runs one call's effect on `run`: builds its context, interrupts it when the client cancels (or `ctx.abort`), and
 * hands its exit to `respond` (also after interruption).
 */
const runCall = <A, R>(
  run: Run<R>,
  call: ServerCall,
  body: (ctx: CallContext) => Effect.Effect<A, GrpcStatusError, R>,
  respond: (exit: Exit.Exit<A, GrpcStatusError>) => void
): void => {
  let fiber: Fiber.RuntimeFiber<A, GrpcStatusError> | undefined
  let aborted: GrpcStatusError | undefined
  const ctx = new ServerCallContext(call, (status) => {
    if (aborted !== undefined) return
    aborted = status
    fiber?.unsafeInterruptAsFork(FiberId.none)
  })
  const path = ctx.path
  // A handler interrupted by `abort` answers the status it was given (unless the client cancelled meanwhile).
  const answer = (exit: Exit.Exit<A, GrpcStatusError>) =>
    aborted !== undefined && Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
      ? respond(Exit.fail(aborted))
      : respond(exit)
  // The annotation is set on the call's own fiber, not by `Effect.annotateLogs` around the handler: nothing runs on
  // this fiber after the handler, so there is nothing to restore, and no frames stay on a long-lived call's stack.
  fiber = run(
    Effect.zipRight(
      FiberRef.update(FiberRef.currentLogAnnotations, HashMap.set("grpc.path", path as unknown)),
      Effect.catchAllCause(
        Effect.suspend(() => body(ctx)),
        sanitize(path)
      )
    )
  )
  const started = fiber
  const onCancelled = () => {
    ctx.markCancelled()
    started.unsafeInterruptAsFork(FiberId.none)
  }
  // An observer, not an `Effect.onExit` around the handler: no frames on the stack of a long-lived call's fiber.
  // grpc-js emits `cancelled` whenever the call's stream closes, also after the status went out: once the handler
  // is done, that is no cancellation. Interrupting the finished fiber was work on every call (a message through
  // the fiber's queue, the interruption merged into its cause): ~3% of a short call's CPU in
  // `bench/grpc-micro.mjs` with `MICRO_KIND=calls`.
  started.addObserver((exit) => {
    ;(call as NodeJS.EventEmitter).off("cancelled", onCancelled)
    answer(exit)
  })
  if (aborted !== undefined) started.unsafeInterruptAsFork(FiberId.none)
  if (call.cancelled) onCancelled()
  else (call as NodeJS.EventEmitter).once("cancelled", onCancelled)
}

const respondUnary =
  (call: ServerCall, callback: grpc.sendUnaryData<unknown>) =>
  (exit: Exit.Exit<unknown, GrpcStatusError>): void => {
    if (Exit.isSuccess(exit)) callback(null, exit.value)
    else callback(toStatusObject(statusOf(exit.cause, call)))
  }

const respondStream =
  (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) =>
  (exit: Exit.Exit<unknown, GrpcStatusError>): void => {
    if (call.cancelled || call.destroyed) return
    // A status object emitted as `error` becomes the call's final status (see grpc-js server-call.ts).
    if (Exit.isSuccess(exit)) call.end()
    else call.emit("error", toStatusObject(statusOf(exit.cause, call)))
  }

/**
 * Runs `body` with the call's requests as a stream, read for the life of the handler: the reader is made in the
 * handler's scope, not by a `Stream.unwrapScoped` stage around it (a stage that held a channel executor and a
 * subexecutor for the whole call; on a long-lived call, such as an agent's connection, that is per connection).
 */
const withRequests = <A, R>(
  call: grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  body: (
    requests: Stream.Stream<unknown, GrpcStatusError>,
    reader: Reader<unknown, GrpcStatusError>
  ) => Effect.Effect<A, GrpcStatusError, R>
): Effect.Effect<A, GrpcStatusError, Exclude<R, Scope.Scope>> =>
  withCallScope(
    Effect.flatMap(makeReader<unknown, GrpcStatusError>(call, fromUnknown, callClosed), (reader) =>
      body(reader.stream, reader)
    )
  )

/**
 * `Effect.scoped` for a call's handler on the call's own fiber: the scope goes into the fiber's context for good
 * (nothing runs on this fiber after the handler) instead of being provided around it, and what the handler writes
 * may use it too (`writeAll`'s `inCallScope`). `Effect.scoped`'s frames (and those of a second scope for the
 * responses) stayed on the stack of a long-lived call for its whole life: an agent's connection held ~15 of them.
 */
const withCallScope = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.onExit(
      Effect.zipRight(
        FiberRef.update(FiberRef.currentContext, Context.add(Scope.Scope, scope)),
        effect as Effect.Effect<A, E, Exclude<R, Scope.Scope>>
      ),
      (exit) => Scope.close(scope, exit)
    )
  )

/** A pushed response stream has ended: its handler's reading of the requests ends too (the call is over). */
const stopReading = (reader: Reader<unknown, GrpcStatusError>) => () => reader.abort(responsesEnded())

/**
 * The one cause `stopReading` ends a call's requests with, made once: its reader drops it (a handler reading on
 * takes it as the end of the requests), and making a `GrpcStatusError` checks its fields (~45 µs), which every
 * forwarded call paid at its end.
 */
let responsesEndedCause: Cause.Cause<GrpcStatusError> | undefined
const responsesEnded = () => (responsesEndedCause ??= Cause.fail(callClosed()))

/** Builds the grpc-js implementation of one service from its Effect handlers. */
export const implement = <R>(
  definition: grpc.ServiceDefinition,
  handlers: Readonly<Record<string, AnyHandler<R>>>,
  run: Run<R>
): grpc.UntypedServiceImplementation => {
  const implementation: grpc.UntypedServiceImplementation = {}
  for (const [name, method] of Object.entries(definition)) {
    const handler = handlers[name]
    if (handler === undefined) continue
    const asEffect = handler as (input: unknown, ctx: CallContext) => Effect.Effect<unknown, GrpcStatusError, R>
    const asStream = handler as (input: unknown, ctx: CallContext) => Stream.Stream<unknown, GrpcStatusError, R>
    if (!method.requestStream && !method.responseStream) {
      implementation[name] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        runCall(run, call, (ctx) => asEffect(call.request, ctx), respondUnary(call, callback))) as grpc.handleUnaryCall<
        unknown,
        unknown
      >
    } else if (!method.requestStream && method.responseStream) {
      implementation[name] = ((call: grpc.ServerWritableStream<unknown, unknown>) =>
        runCall(
          run,
          call,
          (ctx) => writeAll(call, asStream(call.request, ctx)),
          respondStream(call)
        )) as grpc.handleServerStreamingCall<unknown, unknown>
    } else if (method.requestStream && !method.responseStream) {
      implementation[name] = ((
        call: grpc.ServerReadableStream<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>
      ) =>
        runCall(
          run,
          call,
          (ctx) => withRequests(call, (requests) => asEffect(requests, ctx)),
          respondUnary(call, callback)
        )) as grpc.handleClientStreamingCall<unknown, unknown>
    } else {
      implementation[name] = ((call: grpc.ServerDuplexStream<unknown, unknown>) =>
        runCall(
          run,
          call,
          (ctx) =>
            withRequests(call, (requests, reader) =>
              writeAll(call, asStream(requests, ctx), stopReading(reader), true)
            ),
          respondStream(call)
        )) as grpc.handleBidiStreamingCall<unknown, unknown>
    }
  }
  return implementation
}

/** `bindAsync` as an Effect: the bound port, or grpc-js's error. */
export const bind = (
  server: grpc.Server,
  address: string,
  credentials: grpc.ServerCredentials
): Effect.Effect<number, Error> =>
  Effect.async<number, Error>((resume) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error) resume(Effect.fail(error))
      else resume(Effect.succeed(port))
    })
  })

/**
 * Shuts down in stages: stop accepting and let in-flight calls finish (up to `timeoutMillis`), then interrupt the
 * handlers still running (their clients get UNAVAILABLE), give those statuses a moment to leave, and finally force
 * the remaining connections closed. Timers are real, so this also completes under a TestClock.
 */
export const shutdown = (
  server: grpc.Server,
  fibers: FiberSet.FiberSet<unknown, unknown>,
  timeoutMillis: number
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const drained = yield* Deferred.make<void>()
    server.tryShutdown(() => Deferred.unsafeDone(drained, Exit.void))
    // Finalizers run uninterruptibly; the races must still be able to interrupt their losers.
    yield* Effect.interruptible(Effect.raceFirst(Deferred.await(drained), sleepReal(timeoutMillis)))
    yield* FiberSet.clear(fibers)
    yield* Effect.interruptible(Effect.raceFirst(Deferred.await(drained), sleepReal(Math.min(timeoutMillis, 250))))
  }).pipe(Effect.ensuring(Effect.sync(() => server.forceShutdown())))
