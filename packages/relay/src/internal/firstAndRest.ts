/**
 * "The first message, then the rest": what every stream of the relay's protocol starts with (an agent's `Hello`,
 * a client's `ExecStart` or `AttachStart`). It does what `Stream.peel(stream, Sink.head())` does, without the
 * fiber and handoff `peel` puts between the producer and the rest: on a stream of single-message chunks (gRPC
 * delivers one message at a time) that costs several times more per message, and the agent's stream carries all
 * of a machine's session output.
 */
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/**
 * The stream's first element (`None` when it ends without one) and the stream of the rest, readable for the life
 * of the scope. Fails when the stream fails before its first element.
 */
export const firstAndRest = <A, E, R>(
  stream: Stream.Stream<A, E, R>
): Effect.Effect<readonly [Option.Option<A>, Stream.Stream<A, E, R>], E, Scope.Scope | R> =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(stream)
    const rest = Stream.fromPull(Effect.succeed(pull))
    for (;;) {
      const chunk = yield* pull.pipe(
        Effect.map(Option.some),
        Effect.catchAll(Option.match({ onNone: () => Effect.succeed(Option.none()), onSome: Effect.fail }))
      )
      if (Option.isNone(chunk)) return [Option.none(), Stream.empty] as const
      if (Chunk.isNonEmpty(chunk.value))
        return [
          Option.some(Chunk.headNonEmpty(chunk.value)),
          Stream.concat(Stream.fromChunk(Chunk.drop(chunk.value, 1)), rest)
        ] as const
    }
  })

/**
 * The same for a consumer that reads the rest with a plain loop (`forEachRest`) instead of as a stream: the first
 * element, what came in the same chunk after it, and the pull of the stream. No stream stages of its own (each
 * would hold a channel executor for the life of a long-lived call, such as an agent's connection).
 */
export const firstAndPull = <A, E>(
  stream: Stream.Stream<A, E>
): Effect.Effect<
  readonly [Option.Option<A>, Chunk.Chunk<A>, Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>],
  E,
  Scope.Scope
> => Effect.flatMap(PullStream.toPull(stream), firstOfPull)

/**
 * The first element `pull` gives (`None` when it ends first), what came in the same chunk after it, and `pull`
 * for the rest: `firstAndPull` for a consumer that already holds the pull.
 */
export const firstOfPull = <A, E>(
  pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>
): Effect.Effect<readonly [Option.Option<A>, Chunk.Chunk<A>, Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>], E> =>
  Effect.gen(function* () {
    const ended: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> = PullStream.end
    for (;;) {
      const chunk = yield* pull.pipe(
        Effect.map(Option.some),
        Effect.catchAll(Option.match({ onNone: () => Effect.succeed(Option.none()), onSome: Effect.fail }))
      )
      if (Option.isNone(chunk)) return [Option.none(), Chunk.empty(), ended] as const
      if (Chunk.isNonEmpty(chunk.value))
        return [Option.some(Chunk.headNonEmpty(chunk.value)), Chunk.drop(chunk.value, 1), pull] as const
    }
  })

/** The sign of a first element that did not come in time, told apart from the stream's own failures. */
const TIMED_OUT: unique symbol = Symbol("timed out")

/**
 * `firstAndPull` for a call's start message, within `millis`: failed with `onTimeout()` unless the first element
 * comes in time; a stream that ends or fails before one answers `None` (the caller refuses the call for that).
 * The gRPC bridge's request reader waits with a plain timer in its own wait (`PullStream.withDeadline`); any other
 * stream is raced by `within`'s fiber.
 */
export const firstAndPullWithin = <A, E, E2>(
  stream: Stream.Stream<A, E>,
  millis: number,
  onTimeout: () => E2
): Effect.Effect<
  readonly [Option.Option<A>, Chunk.Chunk<A>, Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>],
  E2,
  Scope.Scope
> =>
  Effect.flatMap(PullStream.toPull(stream), (pull) => {
    const ended: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> = PullStream.end
    const none = [Option.none<A>(), Chunk.empty<A>(), ended] as const
    const timed = PullStream.withDeadline(pull)
    if (timed === undefined)
      return within(
        Effect.orElseSucceed(firstOfPull(pull), () => none),
        millis,
        onTimeout
      )
    const deadline = performance.now() + millis
    const first = Effect.suspend(() =>
      timed(Math.max(0, deadline - performance.now()), (): typeof TIMED_OUT => TIMED_OUT)
    )
    return firstOfPull(first).pipe(
      Effect.map(([head, more]) => [head, more, pull] as const),
      Effect.catchAll((e) => (e === TIMED_OUT ? Effect.fail(onTimeout()) : Effect.succeed(none)))
    )
  })

/** Runs `f` for `first`'s elements, then for every element `pull` gives, until it ends (or fails, or `f` fails). */
export const forEachRest = <A, E, E2>(
  first: Chunk.Chunk<A>,
  pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>,
  f: (a: A) => Effect.Effect<void, E2>
): Effect.Effect<void, E | E2> =>
  Effect.zipRight(
    PullStream.eachOf(first, f),
    PullStream.forEachChunkOfPull(pull, (chunk) => PullStream.eachOf(chunk, f))
  )

/**
 * `effect`, failed with `onTimeout()` unless it completes within `millis` (a real timer). One fiber and one plain
 * `setTimeout`: `Effect.timeoutFail` races two fibers and a scheduled sleep, which on every exec cost the relay
 * about a sixth of the call's CPU. Interrupting the caller interrupts `effect`.
 */
export const within = <A, E, E2, R>(
  effect: Effect.Effect<A, E, R>,
  millis: number,
  onTimeout: () => E2
): Effect.Effect<A, E | E2, R> =>
  Effect.flatMap(Effect.fork(effect), (fiber) =>
    Effect.async<A, E | E2>((resume) => {
      const observer = (exit: Exit.Exit<A, E>) => {
        clearTimeout(timer)
        resume(exit)
      }
      const timer = setTimeout(() => {
        fiber.removeObserver(observer)
        resume(Effect.zipRight(Fiber.interrupt(fiber), Effect.fail(onTimeout())))
      }, millis)
      // Called at once when the fiber is already done.
      fiber.addObserver(observer)
      return Effect.suspend(() => {
        clearTimeout(timer)
        fiber.removeObserver(observer)
        return Fiber.interrupt(fiber)
      })
    })
  )
