/**
 * The relay's side of the machine's gate (the gate itself runs on the agent): asking it whether a caller may join a
 * live PTY session (an `Attach` open, answered by one `SessionExit`; a caller gone before the answer closes it), and
 * recording a gate refusal in the share link's own audit as `denied by gate` — never with the command.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import type { ShareService } from "@cmdop/domain/ShareService"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import { randomUUID } from "node:crypto"
import type { Caller } from "../Authenticator.js"
import * as Approvals from "./approvals.js"
import { linkCaller } from "./coreContext.js"
import type { Connection, Session, SessionItem } from "./sessions.js"

/** How long the relay waits for the gate's answer to an attach (an `ask` may hold it for a minute). */
const ATTACH_CHECK_TIMEOUT = "90 seconds"

/** What the share link's use log says about a refused session. */
export const DENIED = "denied by gate"

/** Records a gate refusal for the share link `shareId` (nothing for other callers). */
export const recordDenied = (shares: ShareService["Type"], shareId: string | undefined): Effect.Effect<void> =>
  shareId === undefined ? Effect.void : shares.recordUse(shareId, DENIED)

/** What the caller of a held shell or attach reads while the machine's gate waits for an operator. */
export const waitingNotice = (hostname: string) => `waiting for approval on ${hostname}…`

/**
 * Succeeds when the machine's gate lets `caller` join PTY session `target`; fails with its refusal otherwise.
 * `onHeld` runs when the gate holds the check for an operator's answer.
 */
export const attach = (
  conn: Connection,
  caller: Caller,
  target: string,
  server: string,
  onHeld: () => void = () => {}
): Effect.Effect<void, RelayCallError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const session: Session = {
        ...(caller.shareId === undefined ? {} : { shareId: caller.shareId, guest: caller }),
        id: randomUUID(),
        items: yield* Queue.unbounded<SessionItem>(),
        stdinCredit: yield* Effect.makeSemaphore(0),
        exited: false
      }
      conn.sessions.set(session.id, session)
      // A caller gone before the answer (the gate may hold the check for an operator): the agent stops waiting.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          conn.sessions.delete(session.id)
          return session.exited
            ? Effect.void
            : conn.send({ _tag: "SessionClose", sessionId: session.id, reason: "client went away" })
        })
      )
      yield* Approvals.whileHeld(conn, session.id, onHeld)
      yield* conn.send({
        _tag: "SessionOpen",
        sessionId: session.id,
        spec: { _tag: "Attach", sessionId: target },
        caller: linkCaller(caller)
      })
      for (;;) {
        const item = yield* Queue.take(session.items).pipe(
          Effect.timeoutFail({
            duration: ATTACH_CHECK_TIMEOUT,
            onTimeout: () =>
              new RelayError({ reason: "Unavailable", server, detail: `${conn.hostname} did not answer the attach` })
          })
        )
        if (item._tag === "Lost") return yield* Effect.fail(item.error)
        if (item.event._tag !== "Exit") continue
        if (item.event.exitCode === 0 && item.event.error === undefined) return
        return yield* new AccessError({
          reason: "PermissionDenied",
          detail: item.event.error ?? `${conn.hostname} refused the attach`
        })
      }
    })
  )
