/**
 * Guests' uses of share links reach the store in batches written by one fiber, not one transaction each. Every exec
 * or attach through a link records a use (`ShareService.recordUse`): a burst of a thousand guest calls made a
 * thousand audit transactions at once, each waiting for a pool connection alongside the calls' own queries, and on
 * PostgreSQL the acquires timed out ("Failed to acquire connection") and the uses were lost. Now a use joins a
 * queue; the writer takes what has piled up (at most `BATCH`) and writes it in one transaction
 * (`RelayStore.recordShareUses`), so the audit holds at most one connection at a time. The caller still waits until
 * its use is written (a listing right after shows it), sharing the transaction with the uses queued with it.
 *
 * Bounded: at most `CAPACITY` uses wait. Beyond that a use is dropped (its call goes on) and counted, with one
 * warning when dropping starts and one with the count once the queue has drained. A batch the store refuses is tried
 * again 3 times (0.2, 0.4, 0.8 s apart), then given up on with one warning for the batch. When the enclosing scope
 * closes, the batch being written is finished and what is still queued is written.
 */
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { ShareUse } from "../store/records.js"
import type { RelayStore } from "../store/service.js"

/** Uses that may wait to be written: a burst several times the one that lost them, in a few MiB. */
export const CAPACITY = 10_000

/** Uses per transaction: a bounded statement (four parameters each) and a bounded pause of the event loop. */
export const BATCH = 500

const RETRY = Schedule.exponential("200 millis").pipe(Schedule.intersect(Schedule.recurs(3)))

export interface UseWrites {
  /** Queues `use` and waits until it is written, or given up on (the store failed, or the queue was full). */
  readonly record: (use: ShareUse) => Effect.Effect<void>
}

interface Queued {
  readonly use: ShareUse
  readonly written: Deferred.Deferred<void>
}

/** The writer for `store`, running for the life of the scope. */
export const make = (
  store: RelayStore["Type"],
  options: { readonly capacity?: number; readonly batch?: number } = {}
): Effect.Effect<UseWrites, never, Scope.Scope> =>
  Effect.gen(function* () {
    const capacity = options.capacity ?? CAPACITY
    const batchSize = options.batch ?? BATCH
    const queue = yield* Queue.dropping<Queued>(capacity)
    let dropped = 0
    let closed = false

    /** One transaction for `batch` (tried again while the store fails); its callers are released either way. */
    const write = (batch: ReadonlyArray<Queued>): Effect.Effect<void> =>
      store.recordShareUses(batch.map((q) => q.use)).pipe(
        Effect.retry(RETRY),
        Effect.flatMap((unknown) =>
          unknown.length === 0
            ? Effect.void
            : Effect.logWarning(`share link audit: uses of unknown links not recorded: ${unknown.join(", ")}`)
        ),
        Effect.catchAll((error) =>
          Effect.logWarning(`share link audit: ${batch.length} uses not recorded: ${error.message}`)
        ),
        Effect.catchAllCause((cause) => Effect.logError(`share link audit: ${batch.length} uses not recorded`, cause)),
        Effect.ensuring(Effect.sync(() => batch.forEach((q) => Deferred.unsafeDone(q.written, Exit.void)))),
        Effect.uninterruptible
      )

    /** After a batch: once the queue has drained, how many uses were dropped while it was full. */
    const reportDrops = Effect.suspend(() => {
      if (dropped === 0) return Effect.void
      return Effect.flatMap(Queue.size(queue), (waiting) => {
        if (waiting > 0) return Effect.void
        const count = dropped
        dropped = 0
        return Effect.logWarning(`share link audit: ${count} uses were not recorded while the queue was full`)
      })
    })

    /** What is still queued once the writer has stopped; later uses are written on their own (`record`). */
    const drain = Effect.zipRight(
      Effect.sync(() => {
        closed = true
      }),
      Effect.flatMap(Queue.takeAll(queue), (rest) =>
        Effect.forEach(Chunk.chunksOf(rest, batchSize), (batch) => write(Chunk.toReadonlyArray(batch)), {
          discard: true
        })
      )
    )
    // Added before the writer is forked, so it runs after the writer has stopped (finalizers run in reverse).
    yield* Effect.addFinalizer(() => drain)
    yield* Queue.takeBetween(queue, 1, batchSize).pipe(
      Effect.flatMap((batch) => write(Chunk.toReadonlyArray(batch))),
      Effect.zipRight(reportDrops),
      Effect.forever,
      Effect.forkScoped
    )

    const overflow = Effect.suspend(() => {
      dropped++
      return dropped === 1
        ? Effect.logWarning(
            `share link audit: ${capacity} uses wait to be written; further uses are not recorded until there is room`
          )
        : Effect.void
    })

    return {
      record: (use) =>
        Effect.suspend(() => {
          const written = Deferred.unsafeMake<void>(FiberId.none)
          // Once the writer is gone (the relay is stopping), a use is written on its own.
          if (closed) return write([{ use, written }])
          return Effect.flatMap(Queue.offer(queue, { use, written }), (taken) =>
            taken ? Deferred.await(written) : overflow
          )
        })
    }
  })
