/**
 * Bridges between grpc-js call objects (Node object-mode streams) and Effect: pull-based reads and writes that
 * wait for `drain`. Shared by the server and the client side.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Readable, Writable } from "node:stream"

/** Swallows an `error` event so that an event nobody reads any more cannot crash the process. */
export const ignoreError = (): void => {}

const maxChunk = 64

/**
 * Reads an object-mode Readable on demand: each pull takes what is buffered (or waits for `readable`), so the
 * Readable only asks grpc-js for more messages (`_read`) while the consumer keeps pulling. Messages buffered before
 * an `error` are delivered first, then the stream fails with `onError`. A Readable destroyed before `end` fails the
 * stream with `onClose`.
 */
export const fromReadable = <A, E>(
  readable: Readable,
  onError: (error: unknown) => E,
  onClose: () => E
): Stream.Stream<A, E> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      let ended = false
      let closed = false
      let failure: Option.Option<E> = Option.none()
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
        if (Option.isNone(failure)) failure = Option.some(onError(error))
        signal()
      }
      const onCloseEvent = () => {
        closed = true
        signal()
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          readable.on("readable", onReadable)
          readable.on("end", onEnd)
          readable.on("error", onErr)
          readable.on("close", onCloseEvent)
        }),
        () =>
          Effect.sync(() => {
            readable.on("error", ignoreError)
            readable.off("readable", onReadable)
            readable.off("end", onEnd)
            readable.off("error", onErr)
            readable.off("close", onCloseEvent)
          })
      )

      // One attempt: `undefined` means nothing to report yet, wait for the next event.
      const attempt = (): Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> | undefined => {
        const values: Array<A> = []
        while (values.length < maxChunk) {
          const value = readable.read()
          if (value === null) break
          values.push(value as A)
        }
        if (values.length > 0) return Effect.succeed(Chunk.unsafeFromArray(values))
        if (Option.isSome(failure)) return Effect.fail(failure)
        if (ended || readable.readableEnded) return Effect.fail(Option.none())
        if (closed || readable.destroyed) return Effect.fail(Option.some(onClose()))
        return undefined
      }

      const pull = Effect.async<Chunk.Chunk<A>, Option.Option<E>>((resume) => {
        const first = attempt()
        if (first !== undefined) return resume(first)
        const retry = () => {
          const next = attempt()
          if (next === undefined) wake = retry
          else resume(next)
        }
        wake = retry
        return Effect.sync(() => {
          wake = undefined
        })
      })
      return Stream.repeatEffectChunkOption(pull)
    })
  )

/** Waits until `writable` can take more (`drain`) or will never take more (`close`, `error`, `finish`). */
export const awaitDrain = (writable: Writable): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
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
 * Writes one message and, when grpc-js reports its buffer full (`write()` returned false), waits for `drain`.
 * Succeeds with `false`, writing nothing, when the stream no longer accepts writes (ended, destroyed).
 */
export const write = (writable: Writable, value: unknown): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    if (writable.destroyed || writable.writableEnded) return Effect.succeed(false)
    return writable.write(value) ? Effect.succeed(true) : Effect.as(awaitDrain(writable), true)
  })

/**
 * Writes the messages of `stream` in order, with backpressure, until it ends or `writable` stops accepting writes.
 * Does not end the writable.
 */
export const writeAll = <A, E, R>(writable: Writable, stream: Stream.Stream<A, E, R>): Effect.Effect<void, E, R> =>
  Stream.runForEachWhile(stream, (value) => write(writable, value))

/** Sleeps on a real timer, so shutdown deadlines also pass under a TestClock. */
export const sleepReal = (millis: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })
