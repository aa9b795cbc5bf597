/**
 * Exec sessions: a client's command run on a connected machine, bridged over the agent's stream. The relay opens
 * the session at the agent, forwards stdin under the session's credit window, and hands the agent's output to the
 * client, returning credit to the agent only as the client consumes it.
 *
 * How an exec session ends:
 *  - the agent reports its exit: the client sees `Exit` and the end of its stream;
 *  - the client goes away (stream interrupted): the agent is told `SessionClose` and kills the process tree;
 *  - the agent's stream drops: the client's stream fails with `RelayError` Unavailable;
 *  - a guest's link expires or is revoked: the client's stream fails with `AccessError` Unauthenticated.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { ExecEvent, type ExecRequest, type RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import { formatInstant } from "@cmdop/domain/ShareError"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import type { Caller } from "../Authenticator.js"
import { type CoreContext, linkCaller, pieces } from "./coreContext.js"
import * as FlowControl from "./flowControl.js"
import { atExpiry } from "./guestExpiry.js"
import { knownSignal, SIGNALS } from "./exitStatus.js"
import * as GuestScope from "./guestScope.js"
import * as Limits from "./limits.js"
import type { Connection, Session, SessionItem } from "./sessions.js"
import type { Tenancy } from "./tenancy.js"

/**
 * Input of an exec session beyond its start: stdin chunks, then its end; and signals for the remote process
 * (named as `INT`, `SIGINT`; an unknown name ends the session with `InvalidRequest`).
 */
export type ExecInput =
  | { readonly _tag: "Stdin"; readonly data: Uint8Array }
  | { readonly _tag: "Eof" }
  | { readonly _tag: "Signal"; readonly signal: string }

/** Stdin goes to the agent in pieces of at most this many bytes, so credit is taken in small steps. */
const STDIN_CHUNK = 64 * 1024

export const make = (ctx: CoreContext, tenancy: Tenancy) => {
  const { server } = ctx.settings

  const exec = <E>(
    caller: Caller,
    request: ExecRequest,
    input: Stream.Stream<ExecInput, E> | undefined,
    options: { readonly stdin?: boolean } = {}
  ): Stream.Stream<ExecEvent, RelayCallError> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        if (request.argv.length === 0 || request.argv[0] === "")
          return yield* new RelayError({
            reason: "InvalidRequest",
            server,
            detail: "exec needs a command: pass the program to run after the machine name"
          })
        yield* Limits.checkExecRequest(server, request)
        const { conn, machine } = yield* tenancy.onlineConnection(caller, request.machine)
        const refused = GuestScope.refuseNewSession(caller, "run commands")
        if (refused) return yield* refused
        if (caller.shareId !== undefined) yield* ctx.shares.recordUse(caller.shareId, `exec ${request.argv[0]}`)
        const withStdin = options.stdin ?? input !== undefined
        const session = yield* openSession(conn, caller, request, withStdin)
        if (input !== undefined) yield* forwardStdin({ server, conn, session, caller, input, withStdin })
        return Stream.concat(
          Stream.succeed(ExecEvent.Started({ machine, sessionId: session.id })),
          events(conn, session)
        )
      })
    ).pipe(Stream.withSpan("RelayCore.exec"))

  return { exec }
}

/**
 * Registers the session on the connection and asks the agent to start it; closing the scope before the agent
 * reported its exit tells the agent to close it.
 */
const openSession = (
  conn: Connection,
  caller: Caller,
  request: ExecRequest,
  withStdin: boolean
): Effect.Effect<Session, never, Scope.Scope> =>
  Effect.gen(function* () {
    const session: Session = {
      ...(caller.shareId === undefined ? { holder: caller } : { shareId: caller.shareId, guest: caller }),
      id: randomUUID(),
      items: yield* Queue.unbounded<SessionItem>(),
      stdinCredit: yield* Effect.makeSemaphore(conn.window),
      exited: false
    }
    conn.sessions.set(session.id, session)
    yield* atExpiry(
      caller,
      Queue.offer(session.items, {
        _tag: "Lost",
        error: new AccessError({
          reason: "Unauthenticated",
          detail: `share link expired at ${formatInstant(caller.expiresAt ?? 0)}`
        })
      })
    )
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        conn.sessions.delete(session.id)
        return session.exited
          ? Effect.void
          : conn.send({ _tag: "SessionClose", sessionId: session.id, reason: "client went away" })
      })
    )
    yield* conn.send({
      _tag: "SessionOpen",
      sessionId: session.id,
      spec: {
        _tag: "Exec",
        argv: request.argv,
        shell: request.shell ?? false,
        timeoutMs: request.timeoutMs ?? 0,
        stdin: withStdin,
        env: request.env ?? {},
        ...(request.cwd === undefined || request.cwd === "" ? {} : { cwd: request.cwd })
      },
      caller: linkCaller(caller)
    })
    return session
  })

