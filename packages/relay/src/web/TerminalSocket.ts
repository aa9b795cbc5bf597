/**
 * The WebSocket behind the browser terminal: `GET /s/<token>/ws` on the relay's HTTP port. Only a share link opens
 * it, and `TerminalUpgrade.ts` checks the link (and the page's origin, and the link's stream cap) before the
 * upgrade; the socket then drives one `RelayCore.attach` on the link's machine: a new PTY session (within the
 * link's session cap), or the one the page names (a reload joins its shell again).
 *
 * Frames, browser → relay:
 *  - text `{"type":"start","cols":80,"rows":24,"sessionId"?:"…"}`: first and once; opens (or joins) the session.
 *    A `sessionId` the machine no longer has is ignored: a new session opens instead. A link scoped to one
 *    session always joins that session.
 *  - binary: keystrokes, raw bytes for the PTY (text `{"type":"input","data":"…"}` is the same, UTF-8 encoded).
 *  - text `{"type":"resize","cols":120,"rows":40}`: the window changed.
 * Input frames may follow `start` at once; they reach the PTY in order.
 *
 * Frames, relay → browser:
 *  - text `{"type":"attached","machine":{"id","hostname","name"},"sessionId","created"}`: first, once.
 *  - binary: terminal output, raw PTY bytes (the session's recent screen first, then live output).
 *  - text `{"type":"ended","reason","exitCode","signal"?,"cut"?,"message"}`: the session is over for this page
 *    (`reason` `exited`, `closed`, `idle`, `revoked`, `expired`, …; `message` says it for a person; `cut: true` when
 *    the page was cut off, its link revoked or expired, and `exitCode` means nothing); then close 1000.
 *  - text `{"type":"error","message"}`: the page cannot have a terminal (bad token, machine offline, protocol
 *    violation, relay failure); then close with one of `CloseCode`. `message` is for a person, never a trace.
 *
 * How it ends: the session ends or the viewer is cut (revoked or expired link): `ended`, close 1000. The browser
 * closes the socket (tab closed, navigation): the viewer detaches, the session keeps running on the machine
 * (listed, joinable). The machine drops: `error`, close 4004. The relay stops: the socket closes (1006 at the
 * browser).
 *
 * Backpressure: output is pulled from the relay's ring only as the socket drains (`bufferedAmount` under a high
 * water mark); a browser that falls more than a ring behind skips ahead, as every viewer does. Input waits for
 * the machine's credit in `attach`; more than `MAX_PENDING_INPUT` bytes waiting closes the socket (4000).
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Socket from "@effect/platform/Socket"
import { type AttachEvent, AttachInput, type AttachRequest, type RelayCallError } from "@cmdop/domain/RelayClient"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Admission from "../internal/admission.js"
import type { RelayCore } from "../RelayCore.js"

/** Close codes the relay uses (4000–4999 are the application's). */
export const CloseCode = {
  /** The session ended (`ended` frame sent). */
  Ended: 1000,
  /** The relay failed internally. */
  Internal: 1011,
  /** The browser broke the frame protocol (or sent too much input at once). */
  Protocol: 4000,
  /** The token is not accepted (unknown, expired, revoked, rotated away). */
  Unauthorized: 4001,
  /** The token may not do this. */
  Forbidden: 4003,
  /** The machine is unknown, offline, or dropped during the session. */
  Unavailable: 4004,
  /** A relay limit was reached (the link's terminal sessions). */
  Exhausted: 4029
} as const

/** Input bytes allowed to wait for the machine before the socket is closed. */
export const MAX_PENDING_INPUT = 8 * 1024 * 1024
/** Output is held back while the socket has more than this many bytes unsent... */
const HIGH_WATER = 1024 * 1024
/** ...until it is down to this. */
const LOW_WATER = 256 * 1024
/** A page that sends no `start` this long after connecting is closed. */
const START_TIMEOUT = "30 seconds"

const Dimension = Schema.Int.pipe(Schema.between(1, 1000))

