/**
 * Bridges between grpc-js call objects (Node object-mode streams) and Effect: pull-based reads and writes that
 * wait for `drain`. Shared by the server and the client side.
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Readable, Writable } from "node:stream"
import { callbackFor } from "../GrpcWritten.js"
import * as GrpcPassthrough from "../GrpcPassthrough.js"
import * as PullStream from "../PullStream.js"

/** Swallows an `error` event so that an event nobody reads any more cannot crash the process. */
export const ignoreError = (): void => {}

const maxChunk = 64

const end = PullStream.end

/** A stream over a Readable, and a way to fail it from outside (e.g. when the other half of a call broke). */
export interface Reader<A, E> {
  readonly stream: Stream.Stream<A, E>
  /**
   * Fails the stream with `cause` once the messages already buffered are delivered; wakes a waiting pull. The
   * first failure wins: a later `error` event of the Readable is ignored.
   */
  readonly abort: (cause: Cause.Cause<E>) => void
  /** Whether a message `isLast` called final has been taken from the Readable. */
  readonly tookLast: () => boolean
}

/**
 * Reads an object-mode Readable on demand: each pull takes what is buffered (or waits for `readable`), so the
 * Readable only asks grpc-js for more messages (`_read`) while the consumer keeps pulling. Messages buffered before
 * an `error` are delivered first, then the stream fails with `onError`. A Readable destroyed before `end` fails the
 * stream with `onClose`. Listeners stay attached for the scope (a no-op `error` listener is left behind).
 */
export const makeReader = <A, E>(
  readable: Readable,
  onError: (error: unknown) => E,
  onClose: () => E,
  isLast?: (message: A) => boolean
): Effect.Effect<Reader<A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    let tookLast = false
    let ended = false
    let closed = false
    let failure: Cause.Cause<E> | undefined
    let wake: (() => void) | undefined
    const signal = () => {
      const f = wake
      wake = undefined
      f?.()
    }
    const onReadable = () => signal()
    const onEnd = () => {
      ended = true
      signal()
    }
    const onErr = (error: unknown) => {
      if (failure === undefined) failure = Cause.fail(onError(error))
      signal()
    }
    const onCloseEvent = () => {
      closed = true
      signal()
    }
    // The listeners go with the scope: added to it directly (`Effect.acquireRelease` would also keep a copy of the
    // fiber's refs for the release, per reader for the life of the call).
    const scope = yield* Effect.scope
    yield* Effect.uninterruptible(
      Effect.suspend(() => {
        readable.on("readable", onReadable)
        readable.on("end", onEnd)
        readable.on("error", onErr)
        readable.on("close", onCloseEvent)
        return Scope.addFinalizer(
          scope,
          Effect.sync(() => {
            readable.on("error", ignoreError)
            readable.off("readable", onReadable)
            readable.off("end", onEnd)
            readable.off("error", onErr)
            readable.off("close", onCloseEvent)
          })
        )
      })
    )

    // One attempt: a chunk, the end, a failure, or `undefined` for nothing to report yet.
    const attempt = (): PullStream.Pull<A, E> | undefined => {
      const values: Array<A> = []
      while (values.length < maxChunk) {
        const value = readable.read()
        if (value === null) break
        values.push(value as A)
        if (isLast !== undefined && isLast(value as A)) tookLast = true
      }
      if (values.length > 0) return Effect.succeed(Chunk.unsafeFromArray(values))
      if (failure !== undefined) return Effect.failCause(Cause.map(failure, Option.some))
      if (ended || readable.readableEnded) return end
      if (closed || readable.destroyed) return Effect.fail(Option.some(onClose()))
      return undefined
    }

    // Messages already buffered are taken without suspending the fiber; one pull per chunk, no stream stage.
    const pull = PullStream.parking(attempt, (f) => {
      wake = f
    })
    return {
      stream: PullStream.fromPull(() => pull),
      abort: (cause) => {
        if (failure === undefined) failure = cause
        signal()
      },
      tookLast: () => tookLast
    }
  })

/** `makeReader`'s stream, for the lifetime of the stream. */
export const fromReadable = <A, E>(
  readable: Readable,
  onError: (error: unknown) => E,
  onClose: () => E,
  isLast?: (message: A) => boolean
): Stream.Stream<A, E> =>
  PullStream.unwrapScoped(Effect.map(makeReader<A, E>(readable, onError, onClose, isLast), (reader) => reader.stream))

/**
 * Waits until `writable` can take more (`drain`) or will never take more (`close`, `error`, `finish`). Returns at
 * once when it no longer needs a drain: `drain` may have fired between the `write()` and this registration.
 */
export const awaitDrain = (writable: Writable): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (!writable.writableNeedDrain || writable.destroyed || writable.writableFinished) return resume(Effect.void)
    const events = ["drain", "close", "error", "finish"] as const
    const detach = () => {
      for (const event of events) writable.off(event, done)
    }
    const done = () => {
      detach()
      resume(Effect.void)
    }
    for (const event of events) writable.on(event, done)
    return Effect.sync(detach)
  })

/**
 * Writes `values` from `start` on, waiting for `drain` whenever grpc-js reports its buffer full. Plain code per
 * message: an Effect is only built to wait. `false` when the writable stopped accepting writes.
 */
const writeFrom = (writable: Writable, values: ReadonlyArray<unknown>, start: number): Effect.Effect<boolean> => {
  for (let i = start; i < values.length; i++) {
    if (writable.destroyed || writable.writableEnded) return Effect.succeed(false)
    if (!writable.write(values[i], callbackFor(values[i])))
      return Effect.flatMap(awaitDrain(writable), () => writeFrom(writable, values, i + 1))
  }
  return Effect.succeed(true)
}