/**
 * Forwards the client's stdin to the agent under the session's credit (its end, or failure, closes stdin), and
 * its signals. Without `withStdin` only signals go on.
 */
const forwardStdin = <E>(options: {
  readonly server: string
  readonly conn: Connection
  readonly session: Session
  readonly caller: Caller
  readonly input: Stream.Stream<ExecInput, E>
  readonly withStdin: boolean
}) => {
  const { caller, conn, session, withStdin } = options
  // Nothing goes after the end of stdin (signals still do).
  let stdinOpen = withStdin
  const send = (data: Uint8Array, eof: boolean) =>
    Effect.suspend(() => {
      if (!stdinOpen) return Effect.void
      if (eof) stdinOpen = false
      return conn.send({ _tag: "SessionInput", sessionId: session.id, data, eof, caller: linkCaller(caller) })
    })
  const signal = (name: string) => {
    const known = knownSignal(name)
    return known !== undefined
      ? conn.send({ _tag: "SessionSignal", sessionId: session.id, signal: known })
      : Queue.offer(session.items, {
          _tag: "Lost",
          error: new RelayError({
            reason: "InvalidRequest",
            server: options.server,
            detail: `unknown signal "${name}"; send one of ${[...SIGNALS].join(", ")} (without SIG)`
          })
        })
  }
  return options.input.pipe(
    Stream.runForEach((item) =>
      item._tag === "Signal"
        ? signal(item.signal)
        : item._tag === "Eof"
          ? send(new Uint8Array(0), true)
          : Effect.forEach(
              pieces(item.data, STDIN_CHUNK),
              (piece) => Effect.zipRight(session.stdinCredit.take(piece.byteLength), send(piece, false)),
              { discard: true }
            )
    ),
    // A client whose stdin fails just closes the remote stdin; the command decides what that means.
    Effect.catchAll(() => send(new Uint8Array(0), true)),
    Effect.forkScoped
  )
}

/**
 * Output the client has read is acknowledged to the agent in steps of this much (at most a quarter of the window),
 * or all at once when the client has read everything received: fewer acks, and the agent's messages grow to match.
 */
const ACK_STEP = 256 * 1024

/**
 * The session's events for the client, up to its exit or loss; credit goes back as the client reads output. One
 * plain pull per event (no stream stages of their own): take the next item, acknowledge output, stop after the exit.
 */
const events = (conn: Connection, session: Session): Stream.Stream<ExecEvent, RelayCallError> =>
  Stream.suspend(() => {
    let done = false
    const step = Math.max(1, Math.min(ACK_STEP, Math.floor(conn.window / 4)))
    // Output the client has read and the agent has not been credited for yet.
    let read = 0
    const output = (pipe: AgentLink.Pipe, event: ExecEvent, bytes: number) => {
      read += bytes
      if (read < step && read < FlowControl.unacknowledged(session)) return Effect.succeed(Chunk.of(event))
      const acked = read
      read = 0
      FlowControl.credit(session, acked)
      return Effect.as(conn.send({ _tag: "SessionAck", sessionId: session.id, pipe, bytes: acked }), Chunk.of(event))
    }
    const next = (item: SessionItem): Effect.Effect<Chunk.Chunk<ExecEvent>, Option.Option<RelayCallError>> => {
      if (item._tag === "Lost") {
        done = true
        return Effect.fail(Option.some(item.error))
      }
      const event = item.event
      switch (event._tag) {
        case "Stdout":
          return output("stdout", event, event.data.byteLength)
        case "Stderr":
          return output("stderr", event, event.data.byteLength)
        case "Exit":
          done = true
          return Effect.succeed(Chunk.of(event))
        default:
          return Effect.succeed(Chunk.of(event))
      }
    }
    const pull = Effect.suspend(() =>
      done ? Effect.fail(Option.none()) : Effect.flatMap(Queue.take(session.items), next)
    )
    return Stream.repeatEffectChunkOption(pull)
  })
