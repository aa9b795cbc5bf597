/**
 * Streams that can be read without a channel executor. Every stage of an Effect `Stream` (`unwrapScoped`, `concat`,
 * `mapError`, `fromChannel`, the loop of `runForEach`) is run by a channel executor: set up and torn down on every
 * call, and passed by every element. On the relay's calls that was most of the work: an exec went through six such
 * stages, and the relay's ~1,700 runtime steps per exec fell to ~500 once they were gone (a keystroke's, ~210 to
 * ~100).
 *
 * A stream made here carries how to open it: an effect, run in the reader's scope, that gives its pull. The readers
 * that know the mark (`toPull`, `runForEach`, the gRPC bridge's writer and the combinators below) take that pull
 * and call it directly; any other reader sees an ordinary `Stream` (the same opening, through
 * `Stream.unwrapScoped`), so a marked stream may go anywhere a stream goes. Every stream the combinators make is
 * marked; an unmarked input (a caller's own `Stream`) is read through its own `Stream.toPull`, with no stage around
 * it.
 *
 * A pull, as in `Stream.toPull`: a chunk, or `None` at the end, or `Some(e)` on failure. Once it has ended or failed
 * it must keep doing so.
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Exit from "effect/Exit"
import * as GrpcPassthrough from "./GrpcPassthrough.js"
import { parking } from "./ParkingPull.js"

/** One step of a stream: a chunk, its end (`None`) or its failure. */
export type Pull<A, E, R = never> = Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, R>

/**
 * A pull's end. An `Exit`, not `Effect.fail(Option.none())`: failing with an object wraps it, on every run, in a
 * proxy carrying the fiber's current span (for a failure's trace), one more runtime step and an allocation for
 * every stream that ends — four an exec on the relay — and nothing reads a span from an end.
 */
export const end: Effect.Effect<never, Option.Option<never>> = Exit.fail(Option.none())

/** How a marked stream is opened: in the reader's scope, its pull (a failure here is the stream's failure). */
export type Open<A, E, R> = Effect.Effect<Pull<A, E, R>, E, R | Scope.Scope>

const OpenKey: unique symbol = Symbol.for("@cmdop/grpc/PullStream/open")

interface Marked<A, E, R> {
  readonly [OpenKey]: Open<A, E, R>
}

/** The opening a stream was marked with, if any. */
const openOf = <A, E, R>(stream: Stream.Stream<A, E, R>): Open<A, E, R> | undefined =>
  (stream as unknown as Partial<Marked<A, E, R>>)[OpenKey]

/**
 * A `Stream` whose channel is built the first time something asks for it: the readers that know the mark never do,
 * and building it (an `unwrapScoped` stage: a dozen closures and effects) for every marked stream cost every exec
 * call's streams some CPU, and every idle agent connection ~2 KiB for two streams nothing reads as a `Stream`.
 */
