/**
 * The gate's pending `ask` decisions on one daemon: each waits for an operator's answer (on the machine through
 * `ApprovalFiles`, or remotely through the relay) for at most `timeout` (60 s by default, measured on `Clock`); no
 * answer is a deny. An approval "for the link" lets every later `ask` of the same share link through for as long as
 * the daemon runs (the link's own expiry still ends the guest's access at the relay).
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { randomBytes } from "node:crypto"

/** What an operator sees about a held request (never shown to the caller). */
export interface PendingApproval {
  readonly id: string
  readonly session_id: string
  readonly caller: string
  readonly caller_kind: "key" | "user" | "guest"
  readonly share_id: string | null
  readonly user: string | null
  readonly mode: "exec" | "shell" | "attach"
  /** The command as it will run (exec), or the session kind. */
  readonly command: string
  /** The rule that asked (`file:line`). */
  readonly rule: string
  /** Epoch milliseconds. */
  readonly created_at: number
  readonly expires_at: number
}

export type NewApproval = Omit<PendingApproval, "id" | "created_at" | "expires_at">

/** An operator's answer. `forLink`: the rest of the guest's link lifetime (only meaningful with a share id). */
export interface Answer {
  readonly approve: boolean
  readonly forLink: boolean
  readonly approver: string
}

/** How a held request ended. `approver` is undefined when nobody answered in time. */
export interface Outcome {
  readonly approved: boolean
  readonly approver: string | undefined
  readonly timedOut: boolean
}

export const DEFAULT_TIMEOUT = Duration.seconds(60)

export interface Approvals {
  /** Holds until an answer or the timeout; `onPending` runs once the request is listed (to tell the caller). */
  readonly request: (
    info: NewApproval,
    onPending: (pending: PendingApproval) => Effect.Effect<void>
  ) => Effect.Effect<Outcome>
  /** Answers a pending request; false when there is no such request (answered, expired, unknown). */
  readonly answer: (id: string, answer: Answer) => Effect.Effect<boolean>
  /** Who approved the share link for its lifetime, if anyone did. */
  readonly grantedForLink: (shareId: string | undefined) => Effect.Effect<string | undefined>
  /** The requests waiting now, oldest first; changes as they come and go. */
  readonly pending: SubscriptionRef.SubscriptionRef<ReadonlyArray<PendingApproval>>
}

export const make = (options: { readonly timeout?: Duration.DurationInput } = {}): Effect.Effect<Approvals> =>
  Effect.gen(function* () {
    const timeout = Duration.decode(options.timeout ?? DEFAULT_TIMEOUT)
    const pending = yield* SubscriptionRef.make<ReadonlyArray<PendingApproval>>([])
    const waiting = new Map<string, Deferred.Deferred<Answer>>()
    const links = new Map<string, string>()
    const remove = (id: string) =>
      Effect.zipRight(
        Effect.sync(() => waiting.delete(id)),
        SubscriptionRef.update(pending, (list) => list.filter((p) => p.id !== id))
      )

    const request: Approvals["request"] = (info, onPending) =>
      Effect.suspend(() => {
        const id = `ap_${randomBytes(6).toString("hex")}`
        return Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const entry: PendingApproval = { ...info, id, created_at: now, expires_at: now + Duration.toMillis(timeout) }
          const answered = yield* Deferred.make<Answer>()
          waiting.set(id, answered)
          yield* SubscriptionRef.update(pending, (list) => [...list, entry])
          yield* onPending(entry)
          const got = yield* Deferred.await(answered).pipe(Effect.timeoutOption(timeout))
          if (Option.isNone(got)) return { approved: false, approver: undefined, timedOut: true }
          const answer = got.value
          if (answer.approve && answer.forLink && info.share_id !== null) links.set(info.share_id, answer.approver)
          return { approved: answer.approve, approver: answer.approver, timedOut: false }
        }).pipe(Effect.ensuring(remove(id)))
      })

    return {
      request,
      answer: (id, answer) =>
        Effect.suspend(() => {
          const deferred = waiting.get(id)
          if (deferred === undefined) return Effect.succeed(false)
          return Effect.as(Effect.zipRight(Deferred.succeed(deferred, answer), remove(id)), true)
        }),
      grantedForLink: (shareId) => Effect.sync(() => (shareId === undefined ? undefined : links.get(shareId))),
      pending
    }
  })
