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
import * as PullStream from "@cmdop/grpc/PullStream"
import { ExecEvent, type ExecRequest, type RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import { formatInstant } from "@cmdop/domain/ShareError"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import type { Caller } from "../Authenticator.js"
import { type CoreContext, eachPiece, linkCaller } from "./coreContext.js"
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
    PullStream.unwrapScoped(
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
        // The agent's connection writer was woken by the SessionOpen: let it write that first. The command's run is
        // the long way; `Started`, written next, only has to reach the client before the output does.
        yield* Effect.yieldNow()
        return events(conn, session, ExecEvent.Started({ machine, sessionId: session.id }))
      })
    )

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
    // Built only when the link expires: an error captures a stack trace, and most callers never need this one.
    yield* atExpiry(
      caller,
      Effect.suspend(() =>
        Queue.offer(session.items, {
          _tag: "Lost",
          error: new AccessError({
            reason: "Unauthenticated",
            detail: `share link expired at ${formatInstant(caller.expiresAt ?? 0)}`
          })
        })
      )
    )
    // On the scope itself: `Effect.addFinalizer` would capture the fiber's refs and diff them, on every exec.
    yield* Scope.addFinalizer(
      yield* Effect.scope,
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
  return PullStream.runForEach(options.input, (item) =>
    item._tag === "Signal"
      ? signal(item.signal)
      : item._tag === "Eof"
        ? send(new Uint8Array(0), true)
        : eachPiece(item.data, STDIN_CHUNK, (piece) =>
            Effect.zipRight(session.stdinCredit.take(piece.byteLength), send(piece, false))
          )
  ).pipe(
    // A client whose stdin fails just closes the remote stdin; the command decides what that means.
    Effect.catchAll(() => send(new Uint8Array(0), true)),
    Effect.forkScoped
  )
}

/**
 * Output the client has read is acknowledged to the agent in steps of this much (at most a quarter of the window),
 * and what is left once the session exits. The agent never waits on a step: while less than a step is read and
 * unacknowledged, at least three quarters of its window are still free or on their way to the client.
 */
const ACK_STEP = 1024 * 1024

/** Most items taken from a session's queue in one pull. */
const MAX_BATCH = 64

/**
 * `started`, then the session's events for the client, up to its exit or loss; credit goes back as the client reads
 * output. One plain pull per batch of what is queued (no stream stages of their own): take the items, acknowledge
 * the output among them, stop after the exit. A loss behind events already taken fails the next pull, after those
 * events.
 */
const events = (conn: Connection, session: Session, started: ExecEvent): Stream.Stream<ExecEvent, RelayCallError> =>
  PullStream.fromPull(() => {
    let head: ExecEvent | undefined = started
    let done = false
    let lost: RelayCallError | undefined
    const step = Math.max(1, Math.min(ACK_STEP, Math.floor(conn.window / 4)))
    // Output the client has read and the agent has not been credited for yet.
    let read = 0
    let lastPipe: AgentLink.Pipe = "stdout"
    const acknowledge = () => {
      const acked = read
      read = 0
      FlowControl.credit(session, acked)
      return conn.send({ _tag: "SessionAck", sessionId: session.id, pipe: lastPipe, bytes: acked })
    }
    const next = (
      items: Chunk.Chunk<SessionItem>
    ): Effect.Effect<Chunk.Chunk<ExecEvent>, Option.Option<RelayCallError>> => {
      const out: Array<ExecEvent> = []
      for (const item of items) {
        if (item._tag === "Lost") {
          done = true
          lost = item.error
          break
        }
        const event = item.event
        out.push(event)
        if (event._tag === "Stdout") {
          read += event.data.byteLength
          lastPipe = "stdout"
        } else if (event._tag === "Stderr") {
          read += event.data.byteLength
          lastPipe = "stderr"
        } else if (event._tag === "Exit") {
          done = true
          break
        }
      }
      if (out.length === 0) return Effect.fail(Option.fromNullable(lost))
      const events = Chunk.unsafeFromArray(out)
      // Once the session is over, whatever is left is acknowledged; before, in steps.
      return read >= step || (done && lost === undefined && read > 0)
        ? Effect.as(acknowledge(), events)
        : Effect.succeed(events)
    }
    return Effect.suspend(() => {
      if (head !== undefined) {
        const first = head
        head = undefined
        return Effect.succeed(Chunk.of(first))
      }
      return done
        ? Effect.fail(Option.fromNullable(lost))
        : Effect.flatMap(Queue.takeBetween(session.items, 1, MAX_BATCH), next)
    })
  })