/** A control frame from the browser. */
export const ClientFrame = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("start"),
    cols: Dimension,
    rows: Dimension,
    sessionId: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)))
  }),
  Schema.Struct({ type: Schema.Literal("input"), data: Schema.String }),
  Schema.Struct({ type: Schema.Literal("resize"), cols: Dimension, rows: Dimension })
)
export type ClientFrame = typeof ClientFrame.Type
type StartFrame = Extract<ClientFrame, { readonly type: "start" }>

const decodeClientFrame = Schema.decodeUnknownEither(Schema.parseJson(ClientFrame))

/** A control frame to the browser. */
export type ServerFrame =
  | {
      readonly type: "attached"
      readonly machine: { readonly id: string; readonly hostname: string; readonly name: string }
      readonly sessionId: string
      readonly created: boolean
    }
  | {
      readonly type: "ended"
      readonly reason: string
      readonly exitCode: number
      readonly signal?: string
      readonly cut?: true
      readonly message: string
    }
  | { readonly type: "error"; readonly message: string }

/** What the page should know about the credential. */
export interface Target {
  /** The share token from the URL. */
  readonly token: Redacted.Redacted<string>
}

/** How a session's end reads on the page. */
export const endedMessage = (ended: {
  readonly reason: string
  readonly exitCode: number
  readonly signal?: string
}) => {
  switch (ended.reason) {
    case "revoked":
      return "share link revoked"
    case "expired":
      return "share link expired"
    case "exited":
    case "exit":
      return ended.signal !== undefined
        ? `the shell was killed by ${ended.signal}`
        : `the shell exited with code ${ended.exitCode}`
    case "closed":
      return "the session was closed"
    case "idle":
      return "the session was idle for too long"
    default:
      return ended.reason
  }
}

type Outcome =
  | { readonly _tag: "Ended"; readonly frame: ServerFrame & { readonly type: "ended" } }
  | { readonly _tag: "Failed"; readonly code: number; readonly reason: string; readonly message: string }
  | { readonly _tag: "Detached" }

const failed = (code: number, reason: string, message: string): Outcome => ({ _tag: "Failed", code, reason, message })

const outcomeOf = (error: RelayCallError): Outcome => {
  switch (error._tag) {
    case "AccessError":
      return error.reason === "Unauthenticated"
        ? failed(CloseCode.Unauthorized, "unauthorized", error.message)
        : failed(CloseCode.Forbidden, "forbidden", error.message)
    case "MachineError":
      return failed(CloseCode.Unavailable, "unavailable", error.message)
    case "RelayError":
      return error.reason === "Internal"
        ? failed(CloseCode.Internal, "internal error", "the relay failed; try again later")
        : error.reason === "ResourceExhausted"
          ? failed(CloseCode.Exhausted, "limit reached", error.detail)
          : failed(CloseCode.Unavailable, "unavailable", error.detail)
  }
}

const inputSize = (item: AttachInput) => (item._tag === "Data" ? item.data.byteLength : 0)

/**
 * The browser's frames as they arrive: input and resizes queued in order (at most `MAX_PENDING_INPUT` bytes
 * waiting), the `start` frame, and the first protocol violation. `onFrame` also captures the underlying WebSocket
 * (only provided to handlers), whose `bufferedAmount` paces the output.
 */