/**
 * Writes the messages of `stream` in order, with backpressure, until it ends or `writable` stops accepting writes.
 * Does not end the writable. A plain loop over the stream's pull on the caller's fiber: `Stream.run` would run the
 * stream on a fiber of its own (and a sink channel), held for the life of the call — per connection, on a
 * long-lived call such as an agent's. Tail-safe: a written message is garbage once grpc-js has sent it, however
 * long the stream runs (`Stream.runForEachWhile` nested one frame per element and so kept every message of a
 * long-lived call reachable until the call ended). With `inCallScope` the stream's resources are released with the
 * server call's Scope, which the caller's fiber has in its context (`withCallScope` in `server.ts`), not a scope of
 * its own.
 */
export const writeAll = <A, E, R>(
  writable: Writable,
  stream: Stream.Stream<A, E, R>,
  onEnd?: () => void,
  inCallScope = false
): Effect.Effect<void, E, R> => {
  const push = PullStream.pushOf(stream)
  if (push !== undefined) return writePushed(writable, push, onEnd, inCallScope)
  const write = writeIn(writable, stream, onEnd)
  return inCallScope ? inScope(write) : Effect.scoped(write)
}

/**
 * `writeAll` in the scope the fiber has. A stream made by `PullStream.unwrapScoped` is made first, and the stream it
 * gives written by its own kind: a pushed one as its producer writes (a forwarded call's answers, made after the
 * call's setup), any other by its pull.
 */
const writeIn = <A, E, R>(
  writable: Writable,
  stream: Stream.Stream<A, E, R>,
  onEnd: (() => void) | undefined
): Effect.Effect<void, E, R | Scope.Scope> => {
  const passthrough = GrpcPassthrough.passthroughOf(stream)
  const downstream = passthrough === undefined ? undefined : GrpcPassthrough.downstreamOf(writable)
  if (downstream !== undefined)
    return passthrough!({
      downstream,
      write: (inner) => writeIn(writable, inner, onEnd),
      stopInput: () => onEnd?.()
    }) as Effect.Effect<void, E, R | Scope.Scope>
  const unwrap = PullStream.unwrapOf(stream)
  if (unwrap !== undefined) return Effect.flatMap(unwrap, (inner) => writeIn(writable, inner, onEnd))
  const push = PullStream.pushOf(stream)
  if (push !== undefined) return writePushed(writable, push, onEnd, true)
  return Effect.flatMap(PullStream.toPull(stream), (pull) =>
    PullStream.forEachChunkOfPull(pull, (chunk) => writeFrom(writable, Chunk.toReadonlyArray(chunk), 0))
  )
}

/**
 * `effect` run in the Scope its fiber already has: a server call's own, which the caller vouches is in the
 * context and closed as the call ends (`withCallScope` in `server.ts`). A scope of its own would keep its frames on
 * the stack of a long-lived call (an agent's connection) for the call's whole life.
 */
const inScope = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
  effect as Effect.Effect<A, E, Exclude<R, Scope.Scope>>

/** Calls `f` once `writable` can take more, or never will (`drain`, `close`, `error`, `finish`). */
const whenReady = (writable: Writable, f: () => void): void => {
  if (!writable.writableNeedDrain || writable.destroyed || writable.writableFinished) {
    queueMicrotask(f)
    return
  }
  const events = ["drain", "close", "error", "finish"] as const
  const done = () => {
    for (const event of events) writable.off(event, done)
    f()
  }
  for (const event of events) writable.on(event, done)
}

/**
 * A pushed stream (`PullStream.fromPush`) written as its producer writes: its effect runs on the caller's fiber and
 * every message goes to `writable` from whichever fiber sends it, so no fiber waits for the next message. The
 * first `sink.end` decides how the stream ends; `onEnd` is then called (the server stops the call's requests, so
 * that a producer reading them returns).
 */
const writePushed = <A, E, R>(
  writable: Writable,
  push: PullStream.Push<A, E, R>,
  onEnd: (() => void) | undefined,
  inCallScope: boolean
): Effect.Effect<void, E, R> =>
  Effect.suspend(() => {
    const written = writingSink<A, E>(writable, onEnd)
    const run = PullStream.runOnce(push(written.sink))
    return Effect.flatMap(inCallScope ? inScope(run) : Effect.scoped(run), written.result)
  })

/**
 * The sink of `writePushed` and how the writing ends (the first `sink.end` decides). Made apart from it, so that
 * what stays for the producer's run (the sink, the continuation after it) does not keep the producer's own
 * closure, and with it everything the producer's setup held (on an agent's connection, for the connection's life).
 */
const writingSink = <A, E>(writable: Writable, onEnd: (() => void) | undefined) => {
  let ending: PullStream.Pull<A, E> | undefined
  const sink: PullStream.Sink<A, E> = {
    write: (a) => (writable.destroyed || writable.writableEnded ? true : writable.write(a, callbackFor(a))),
    ready: (f) => whenReady(writable, f),
    end: (e) => {
      if (ending !== undefined) return
      ending = e
      onEnd?.()
    }
  }
  const result = (): Effect.Effect<void, E> =>
    ending === undefined
      ? Effect.void
      : Effect.catchAll(Effect.asVoid(ending), (e) => (Option.isSome(e) ? Effect.fail(e.value) : Effect.void))
  return { sink, result }
}

/** Sleeps on a real timer, so shutdown deadlines also pass under a TestClock. */
export const sleepReal = (millis: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })
