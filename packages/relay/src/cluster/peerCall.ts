/**
 * One forwarded session's call on a peer channel (`PeerService` exec or attach), built for the hop's hot path: the
 * forwarding node pays for the hop on every call, so the call is leaner than the general `GrpcClient.bidi`:
 *
 * - the start message is written as the call opens (no request stream for it);
 * - the rest of the input (stdin, signals, terminal input) is pumped by one fiber, only once the owning node has
 *   answered: a call that fails before that has consumed no input and may be made again elsewhere;
 * - the first answer is awaited before the answers are handed on (`first`), so the forwarding node decides on a
 *   retry before anything reached its client, and needs no error-recovery stage after it;
 * - the answers are read by one stream stage straight off the grpc-js call, which also notes the first answer,
 *   drops answers this node cannot read and maps a failure (no stage per concern).
 *
 * Flow control stays end to end: answers are read from grpc-js only as this stream is pulled, so while the
 * forwarding node's client does not read, HTTP/2 holds the owning node's writes for this one stream; input is
 * written with backpressure (`drain`).
 *
 * How the call ends: the owning node ends it (its status); or, when the scope closes first (this node's client went
 * away), it is asked to in the call itself — `Cancel`, then the half-close — and the owning node ends the session
 * as on a reset and answers CANCELLED (`stop`). It is not reset: every forwarded call to a node shares one HTTP/2
 * connection, and Node's HTTP/2 server answers more than 1,000 resets in a burst (then 33 a second) with a GOAWAY
 * that fails every call on it, so one tenant's burst of abandoned calls would break every other tenant's forwarded
 * sessions between the two nodes. A call not ended `fallbackMs` after that (an owning node too old to know
 * `Cancel`, or one that does not read its input) is reset then.
 */
import * as CallEnd from "@cmdop/grpc/CallEnd"
import * as GrpcStatusError from "@cmdop/grpc/GrpcStatusError"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as ResetPacer from "@cmdop/grpc/ResetPacer"
import * as ScopedAcquire from "@cmdop/grpc/ScopedAcquire"
import * as PeerService from "@cmdop/protocol/PeerService"
import { isReadable } from "@cmdop/protocol/Unreadable"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { PeerClient } from "./PeerClients.js"

/** The most answers one pull takes from what grpc-js has buffered. */
const MAX_CHUNK = 64

const ignore = (): void => {}

/** How long a call asked to end (`stop`) may take before it is reset after all. */
export const CANCEL_FALLBACK_MS = 5_000

const UNAVAILABLE = 14
const CANCELLED = 1

const cannotStart = (error: unknown) =>
  new GrpcStatusError.GrpcStatusError({
    code: UNAVAILABLE,
    details: `cannot start call: ${error instanceof Error ? error.message : String(error)}`
  })

const closed = () => new GrpcStatusError.GrpcStatusError({ code: CANCELLED, details: "call closed" })

/** The grpc-js call of a bidi method, as much of it as this module uses. */
interface RawCall {
  write(message: unknown): boolean
  end(): void
  cancel(): void
  read(): unknown
  resume(): unknown
  once(event: string, f: (...args: Array<any>) => void): unknown
  on(event: string, f: (...args: Array<any>) => void): unknown
  off(event: string, f: (...args: Array<any>) => void): unknown
  readonly destroyed: boolean
  readonly readableEnded: boolean
  readonly writableEnded: boolean
  readonly writableNeedDrain: boolean
}

interface Method {
  readonly path: string
  readonly requestSerialize: (value: any) => Buffer
  readonly responseDeserialize: (bytes: Buffer) => any
}

/** Waits until `call` takes more input, or never will. */
const drained = (call: RawCall): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (!call.writableNeedDrain || call.destroyed || call.writableEnded) return resume(Effect.void)
    const events = ["drain", "close", "error", "finish"] as const
    const done = () => {
      for (const event of events) call.off(event, done)
      resume(Effect.void)
    }
    for (const event of events) call.on(event, done)
    return Effect.sync(() => {
      for (const event of events) call.off(event, done)
    })
  })

