/**
 * Interactive sessions as clients reach them: attaching opens a new PTY session on a connected machine (or joins
 * a live one by id, resizing it to the new viewer), then serves the client as one viewer (`ptyViewer.ts`);
 * listing shows the live sessions of a machine with their viewer counts.
 */
import { MachineError } from "@cmdop/domain/MachineError"
import {
  AttachEvent,
  type AttachInput,
  type AttachRequest,
  type PtySession,
  type RelayCallError
} from "@cmdop/domain/RelayClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import type { Caller } from "../Authenticator.js"
import { type CoreContext, linkCaller } from "./coreContext.js"
import * as GateCheck from "./gateCheck.js"
import * as PtyState from "./ptyState.js"
import * as PtyViewer from "./ptyViewer.js"
import type { Connection } from "./sessions.js"
import type { Tenancy } from "./tenancy.js"

export const make = (ctx: CoreContext, tenancy: Tenancy) => {
  const attach = (
    caller: Caller,
    request: AttachRequest,
    input: Stream.Stream<AttachInput>
  ): Stream.Stream<AttachEvent, RelayCallError> =>
    Stream.unwrap(
      Effect.gen(function* () {
        const { conn, machine } = yield* tenancy.onlineConnection(caller, request.machine)
        if (caller.shareId !== undefined)
          yield* ctx.shares.recordUse(
            caller.shareId,
            request.sessionId === undefined ? "attach (new session)" : `attach ${request.sessionId}`
          )
        const existing = request.sessionId === undefined ? undefined : conn.ptys.get(request.sessionId)
        if (request.sessionId !== undefined && !existing)
          return yield* new MachineError({
            reason: "NotFound",
            query: `${machine.hostname} session ${request.sessionId}`,
            candidates: []
          })
        // Joining a live session is the machine's gate's call (mode attach), before the viewer sees anything.
        if (existing) yield* GateCheck.attach(conn, caller, existing.id, ctx.settings.server)
        const state = existing ?? (yield* open(conn, caller, request))
        if (existing && request.cols > 0 && request.rows > 0)
          yield* conn.send({ _tag: "SessionResize", sessionId: state.id, cols: request.cols, rows: request.rows })
        return PtyViewer.view({
          conn,
          state,
          caller,
          request,
          input,
          head: (offset) =>
            AttachEvent.Attached({ machine, sessionId: state.id, created: existing === undefined, offset })
        })
      })
    ).pipe(Stream.withSpan("RelayCore.attach"))

  const listSessions = Effect.fn("RelayCore.listSessions")(function* (caller: Caller, query: string) {
    const { conn, machine } = yield* tenancy.onlineConnection(caller, query)
    const sessions: ReadonlyArray<PtySession> = [...conn.ptys.values()]
      .filter((p) => p.ended === undefined)
      .map((p) => ({
        sessionId: p.id,
        command: p.command,
        cols: p.cols,
        rows: p.rows,
        createdAt: p.createdAt,
        lastActivityAt: p.lastActivityAt,
        viewers: p.viewers.size,
        owner: p.owner
      }))
    return { machine, sessions }
  })

  return { attach, listSessions }
}

/** A new PTY session: recorded on the connection, then opened at the agent. */
const open = (conn: Connection, caller: Caller, request: AttachRequest) =>
  Effect.gen(function* () {
    const state = yield* PtyState.makeState({
      id: randomUUID(),
      owner: caller.principal,
      command: (request.command ?? []).join(" ") || "login shell",
      cols: request.cols,
      rows: request.rows,
      createdAt: yield* Clock.currentTimeMillis,
      window: conn.window
    })
    if (caller.shareId !== undefined) state.shareId = caller.shareId
    conn.ptys.set(state.id, state)
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