const incomingFrames = Effect.gen(function* () {
  const input = yield* Queue.unbounded<AttachInput>()
  const start = yield* Deferred.make<StartFrame>()
  const violation = yield* Deferred.make<string>()
  const encoder = new TextEncoder()
  let pendingInput = 0
  let started = false
  let captured = false
  let raw: globalThis.WebSocket | undefined

  const offer = (item: AttachInput) => {
    pendingInput += inputSize(item)
    if (pendingInput > MAX_PENDING_INPUT) Deferred.unsafeDone(violation, Exit.succeed("too much input at once"))
    else Queue.unsafeOffer(input, item)
  }
  // Frames are handled synchronously, so input keeps its order.
  const onFrame = (data: string | Uint8Array) => {
    if (typeof data !== "string") offer(AttachInput.Data({ data }))
    else {
      const frame = decodeClientFrame(data)
      if (Either.isLeft(frame)) Deferred.unsafeDone(violation, Exit.succeed("unreadable frame"))
      else if (frame.right.type === "start") {
        if (started) Deferred.unsafeDone(violation, Exit.succeed("a second start frame"))
        started = true
        Deferred.unsafeDone(start, Exit.succeed(frame.right))
      } else if (frame.right.type === "input") offer(AttachInput.Data({ data: encoder.encode(frame.right.data) }))
      else offer(AttachInput.Resize({ cols: frame.right.cols, rows: frame.right.rows }))
    }
    if (captured) return
    captured = true
    return Effect.map(Effect.serviceOption(Socket.WebSocket), (ws) => {
      raw = Option.getOrUndefined(ws)
    })
  }
  /** The queued input as the session reads it (what it took no longer counts as waiting). */
  const keystrokes = Stream.fromQueue(input).pipe(
    Stream.tap((item) => Effect.sync(() => (pendingInput -= inputSize(item))))
  )
  return { input, start, violation, onFrame, keystrokes, socket: () => raw }
})
type IncomingFrames = Effect.Effect.Success<typeof incomingFrames>

/** The socket's writing side: every write gives up once the browser is gone. */
interface Outgoing {
  readonly send: (chunk: Uint8Array | string | Socket.CloseEvent) => Effect.Effect<void>
  readonly sendFrame: (frame: ServerFrame) => Effect.Effect<void>
  /** Waits while the socket holds more than the high water mark, until it is down to the low one. */
  readonly drained: Effect.Effect<void>
}

/**
 * Serves one browser terminal on an upgraded socket until the session ends or the browser goes away. Never
 * fails: every failure becomes an `error` frame and a close code.
 */
export const serve = (core: RelayCore["Type"], socket: Socket.Socket, target: Target): Effect.Effect<void> =>
  Effect.scoped(
    Effect.gen(function* () {
      const write = yield* socket.writer
      const frames = yield* incomingFrames
      // The socket's life: it ends when either side closes it (or the connection drops).
      const running = yield* socket.runRaw(frames.onFrame).pipe(Effect.exit, Effect.forkScoped)
      const closed = Effect.asVoid(Fiber.await(running))
      // Writes after the browser went away must not wait for a socket that never reopens.
      const send = (chunk: Uint8Array | string | Socket.CloseEvent) =>
        Effect.raceFirst(Effect.ignore(write(chunk)), closed)
      const out: Outgoing = {
        send,
        sendFrame: (frame) => send(JSON.stringify(frame)),
        drained: Effect.gen(function* () {
          const ws = frames.socket()
          if (ws === undefined || ws.bufferedAmount <= HIGH_WATER) return
          while (ws.bufferedAmount > LOW_WATER && ws.readyState === 1) yield* Effect.sleep("10 millis")
        })
      }
      const outcome = yield* Effect.raceAll([
        session(core, target, frames, out).pipe(
          Effect.catchAll((e) => Effect.succeed(outcomeOf(e))),
          Effect.catchAllDefect((defect) =>
            Effect.as(
              Effect.logError("browser terminal failed", defect),
              failed(CloseCode.Internal, "internal error", "the relay failed; try again later")
            )
          )
        ),
        Effect.map(Deferred.await(frames.violation), (why) => failed(CloseCode.Protocol, "protocol error", why)),
        Effect.as(closed, { _tag: "Detached" } as Outcome)
      ])
      // The browser is gone or leaving: its input ends, which detaches the viewer; the session keeps running.
      yield* Queue.shutdown(frames.input)
      yield* close(out, outcome)
      // Let the closing handshake finish; the socket's scope closes it hard after that.
      yield* closed.pipe(Effect.timeoutOption("2 seconds"))
    })
  )

