/**
 * `Stream.withSpan` for the relay's long-lived call streams, without its cost per element: `withSpan` runs every
 * pull of the stream under the span (a context switch per element, about doubling what a keystroke's echo costs
 * a stage), while here only the setup — and the fibers it forks, such as a viewer's input — runs under it. The
 * span still lasts the stream's life and ends with its outcome (it is scoped to the stream).
 */
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

export const unwrapScopedWithSpan = <A, E, R, E2, R2>(
  name: string,
  setup: Effect.Effect<Stream.Stream<A, E, R>, E2, R2 | Scope.Scope>
): Stream.Stream<A, E | E2, R | Exclude<R2, Scope.Scope>> =>
  PullStream.unwrapScoped(Effect.flatMap(Effect.makeSpanScoped(name), (span) => Effect.withParentSpan(setup, span)))
