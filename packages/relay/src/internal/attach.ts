/**
 * Interactive sessions as clients reach them: attaching opens a new PTY session on a connected machine (or joins
 * a live one by id, resizing it to the new viewer), then serves the client as one viewer (`ptyViewer.ts`);
 * listing shows the live sessions of a machine with their viewer counts. A guest reaches only its link's own
 * sessions, or the one session its link was minted for (`guestScope.ts`).
 */
import {
  AttachEvent,
  type AttachInput,
  type AttachRequest,
  type PtySession,
  type RelayCallError
} from "@cmdop/domain/RelayClient"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import type { Caller } from "../Authenticator.js"
import { type CoreContext, linkCaller } from "./coreContext.js"
import * as Approvals from "./approvals.js"
import { AttachNotices } from "./attachNotices.js"
import * as GateCheck from "./gateCheck.js"
import * as GuestScope from "./guestScope.js"
import * as PtyState from "./ptyState.js"
import * as PtyViewer from "./ptyViewer.js"
import { unwrapScopedWithSpan } from "./spannedStream.js"
import type { Connection, PtyState as Pty } from "./sessions.js"
import type { Tenancy } from "./tenancy.js"
import * as TerminalSize from "./terminalSize.js"

export const make = (ctx: CoreContext, tenancy: Tenancy) => {
  const attach = (
    caller: Caller,
    request: AttachRequest,
    input: Stream.Stream<AttachInput>
  ): Stream.Stream<AttachEvent, RelayCallError> =>
    unwrapScopedWithSpan(
      "RelayCore.attach",
      Effect.gen(function* () {
        const { conn, machine } = yield* tenancy.onlineConnection(caller, request.machine)
        yield* TerminalSize.check(request.cols, request.rows, { server: ctx.settings.server, allowZero: true })
        if (request.sessionId === undefined) {
          const refused = GuestScope.refuseNewSession(caller, "open a new shell")
          if (refused) return yield* refused
        }
        const existing = request.sessionId === undefined ? undefined : conn.ptys.get(request.sessionId)
        if (request.sessionId !== undefined && (!existing || !GuestScope.reaches(caller, existing)))
          return yield* GuestScope.noSuchSession(machine.hostname, request.sessionId)
        if (caller.shareId !== undefined)
          yield* ctx.shares.recordUse(
            caller.shareId,
            request.sessionId === undefined ? "attach (new session)" : `attach ${request.sessionId}`
          )
        // While the machine's gate holds the session for an operator, the caller reads that it waits.
        const notices = new AttachNotices()
        const held = () => notices.push(AttachEvent.Notice({ text: GateCheck.waitingNotice(machine.hostname) }))
        const session = Effect.gen(function* () {
          // Joining a live session is the machine's gate's call (mode attach), before the viewer sees anything.
          if (existing) yield* GateCheck.attach(conn, caller, existing.id, ctx.settings.server, held)
          const state = existing ?? (yield* open(conn, caller, request, held))
          if (existing && request.cols > 0 && request.rows > 0)
            yield* conn.send({ _tag: "SessionResize", sessionId: state.id, cols: request.cols, rows: request.rows })
          return view(state)
        })
        const view = (state: Pty) =>
          PtyViewer.view({
            server: ctx.settings.server,
            conn,
            state,
            caller,
            request,
            input,
            notices,
            head: (offset) =>
              AttachEvent.Attached({ machine, sessionId: state.id, created: existing === undefined, offset })
          })
        // The notices while the session opens (the gate may hold it), then the viewer (which takes later ones).
        const opening = yield* Effect.forkScoped(session)
        return PullStream.concat(notices.untilOpened(opening), PullStream.unwrapScoped(Fiber.join(opening)))
      })
    )

  const listSessions = Effect.fn("RelayCore.listSessions")(function* (caller: Caller, query: string) {
    const { conn, machine } = yield* tenancy.onlineConnection(caller, query)
    const sessions: ReadonlyArray<PtySession> = [...conn.ptys.values()]
      .filter((p) => p.ended === undefined && GuestScope.reaches(caller, p))
      .map((p) =>
        GuestScope.listed(caller, {
          sessionId: p.id,
          command: p.command,
          cols: p.cols,
          rows: p.rows,
          createdAt: p.createdAt,
          lastActivityAt: p.lastActivityAt,
          viewers: p.viewers.size,
          owner: p.owner
        })
      )
    return { machine, sessions }
  })

  return { attach, listSessions }
}

/** A new PTY session: recorded on the connection, then opened at the agent (`onHeld`: the gate holds it). */
const open = (conn: Connection, caller: Caller, request: AttachRequest, onHeld: () => void) =>
  Effect.gen(function* () {
    const state = yield* PtyState.makeState({
      id: randomUUID(),
      owner: caller.principal,
      ...(caller.shareId === undefined ? {} : { shareId: caller.shareId }),
      command: (request.command ?? []).join(" ") || "login shell",
      cols: request.cols,
      rows: request.rows,
      createdAt: yield* Clock.currentTimeMillis,
      window: conn.window
    })
    conn.ptys.set(state.id, state)
    yield* Approvals.whileHeld(conn, state.id, onHeld)
    yield* conn.send({
      _tag: "SessionOpen",
      sessionId: state.id,
      spec: {
        _tag: "Pty",
        cols: request.cols,
        rows: request.rows,
        term: request.term ?? "xterm-256color",
        command: request.command ?? []
      },
      caller: linkCaller(caller)
    })
    return state
  })