/** Authenticates, waits for `start`, attaches (joining the named session if it still exists) and forwards. */
const session = (
  core: RelayCore["Type"],
  target: Target,
  frames: IncomingFrames,
  out: Outgoing
): Effect.Effect<Outcome, RelayCallError> =>
  Effect.gen(function* () {
    const caller = yield* core.authenticate(target.token)
    const machine = caller.kind === "guest" ? caller.machineId : undefined
    if (machine === undefined || machine === "")
      return failed(CloseCode.Forbidden, "forbidden", "only a share link opens the browser terminal")
    const first = yield* Deferred.await(frames.start).pipe(Effect.timeoutOption(START_TIMEOUT))
    if (Option.isNone(first)) return failed(CloseCode.Protocol, "no start frame", "the page sent no start frame")
    // A new session counts against the link's cap; one the page names is joined, or replaced within the cap.
    const withinCap = Admission.checkNewPty(core, caller, machine)
    const request = (sessionId: string | undefined): AttachRequest => ({
      machine,
      cols: first.value.cols,
      rows: first.value.rows,
      ...(sessionId === undefined ? {} : { sessionId })
    })
    const fresh = Stream.unwrap(Effect.as(withinCap, core.attach(caller, request(undefined), frames.keystrokes)))
    // A link for one session (pair debugging) joins that session, whatever the page asks for.
    const events =
      caller.sessionId !== undefined
        ? core.attach(caller, request(caller.sessionId), frames.keystrokes)
        : first.value.sessionId === undefined
          ? fresh
          : core
              .attach(caller, request(first.value.sessionId), frames.keystrokes)
              .pipe(
                Stream.catchAll((e) => (e._tag === "MachineError" && e.reason === "NotFound" ? fresh : Stream.fail(e)))
              )
    return yield* forward(events, out)
  })

/** Writes the session's events to the page (output batched per chunk, paced by the socket); how it ended. */
const forward = (events: Stream.Stream<AttachEvent, RelayCallError>, out: Outgoing) =>
  Effect.gen(function* () {
    let ended: Outcome | undefined
    yield* Stream.runForEachChunk(events, (chunk) =>
      Effect.gen(function* () {
        let output: Array<Uint8Array> = []
        const flush = Effect.suspend(() => {
          if (output.length === 0) return Effect.void
          const bytes = output.length === 1 ? output[0]! : Buffer.concat(output)
          output = []
          return Effect.zipRight(out.send(bytes), out.drained)
        })
        for (const event of Chunk.toReadonlyArray(chunk)) {
          if (event._tag === "Output") {
            output.push(event.data)
            continue
          }
          yield* flush
          // A notice (the gate holds the session) is a line on the page's terminal, outside the session's output.
          if (event._tag === "Notice") yield* out.send(new TextEncoder().encode(`\r\n${event.text}\r\n`))
          else if (event._tag === "Attached")
            yield* out.sendFrame({
              type: "attached",
              machine: { id: event.machine.id, hostname: event.machine.hostname, name: event.machine.name },
              sessionId: event.sessionId,
              created: event.created
            })
          else ended = { _tag: "Ended", frame: endedFrame(event) }
        }
        yield* flush
      })
    )
    return ended ?? ({ _tag: "Detached" } as Outcome)
  })

const endedFrame = (event: Extract<AttachEvent, { readonly _tag: "Ended" }>) =>
  ({
    type: "ended",
    reason: event.reason,
    exitCode: event.exitCode,
    ...(event.signal === undefined ? {} : { signal: event.signal }),
    ...(event.cut === true ? { cut: true as const } : {}),
    message: endedMessage(event)
  }) as const

/** The last frame and the close code for an outcome. */
const close = (out: Outgoing, outcome: Outcome) => {
  switch (outcome._tag) {
    case "Ended":
      return Effect.zipRight(
        out.sendFrame(outcome.frame),
        out.send(new Socket.CloseEvent(CloseCode.Ended, "session ended"))
      )
    case "Failed":
      return Effect.zipRight(
        out.sendFrame({ type: "error", message: outcome.message }),
        out.send(new Socket.CloseEvent(outcome.code, outcome.reason))
      )
    case "Detached":
      return out.send(new Socket.CloseEvent(CloseCode.Ended, "detached"))
  }
}

/**
 * The `GET /s/:token/ws` route for requests that are not WebSocket upgrades (upgrades never reach the router:
 * `TerminalUpgrade.install` takes them): 426.
 */
export const handler = HttpServerResponse.text("this address is the WebSocket of a share link's terminal\n", {
  status: 426,
  headers: { upgrade: "websocket" }
})