/** Writes `values` from `i` on, waiting for `drain` when grpc-js says its buffer is full. */
const writeFrom = (call: RawCall, values: ReadonlyArray<unknown>, i: number): Effect.Effect<void> => {
  for (; i < values.length; i++) {
    if (call.destroyed || call.writableEnded) return Effect.void
    if (!call.write(values[i])) {
      const next = i + 1
      return Effect.flatMap(drained(call), () => writeFrom(call, values, next))
    }
  }
  return Effect.void
}

/** A forwarded call: its first answer awaited, then its answers. */
export interface Opened<A, E> {
  /**
   * Waits for the owning node's first answer (kept for `answers`), or the call's end without one; fails with the
   * call's status when it failed before answering (nothing of the input was sent: it may be made again elsewhere).
   */
  readonly first: Effect.Effect<void, GrpcStatusError.GrpcStatusError>
  /** The readable answers (the first one included); a failure after the first answer as `mapError` makes it. */
  readonly answers: Stream.Stream<A, E>
}

/** What one look at the call found: answers, its end, its failure, or nothing yet (`undefined`). */
type Found<A> = Chunk.Chunk<A> | "end" | GrpcStatusError.GrpcStatusError | undefined

/** The input of a forwarded call after its start. */
export interface Rest {
  /** The messages; `undefined` for none (the call is half-closed as soon as the owning node answered). */
  readonly input: Stream.Stream<unknown, unknown> | undefined
  /** What is written when `input` fails, before the half-close (its failure goes no further). */
  readonly onFailure: ReadonlyArray<unknown>
  /**
   * Whether the end of `input` is passed on as the call's half-close. It is an attach's detach. An exec's input end
   * changes nothing on the owning node (the command runs on), so its call is left open for writing: a half-closed
   * call could only be stopped by a reset, and a plain `exec` (no stdin, no signals) ends its input at once.
   */
  readonly halfClose: boolean
}

/**
 * Ends a call whose scope closed before the call did, without resetting its stream: `Cancel` and the half-close
 * (an attach already half-closed has asked for its end: its detach), then whatever else comes is read and dropped
 * (`resume`; grpc-js gives the status only once the answers before it are taken), and the call is reset only if it
 * has not ended within `fallbackMs`. A call grpc-js has destroyed cannot be written: it is reset (a no-op once its
 * stream is gone).
 */
const stop = (call: RawCall, fallbackMs: number, pacer: ResetPacer.ResetPacer | undefined): void => {
  if (call.destroyed) return call.cancel()
  if (!call.writableEnded) {
    call.write(PeerService.cancel)
    call.end()
  }
  CallEnd.awaitEndOrReset(call, fallbackMs, pacer?.pace)
}

/**
 * Opens `method` on `client` with `metadata`, writes `start`, and answers the owning node's answers (the readable
 * ones), for the life of the scope. `rest` is written once the first answer came, then the call is half-closed
 * if `rest.halfClose`. `mapError` makes the answers' failure (called once). A call the scope outlives is stopped
 * in-band, and reset `fallbackMs` later if it has not ended (see the module header).
 */
