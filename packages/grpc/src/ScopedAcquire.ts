/**
 * `Effect.acquireRelease` for the per-call path: the acquisition and its release registered in one uninterruptible
 * step, on the scope itself. `acquireRelease` (and `Effect.addFinalizer`) capture the fiber's refs when the release
 * is added and diff them back when it runs — the whole context, on every call (counted in the relay's and the
 * agent's run loops: two to three times an exec). Here the release runs with the refs of whoever closes the scope,
 * which suits releases that free, count or cancel, as every per-call one does.
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"

export const acquireRelease = <A, E, R>(
  acquire: Effect.Effect<A, E, R>,
  release: (a: A) => Effect.Effect<void>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.uninterruptible(
    Effect.flatMap(Effect.scope, (scope) => Effect.tap(acquire, (a) => Scope.addFinalizer(scope, release(a))))
  )
