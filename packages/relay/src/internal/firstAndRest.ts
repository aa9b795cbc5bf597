/**
 * "The first message, then the rest": what every stream of the relay's protocol starts with (an agent's `Hello`,
 * a client's `ExecStart` or `AttachStart`). It does what `Stream.peel(stream, Sink.head())` does, without the
 * fiber and handoff `peel` puts between the producer and the rest: on a stream of single-message chunks (gRPC
 * delivers one message at a time) that costs several times more per message, and the agent's stream carries all
 * of a machine's session output.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
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
> =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(stream)
    const ended: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> = Effect.fail(Option.none())
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

/** Runs `f` for `first`'s elements, then for every element `pull` gives, until it ends (or fails, or `f` fails). */
export const forEachRest = <A, E, E2>(
  first: Chunk.Chunk<A>,
  pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>,
  f: (a: A) => Effect.Effect<void, E2>
): Effect.Effect<void, E | E2> => {
  let done = false
  const next = Effect.matchEffect(pull, {
    onFailure: Option.match({
      onNone: () =>
        Effect.sync(() => {
          done = true
        }),
      onSome: (e: E) => Effect.fail<E | E2>(e)
    }),
    onSuccess: (chunk) => Effect.forEach(chunk, f, { discard: true })
  })
  return Effect.zipRight(
    Effect.forEach(first, f, { discard: true }),
    Effect.whileLoop({ while: () => !done, body: () => next, step: () => {} })
  )
}
