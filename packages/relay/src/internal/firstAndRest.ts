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