class LazyStream {
  #build: () => unknown
  #built: { readonly channel: unknown } | undefined
  constructor(build: () => unknown) {
    for (const key of streamOwnKeys) (this as Record<PropertyKey, unknown>)[key] = streamFields[key]
    this.#build = build
  }
  get channel(): unknown {
    return (this.#built ??= this.#build() as { readonly channel: unknown }).channel
  }
}

/** What every `Stream` is made of (Effect's `StreamImpl`): its prototype and its own fields but the channel. */
const streamFields = Stream.empty as unknown as Record<PropertyKey, unknown>
const streamOwnKeys = Reflect.ownKeys(Stream.empty).filter((key) => key !== "channel")
Object.setPrototypeOf(LazyStream.prototype, Object.getPrototypeOf(Stream.empty))

const lazyStream = <A, E, R>(build: () => Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
  new LazyStream(build) as unknown as Stream.Stream<A, E, R>

/** A stream read by `open`'s pull; opened (in the reader's scope) when it is read. */
export const fromOpen = <A, E, R>(open: Open<A, E, R>): Stream.Stream<A, E, Exclude<R, Scope.Scope>> => {
  const stream = lazyStream(() => Stream.unwrapScoped(Effect.map(open, (pull) => Stream.repeatEffectChunkOption(pull))))
  return Object.assign(stream, { [OpenKey]: open }) as Stream.Stream<A, E, Exclude<R, Scope.Scope>>
}

/** A stream read by `pull` (made afresh for each reader by `make`). */
export const fromPull = <A, E>(make: () => Pull<A, E>): Stream.Stream<A, E> =>
  fromOpen(Effect.sync(make)) as Stream.Stream<A, E>

const failed = <A, E>(e: E): Pull<A, E> => Effect.fail(Option.some(e))

/**
 * The pull of `stream` for the life of the scope, as `Stream.toPull`; a marked stream is opened here, at once, and
 * a failure to open is the pull's first answer.
 */
export const toPull = <A, E, R>(
  stream: Stream.Stream<A, E, R>
): Effect.Effect<Pull<A, E, R>, never, Scope.Scope | R> => {
  const open = openOf(stream)
  if (open === undefined) return Stream.toPull(stream)
  return Effect.catchAll(open, (e) => Effect.succeed<Pull<A, E, R>>(failed(e)))
}

/**
 * How to open `stream` inside another opening: a marked stream's own (its failure is the caller's failure, with no
 * wrapper of its own), an ordinary one's `Stream.toPull`.
 */
const openPull = <A, E, R>(stream: Stream.Stream<A, E, R>): Open<A, E, R> => openOf(stream) ?? Stream.toPull(stream)

// Pulls of producers that call back (Node streams, plain FIFOs): `ParkingPull.ts`.
export { parking, withDeadline } from "./ParkingPull.js"

const UnwrapKey: unique symbol = Symbol.for("@cmdop/grpc/PullStream/unwrap")

/** How a stream made by `unwrapScoped` is made: in the reader's scope, the stream it reads. */
export type Unwrap<A, E, R> = Effect.Effect<Stream.Stream<A, E, R>, E, R | Scope.Scope>

/**
 * The effect a stream was made of by `unwrapScoped`, if any. A reader that knows it (the gRPC bridge's writer) runs
 * it and reads the stream it gives by that stream's own kind: a pushed stream (`fromPush`) made after a call's
 * setup — a forwarded call's answers — is then written as its producer writes, not pulled through a buffer.
 */
export const unwrapOf = <A, E, R>(stream: Stream.Stream<A, E, R>): Unwrap<A, E, R> | undefined =>
  (stream as unknown as { readonly [UnwrapKey]?: Unwrap<A, E, R> })[UnwrapKey]

/** `Stream.unwrapScoped`: the stream `effect` makes, opened in the same scope as `effect` ran in. */
export const unwrapScoped = <A, E, R, E2, R2>(
  effect: Effect.Effect<Stream.Stream<A, E, R>, E2, R2>
): Stream.Stream<A, E | E2, Exclude<R | R2, Scope.Scope>> =>
  Object.assign(fromOpen<A, E | E2, R | R2>(Effect.flatMap(effect, (stream) => openPull<A, E | E2, R>(stream))), {
    [UnwrapKey]: effect
  }) as Stream.Stream<A, E | E2, Exclude<R | R2, Scope.Scope>>

/** `Stream.mapError`. */
export const mapError = <A, E, R, E2>(stream: Stream.Stream<A, E, R>, f: (e: E) => E2): Stream.Stream<A, E2, R> => {
  // A stream a gRPC writer may pass through keeps that: what it writes that way fails with statuses already.
  const passthrough = GrpcPassthrough.passthroughOf(stream)
  if (passthrough !== undefined) return GrpcPassthrough.withDownstream(mapErrorOf(stream, f), passthrough)
  return mapErrorOf(stream, f)
}

const mapErrorOf = <A, E, R, E2>(stream: Stream.Stream<A, E, R>, f: (e: E) => E2): Stream.Stream<A, E2, R> => {
  const mapOption = Option.map(f)
  // A pushed stream stays pushed (its reader may then run it without a fiber of its own), and an unwrapped one
  // unwrapped (its reader may then find a pushed stream, or one to pass through, inside).
  const unwrap = unwrapOf(stream)
  if (unwrap !== undefined)
    return unwrapScoped(
      Effect.mapBoth(unwrap, { onFailure: f, onSuccess: (inner) => mapError(inner, f) })
    ) as Stream.Stream<A, E2, R>
  const push = pushOf(stream)
  if (push !== undefined)
    return fromPush<A, E2, R>((sink) =>
      Effect.mapError(runOnce(push(mappedSink(sink, mapOption))), f)
    ) as Stream.Stream<A, E2, R>
  return fromOpen<A, E2, R>(
    Effect.mapBoth(openPull(stream), { onFailure: f, onSuccess: (pull) => Effect.mapError(pull, mapOption) })
  )
}

/**
 * `effect`, let go of once it starts. A producer's effect runs as long as its stream (an agent's connection, for
 * its life), and whatever wraps it keeps it on the fiber's stack (`Effect.mapError` around it, the writer's step
 * after it) meanwhile: the effect as built, with the closures of its setup and everything they hold (the call's
 * handshake, its credential check, its request stream). Started through this, the stack holds only what is still
 * to run.
 */
export const runOnce = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  let pending: Effect.Effect<A, E, R> | undefined = effect
  return Effect.suspend(() => {
    const start = pending ?? Effect.dieMessage("PullStream.runOnce: run twice")
    pending = undefined
    return start
  })
}

/**
 * `sink` taking an ending whose failure is mapped. Made apart from `mapError`: the producer keeps the sink for as
 * long as it runs (an agent's connection, for its life), and a closure made there would keep the stream it maps
 * (and whatever that holds, such as the call's handshake) as long.
 */
const mappedSink = <A, E, E2>(
  sink: Sink<A, E2>,
  mapOption: (e: Option.Option<E>) => Option.Option<E2>
): Sink<A, E> => ({
  write: sink.write,
  ready: sink.ready,
  end: (ending) => sink.end(Effect.mapError(ending, mapOption))
})

/** `head`, then `stream` (opened once `head` was taken): `Stream.concat(Stream.succeed(head), stream)`. */
export const prepend = <A, E, R>(head: A, stream: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
  fromOpen<A, E, R>(
    Effect.map(Effect.scope, (scope) => {
      let rest: Pull<A, E, R> | undefined
      let taken = false
      const openRest = Effect.flatMap(Effect.mapError(Scope.extend(openPull(stream), scope), Option.some), (pull) => {
        rest = pull
        return pull
      })
      return Effect.suspend(() => {
        if (rest !== undefined) return rest
        if (taken) return openRest
        taken = true
        return Effect.succeed(Chunk.of(head))
      })
    })
  )

/**
 * Runs `f` for each element of `stream` in order, on the caller's fiber, until the stream ends (or fails, or `f`
 * fails): `Stream.runForEach`, as a plain loop over the stream's pull.
 */
export const runForEach = <A, E, R, E2, R2>(
  stream: Stream.Stream<A, E, R>,
  f: (a: A) => Effect.Effect<void, E2, R2>
): Effect.Effect<void, E | E2, R | R2> => runForEachChunk(stream, (chunk) => eachOf(chunk, f))

/** `f` for each element of `chunk`, in order; a chunk of one without a loop (gRPC delivers messages one by one). */
export const eachOf = <A, E, R>(
  chunk: Chunk.Chunk<A>,
  f: (a: A) => Effect.Effect<void, E, R>
): Effect.Effect<void, E, R> => {
  const size = Chunk.size(chunk)
  if (size === 1) return f(Chunk.unsafeHead(chunk))
  if (size === 0) return Effect.void
  const all = Chunk.toReadonlyArray(chunk)
  let i = 0
  return Effect.whileLoop({ while: () => i < all.length, body: () => f(all[i++]!), step: () => {} })
}

/**
 * Runs `f` for each chunk of `stream` in order, on the caller's fiber, until the stream ends (or fails, or `f`
 * fails): `Stream.runForEachChunk`, as a plain loop over the stream's pull.
 */
export const runForEachChunk = <A, E, R, E2, R2>(
  stream: Stream.Stream<A, E, R>,
  f: (chunk: Chunk.Chunk<A>) => Effect.Effect<void, E2, R2>
): Effect.Effect<void, E | E2, R | R2> =>
  // The stream's resources live in a scope of its own, closed when the loop ends; `f` runs in the caller's context
  // (its own scope, if it asks for one, is the caller's: as with `Stream.runForEach`).
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.onExit(
      Effect.flatMap(Scope.extend(openPull(stream), scope), (pull) => forEachChunkOfPull(pull, f)),
      (exit) => Scope.close(scope, exit)
    )
  )

/**
 * Runs `f` for each chunk `pull` gives, in order, until the pull ends (or fails, or `f` fails, or `f` answers
 * `false`): the loop every reader of a pull runs, on the caller's fiber.
 */
export const forEachChunkOfPull = <A, E, R, E2, R2>(
  pull: Pull<A, E, R>,
  f: (chunk: Chunk.Chunk<A>) => Effect.Effect<boolean | void, E2, R2>
): Effect.Effect<void, E | E2, R | R2> => {
  let more = true
  const stop = Effect.sync(() => {
    more = false
  })
  const step = Effect.matchEffect(pull, {
    onFailure: Option.match({ onNone: () => stop, onSome: (e: E) => Effect.fail<E | E2>(e) }),
    onSuccess: (chunk) =>
      Effect.map(f(chunk), (go) => {
        if (go === false) more = false
      })
  })
  return Effect.whileLoop({ while: () => more, body: () => step, step: () => {} })
}

/** `first`, then `second` (opened when `first` ends, in the same scope): `Stream.concat`. */
export const concat = <A, E, R, E2, R2>(
  first: Stream.Stream<A, E, R>,
  second: Stream.Stream<A, E2, R2>
): Stream.Stream<A, E | E2, R | R2> =>
  fromOpen<A, E | E2, R | R2>(
    Effect.flatMap(Effect.scope, (scope) =>
      Effect.map(openPull(first), (pullFirst): Pull<A, E | E2, R | R2> => {
        let pullSecond: Pull<A, E2, R2> | undefined
        const toSecond = (ended: Option.Option<E>): Pull<A, E | E2, R | R2> =>
          Option.isSome(ended)
            ? Effect.fail(ended)
            : Effect.flatMap(Effect.mapError(Scope.extend(openPull(second), scope), Option.some), (pull) => {
                pullSecond = pull
                return pull
              })
        const onFirst = Effect.catchAll(pullFirst, toSecond)
        return Effect.suspend(() => pullSecond ?? onFirst)
      })
    )
  )

/**
 * Where a pushed stream (`fromPush`) writes: its reader's own intake. Plain callbacks, callable from any fiber.
 */
export interface Sink<A, E> {
  /** Takes `a`; `false` asks the producer to wait for `ready` before it writes more (`a` was taken all the same). */
  readonly write: (a: A) => boolean
  /** Calls `f` once, when the reader can take more (or never will again: writes are then dropped). */
  readonly ready: (f: () => void) => void
  /**
   * Ends the stream with `ending` (its end, `Effect.fail(Option.none())`, or a failure, as a pull answers) after what
   * was written; the first ending wins. The producer's effect should then return (see `fromPush`).
   */
  readonly end: (ending: Pull<A, E>) => void
}

/** How a pushed stream runs: writes to `sink` from wherever it likes, for as long as its effect runs. */
export type Push<A, E, R> = (sink: Sink<A, E>) => Effect.Effect<void, E, R | Scope.Scope>

const PushKey: unique symbol = Symbol.for("@cmdop/grpc/PullStream/push")

/** The producer a stream was made with by `fromPush`, if any. */
export const pushOf = <A, E, R>(stream: Stream.Stream<A, E, R>): Push<A, E, R> | undefined =>
  (stream as unknown as { readonly [PushKey]?: Push<A, E, R> })[PushKey]

/**
 * A stream whose producer writes it (`Stream.asyncPush`, without its queue and fiber for a reader that knows the
 * mark). `run` runs in the reader's scope with the reader's sink: the stream ends with the first `sink.end`, or
 * when `run` returns (its end) or fails (its failure). A reader that knows the mark (the gRPC bridge's writer) runs
 * `run` on its own fiber and writes straight into the call, so a long-lived stream that is mostly idle costs no
 * fiber of its own: once `sink.end` was called, that reader stops the producer's requests (a bidi call's) so that
 * `run` can return. Any other reader gets a buffer and `run` on a fiber of the reader's scope, interrupted when the
 * reader is done.
 */
export const fromPush = <A, E, R>(run: Push<A, E, R>): Stream.Stream<A, E, Exclude<R, Scope.Scope>> => {
  const open: Open<A, E, R> = Effect.gen(function* () {
    let buffer: Array<A> = []
    let ending: Pull<A, E> | undefined
    let wake: (() => void) | undefined
    const signal = () => {
      const f = wake
      wake = undefined
      f?.()
    }
    const sink: Sink<A, E> = {
      write: (a) => {
        if (ending === undefined) {
          buffer.push(a)
          signal()
        }
        return true
      },
      ready: (f) => f(),
      end: (e) => {
        if (ending !== undefined) return
        ending = e
        signal()
      }
    }
    yield* Effect.forkScoped(
      Effect.matchCause(run(sink), {
        onFailure: (cause) => sink.end(Effect.failCause(Cause.map(cause, Option.some))),
        onSuccess: () => sink.end(end)
      })
    )
    return parking<A, E>(
      () => {
        if (buffer.length > 0) {
          const all = buffer
          buffer = []
          return Effect.succeed(Chunk.unsafeFromArray(all))
        }
        return ending
      },
      (f) => {
        wake = f
      }
    )
  })
  return Object.assign(fromOpen(open), { [PushKey]: run }) as Stream.Stream<A, E, Exclude<R, Scope.Scope>>
}

/** The stream with no elements, marked. */
export const empty: Stream.Stream<never> = fromPull(() => end)

/**
 * A stream read through `f` of `stream`'s pull (which `f` may call as it likes; what it gives must keep the rules of
 * a pull): one step per chunk in place of a `Stream` stage. Always marked.
 */
export const mapPull = <A, E, R, B, E2, R2>(
  stream: Stream.Stream<A, E, R>,
  f: (pull: Pull<A, E, R>) => Pull<B, E2, R2>
): Stream.Stream<B, E2, R | R2> => fromOpen<B, E2, R | R2>(Effect.map(toPull(stream), f))

/** `chunk`'s elements, then those of `pull`. */
export const startingWith = <A, E, R>(chunk: Chunk.Chunk<A>, pull: Pull<A, E, R>): Pull<A, E, R> => {
  let first: Chunk.Chunk<A> | undefined = Chunk.isEmpty(chunk) ? undefined : chunk
  return Effect.suspend(() => {
    if (first === undefined) return pull
    const taken = first
    first = undefined
    return Effect.succeed(taken)
  })
}

/**
 * `Stream.fromQueue`: what `queue` holds, up to `maxChunk` a pull, waiting when it is empty; the end once the
 * queue is shut down.
 */
export const fromQueue = <A>(queue: Queue.Dequeue<A>, maxChunk = 64): Stream.Stream<A> =>
  fromPull(() =>
    Effect.catchAllCause(Queue.takeBetween(queue, 1, maxChunk), (cause) =>
      Effect.flatMap(Queue.isShutdown(queue), (down) =>
        down && Cause.isInterruptedOnly(cause) ? end : Effect.failCause(Cause.map(cause, Option.some))
      )
    )
  )