export const open = <A, E>(
  client: PeerClient,
  method: Method,
  metadata: Readonly<Record<string, string>>,
  start: unknown,
  rest: Rest,
  mapError: (e: GrpcStatusError.GrpcStatusError) => E,
  fallbackMs: number = CANCEL_FALLBACK_MS,
  /** The peer connection's reset pacer: a reset after the fallback waits its turn there. */
  pacer?: ResetPacer.ResetPacer
): Effect.Effect<Opened<A, E>, GrpcStatusError.GrpcStatusError, Scope.Scope> =>
  Effect.gen(function* () {
    const answered = yield* Deferred.make<void>()
    let waiting = true
    let ended = false
    /** Whether grpc-js gave the call's status: it has ended, and nothing is left to stop. */
    let settled = false
    let failure: GrpcStatusError.GrpcStatusError | undefined
    let wake: (() => void) | undefined
    const signal = () => {
      const f = wake
      wake = undefined
      f?.()
    }
    const onEnd = () => {
      ended = true
      signal()
    }
    const onError = (error: unknown) => {
      failure ??= GrpcStatusError.fromUnknown(error)
      signal()
    }
    const onStatus = () => {
      settled = true
    }
    // Stopped when the scope closes (`ScopedAcquire`: no copy of the fiber's refs per call).
    const call = yield* ScopedAcquire.acquireRelease(
      Effect.try({
        try: () => {
          const raw = client.raw.makeBidiStreamRequest(
            method.path,
            method.requestSerialize,
            method.responseDeserialize,
            GrpcStatusError.recordToMetadata(metadata),
            {}
          ) as unknown as RawCall
          raw.on("readable", signal)
          raw.on("end", onEnd)
          raw.on("error", onError)
          raw.on("close", signal)
          raw.on("status", onStatus)
          return raw
        },
        catch: cannotStart
      }),
      (raw) =>
        Effect.sync(() => {
          raw.off("readable", signal)
          raw.off("end", onEnd)
          raw.off("close", signal)
          raw.off("status", onStatus)
          // grpc-js reports the end (CANCELLED) as an `error` event when nobody reads any more.
          raw.on("error", ignore)
          raw.off("error", onError)
          if (!settled) stop(raw, fallbackMs, pacer)
        })
    )

    call.write(start)
    const halfClose = () => {
      if (rest.halfClose && !call.destroyed && !call.writableEnded) call.end()
    }
    // The input, once the owning node has answered; then the half-close. Stopped with the scope (before the call's
    // finalizer runs: its `Cancel` follows the last input written). Without input there is nothing to wait for on
    // a fiber of its own: the half-close goes with the first answer (`look`).
    const input = rest.input
    if (input !== undefined)
      yield* Deferred.await(answered).pipe(
        Effect.zipRight(
          Effect.catchAll(
            PullStream.runForEachChunk(input, (chunk) => writeFrom(call, Chunk.toReadonlyArray(chunk), 0)),
            () => writeFrom(call, rest.onFailure, 0)
          )
        ),
        Effect.zipRight(Effect.sync(halfClose)),
        Effect.forkScoped
      )

    /** The first answers, read by `first` and not yet taken by `answers`. */
    let kept: Chunk.Chunk<A> | undefined
    const look = (): Found<A> => {
      if (kept !== undefined) {
        const chunk = kept
        kept = undefined
        return chunk
      }
      const values: Array<A> = []
      let read = 0
      while (read < MAX_CHUNK) {
        const value = call.read()
        if (value === null) break
        read++
        if (isReadable(value as { readonly _tag: string })) values.push(value as A)
      }
      if (read > 0) {
        if (waiting) {
          waiting = false
          if (input === undefined) halfClose()
          else Deferred.unsafeDone(answered, Exit.void)
        }
        return Chunk.unsafeFromArray(values)
      }
      if (failure !== undefined) return failure
      if (ended || call.readableEnded) return "end"
      if (call.destroyed) return closed()
      return undefined
    }
    // An event may fire between a failed look and the registration: look once more before waiting.
    const next = Effect.suspend(() => {
      const found = look()
      return found !== undefined
        ? Effect.succeed(found)
        : Effect.async<Found<A>>((resume) => {
            const retry = () => {
              const again = look()
              if (again === undefined) wake = retry
              else resume(Effect.succeed(again))
            }
            retry()
            return Effect.sync(() => {
              wake = undefined
            })
          })
    })

    const first = Effect.flatMap(next, (found) => {
      if (found instanceof GrpcStatusError.GrpcStatusError) return Effect.fail(found)
      if (found !== "end") kept = found as Chunk.Chunk<A>
      else ended = true
      return Effect.void
    })
    let mapped: E | undefined
    const pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> = Effect.flatMap(next, (found) => {
      if (found === "end") return PullStream.end
      if (found instanceof GrpcStatusError.GrpcStatusError) {
        mapped ??= mapError(found)
        return Effect.fail(Option.some(mapped))
      }
      return Effect.succeed(found as Chunk.Chunk<A>)
    })
    return { first, answers: PullStream.fromPull(() => pull) }
  })
