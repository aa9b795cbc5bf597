/**
 * A forwarded exec or attach of a gRPC client, passed through as bytes (`GrpcPassthrough`): the owning node's
 * answers go from the peer call's HTTP/2 stream to the client's as they came, never decoded or framed again on this
 * node. Used when the gRPC server's writer reaches the forwarded stream (`GrpcPassthrough.withDownstream`); the
 * browser terminal, share-link guests and the in-process client read the same forwarded stream decoded
 * (`peerCall.ts`).
 *
 * The call keeps every rule of the decoded path (`forwardCore.ts`): the first answer is awaited before anything
 * reaches the client, so a call on a stale cached route that fails there is made again on a fresh lookup (or served
 * here); input is written only once the owning node has answered, on the writer's fiber; an answer's failure is the
 * error `forwardCore` makes of it (the owning node's typed refusal as it sent it, a link failure said for what it
 * is); a call whose client went away is ended in-band (`Cancel`, then the half-close) and reset only if it has not
 * ended `CANCEL_FALLBACK_MS` later. Flow control is end to end: the peer call is read no further while the client's
 * stream is full.
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import type * as GrpcPassthrough from "@cmdop/grpc/GrpcPassthrough"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as PeerService from "@cmdop/protocol/PeerService"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { CANCEL_FALLBACK_MS, type Rest } from "./peerCall.js"

/** What `forwardCore` lends a passed-through call: its route, how it maps failures and looks routes up again. */
export interface Hop<F> {
  readonly found: F
  readonly address: string
  readonly upstream: (address: string) => GrpcPassthrough.Upstream
  readonly path: string
  readonly metadata: Readonly<Record<string, string>>
  /** Encodes one request message of the peer method (the start, input, `Cancel`). */
  readonly encode: (message: unknown) => Uint8Array
  readonly start: unknown
  readonly rest: Rest
  /** Counts the forwarded session, live while the scope lasts. */
  readonly count: Effect.Effect<void, never, Scope.Scope>
  /** The error a failed answer of this route's node is to its client (counted, the route forgotten). */
  readonly failure: (e: GrpcStatusError) => RelayCallError
  readonly warn: (e: GrpcStatusError) => Effect.Effect<void>
  /** Whether a call that failed before answering went stale with its cached route (made again afresh). */
  readonly stale: (e: GrpcStatusError, error: RelayCallError) => boolean
  /** How long a call ended in-band may take before it is reset (default `CANCEL_FALLBACK_MS`). */
  readonly fallbackMs?: number
  /** The stream to write instead when the call is made again: a fresh route's, or this node's own. */
  readonly again: () => Effect.Effect<Stream.Stream<unknown, RelayCallError>>
}

const toStatus = (e: RelayCallError): GrpcStatusError => ErrorCodec.toStatus(e)

/** Ends a call the scope outlives in-band (`Cancel`, half-close); resets it if it has not ended after the fallback. */
const stop = (call: GrpcPassthrough.UpstreamCall, encode: (message: unknown) => Uint8Array, fallbackMs: number) => {
  if (call.writable()) {
    call.write(encode(PeerService.cancel))
    call.end()
  }
  const timer = setTimeout(() => call.reset(), fallbackMs)
  timer.unref()
  call.listen(
    () => true,
    () => clearTimeout(timer)
  )
}

/** Writes `messages` from `i` on, waiting for the call to drain when it asks to. */
const writeFrom = (
  call: GrpcPassthrough.UpstreamCall,
  encode: (message: unknown) => Uint8Array,
  messages: ReadonlyArray<unknown>,
  i: number
): Effect.Effect<void> => {
  for (; i < messages.length; i++) {
    if (!call.writable()) return Effect.void
    if (!call.write(encode(messages[i]))) {
      const next = i + 1
      return Effect.flatMap(
        Effect.async<void>((resume) => call.onDrain(() => resume(Effect.void))),
        () => writeFrom(call, encode, messages, next)
      )
    }
  }
  return Effect.void
}

/** The passthrough of one forwarded call (see the module header). */
export const passthrough =
  <F>(hop: Hop<F>): GrpcPassthrough.Passthrough =>
  (target) =>
    Effect.gen(function* () {
      const upstream = hop.upstream(hop.address)
      yield* hop.count
      const call = yield* Effect.mapError(upstream.call(hop.path, hop.metadata, hop.encode(hop.start)), (e) =>
        toStatus(hop.failure(e))
      )
      let ended = false
      const scope = yield* Effect.scope
      yield* Scope.addFinalizer(
        scope,
        Effect.sync(() => {
          if (!ended) stop(call, hop.encode, hop.fallbackMs ?? CANCEL_FALLBACK_MS)
        })
      )
      // The answers go to the client from the call's events, the first one too: no fiber stands between them. An
      // end before any answer is the fiber's to decide on (a stale route is tried again; nothing was sent yet).
      let answered = false
      let ending: GrpcPassthrough.Ending | undefined
      let wake: (() => void) | undefined
      const onDrained = () => call.resume()
      call.listen(
        (chunk) => {
          if (!answered) {
            answered = true
            wake?.()
          }
          if (target.downstream.write(chunk)) return true
          target.downstream.onDrain(onDrained)
          return false
        },
        (end) => {
          ended = true
          ending = end
          // The client's requests are read no further: an input waiting for them returns.
          if (answered) target.stopInput()
          wake?.()
        }
      )
      /** Waits until `done()`, woken by the call's events. */
      const until = (done: () => boolean) =>
        done()
          ? Effect.void
          : Effect.async<void>((resume) => {
              wake = () => {
                if (!done()) return
                wake = undefined
                resume(Effect.void)
              }
              return Effect.sync(() => {
                wake = undefined
              })
            })
      yield* until(() => answered || ending !== undefined)
      if (!answered) {
        const end = ending!
        if (end.ok) return
        const error = hop.failure(end.error)
        yield* hop.warn(end.error)
        if (!hop.stale(end.error, error)) return yield* Effect.fail(toStatus(error))
        return yield* target.write(PullStream.mapError(yield* hop.again(), toStatus))
      }
      const rest = hop.rest
      if (rest.input === undefined) {
        if (rest.halfClose) call.end()
      } else
        yield* PullStream.runForEachChunk(rest.input, (chunk) =>
          ended ? Effect.void : writeFrom(call, hop.encode, Chunk.toReadonlyArray(chunk), 0)
        ).pipe(
          Effect.catchAll(() => (ended ? Effect.void : writeFrom(call, hop.encode, rest.onFailure, 0))),
          Effect.zipRight(
            Effect.sync(() => {
              if (rest.halfClose && !ended) call.end()
            })
          )
        )
      yield* until(() => ending !== undefined)
      if (!ending!.ok) return yield* Effect.fail(toStatus(hop.failure(ending!.error)))
    })
