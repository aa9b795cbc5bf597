/**
 * The notices of one attach call (`waiting for approval on <machine>…` while the machine's gate holds the session),
 * delivered in order with the viewer's output without a merge: a merge would put a fiber and a queue between every
 * keystroke's echo and the client. Before the viewer exists, `untilOpened` streams the notices while the session
 * is being opened; after that, the viewer's reader takes them (`take`) and `push` wakes it (`onPush`).
 */
import type { AttachEvent } from "@cmdop/domain/RelayClient"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"

export class AttachNotices {
  private pending: Array<AttachEvent> = []
  private readonly waiters = new Set<() => void>()
  /** Set by the viewer: wakes its reader. */
  onPush: (() => void) | undefined = undefined

  push(event: AttachEvent): void {
    this.pending.push(event)
    this.wake()
    this.onPush?.()
  }

  /** What arrived since the last take, if anything. */
  take(): Chunk.Chunk<AttachEvent> | undefined {
    if (this.pending.length === 0) return undefined
    const out = this.pending
    this.pending = []
    return Chunk.unsafeFromArray(out)
  }

  private wake(): void {
    const waiters = [...this.waiters]
    this.waiters.clear()
    for (const waiter of waiters) waiter()
  }

  /** The notices that arrive until `opening` is done (it then ends; `opening`'s own outcome is read elsewhere). */
  untilOpened<A, E>(opening: Fiber.RuntimeFiber<A, E>): Stream.Stream<AttachEvent> {
    opening.addObserver(() => this.wake())
    const next: PullStream.Pull<AttachEvent, never> = Effect.async((resume) => {
      const attempt = () => {
        const taken = this.take()
        if (taken !== undefined) resume(Effect.succeed(taken))
        else if (opening.unsafePoll() !== null) resume(PullStream.end)
        else this.waiters.add(attempt)
      }
      attempt()
      return Effect.sync(() => {
        this.waiters.delete(attempt)
      })
    })
    return PullStream.fromPull(() => next)
  }
}
