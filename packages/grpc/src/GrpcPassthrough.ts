/**
 * gRPC calls passed through a relay as bytes: a call this process answers with another server's answers, as they
 * came, without reading them. A relay node forwarding a client's exec to the node that holds the machine pays for
 * every answer twice through grpc-js otherwise — reassembled into a message and decoded on the way in, framed and
 * written on the way out — and for bulk output that was most of its CPU (a new buffer per message, the garbage
 * collector behind it). Here the answers' HTTP/2 DATA chunks go from the upstream call's stream to the client's
 * stream as they are: gRPC's framing is the same on both, so message boundaries need not be known.
 *
 * - `Upstream`: a plain HTTP/2 client (`node:http2`) of one gRPC server, one connection kept per address and opened
 *   again after it closes; a call writes length-prefixed messages and hands on its answers' raw chunks, its status
 *   read from the trailers (or a trailers-only answer) as grpc-js would read it.
 * - `downstreamOf`: the HTTP/2 stream under a grpc-js server call, to write such chunks to after the call's response
 *   headers (grpc-js still sends the status). It reaches into grpc-js internals (as `channelOptions.ts` does), and
 *   answers `undefined` when a grpc-js upgrade moved them: the caller then reads the answers the ordinary way.
 * - `withDownstream`: marks a stream that a gRPC server writer may instead write by a function of the call's
 *   downstream (`nodeStream.writeAll`); any other reader reads the stream itself.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as http2 from "node:http2"
import * as channelOptions from "./internal/channelOptions.js"
import * as ResetPacer from "./ResetPacer.js"
import { GrpcStatusError } from "./GrpcStatusError.js"

const UNAVAILABLE = 14
const INTERNAL = 13
const CANCELLED = 1

/** An upstream call's end: OK, or the status it failed with (its trailing metadata kept). */
export type Ending = { readonly ok: true } | { readonly ok: false; readonly error: GrpcStatusError }

/** A call to an upstream server, its answers handed on as raw chunks of length-prefixed messages. */
export interface UpstreamCall {
  /** Writes one message (its protobuf bytes; framed here). `false`: wait for `onDrain` before writing more. */
  readonly write: (message: Uint8Array) => boolean
  /** Calls `f` once the call takes writes again (or never will). */
  readonly onDrain: (f: () => void) => void
  /** Half-closes the call. */
  readonly end: () => void
  /** Resets the call (RST_STREAM CANCEL), paced with the connection's other resets (`ResetPacer`). */
  readonly reset: () => void
  /** Whether the call can still be written. */
  readonly writable: () => boolean
  /**
   * Sets what receives the answers: `data` each chunk as it comes (answer `false` to pause the call until
   * `resume`), `end` once with the status. Chunks that came before are handed on at once.
   */
  readonly listen: (data: (chunk: Buffer) => boolean, end: (ending: Ending) => void) => void
  readonly resume: () => void
}

/** What an upstream call answered first: a chunk of answers (kept for `listen`), or its end without any. */
export type First = { readonly _tag: "Data" } | { readonly _tag: "End"; readonly ending: Ending }

const unavailable = (detail: string) =>
  new GrpcStatusError({ code: UNAVAILABLE, details: `upstream connection: ${detail}` })

const TRANSPORT = new Set(["content-type", "date", "user-agent", "te"])

/** `grpc-status` etc. of a header block, as grpc-js reads them; `undefined` when the block carries no status. */
const statusOf = (headers: http2.IncomingHttpHeaders): Ending | undefined => {
  const raw = headers["grpc-status"]
  if (raw === undefined) return undefined
  const code = Number(raw)
  if (code === 0) return { ok: true }
  let details = ""
  const message = headers["grpc-message"]
  if (typeof message === "string") {
    try {
      details = decodeURIComponent(message)
    } catch {
      details = message
    }
  }
  const metadata: Record<string, string> = {}
  for (const [key, value] of Object.entries(headers)) {
    // Transport headers are not the status's metadata (as `GrpcStatusError.fromUnknown` reads grpc-js's).
    if (value === undefined || key.startsWith(":") || key.startsWith("grpc-") || TRANSPORT.has(key)) continue
    const text = Array.isArray(value) ? value[0]! : value
    metadata[key] = key.endsWith("-bin") ? Buffer.from(text, "base64").toString("utf8") : text
  }
  const error = new GrpcStatusError(
    Object.keys(metadata).length > 0
      ? { code: Number.isInteger(code) ? code : INTERNAL, details, metadata }
      : { code: Number.isInteger(code) ? code : INTERNAL, details }
  )
  return { ok: false, error }
}

/** One upstream gRPC server over a kept HTTP/2 connection (cleartext), opened again once it has closed. */
export interface Upstream {
  /**
   * Opens `path` with `metadata` (ASCII values; `-bin` keys as UTF-8 text) and writes `first` as its first message;
   * fails at once when there is no connection to open it on.
   */
  readonly call: (
    path: string,
    metadata: Readonly<Record<string, string>>,
    first: Uint8Array
  ) => Effect.Effect<UpstreamCall, GrpcStatusError>
  /** Waits for the first answer of `call` (or its end). */
  readonly first: (call: UpstreamCall) => Effect.Effect<First>
  readonly close: () => void
}

/** The window of one call to the upstream server (see `upstream`). */
const STREAM_WINDOW_BYTES = 1024 * 1024

/** How often an idle connection is pinged, and how long a ping may take before the connection is given up. */
const PING_EVERY_MS = 20_000

/** Connects to `address` (`host:port`) when first asked; `close` ends the connection for good. */
export const upstream = (address: string, pacer: ResetPacer.ResetPacer = ResetPacer.make()): Upstream => {
  let session: http2.ClientHttp2Session | undefined
  let closed = false
  let pinger: ReturnType<typeof setInterval> | undefined
  const connection = (): http2.ClientHttp2Session => {
    if (session !== undefined && !session.closed && !session.destroyed) return session
    const s = http2.connect(`http://${address}`, {
      // A call's window is what the owning node may send ahead of this node's client: held here, in this
      // process's heap, while that client reads slower. 1 MiB keeps bulk output at full speed between nodes a
      // millisecond apart; the connection's window (all calls together) stays the large one.
      settings: { initialWindowSize: STREAM_WINDOW_BYTES },
      maxSessionMemory: Number.MAX_SAFE_INTEGER
    })
    s.on("error", () => {})
    s.once("connect", () => {
      try {
        s.setLocalWindowSize(channelOptions.flowControlWindow)
      } catch {
        // A session closing already: its calls fail on their own.
      }
    })
    s.once("close", () => {
      if (session === s) session = undefined
    })
    // A peer that is gone without a word (no FIN, no RST) is noticed by a ping left unanswered.
    s.unref()
    session = s
    pinger ??= setInterval(() => {
      const live = session
      if (live === undefined || live.destroyed) return
      const timer = setTimeout(() => live.destroy(), 10_000).unref()
      try {
        live.ping(() => clearTimeout(timer))
      } catch {
        clearTimeout(timer)
      }
    }, PING_EVERY_MS).unref()
    return s
  }

  const call: Upstream["call"] = (path, metadata, first) =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(unavailable("closed"))
      let stream: http2.ClientHttp2Stream
      try {
        const headers: http2.OutgoingHttpHeaders = {
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers"
        }
        for (const [key, value] of Object.entries(metadata))
          headers[key] = key.endsWith("-bin") ? Buffer.from(value, "utf8").toString("base64") : value
        stream = connection().request(headers, { endStream: false })
      } catch (e) {
        return Effect.fail(unavailable(e instanceof Error ? e.message : String(e)))
      }
      return Effect.succeed(makeCall(stream, first, pacer))
    })

  return {
    call,
    first: firstOf,
    close: () => {
      closed = true
      if (pinger !== undefined) clearInterval(pinger)
      session?.close()
    }
  }
}

/** The chunks and end of a call not listened to yet, and what `firstOf` waits on. */
interface Pending {
  chunks: Array<Buffer>
  ending: Ending | undefined
  onFirst: (() => void) | undefined
}

const pendingOf = new WeakMap<UpstreamCall, Pending>()

const firstOf = (call: UpstreamCall): Effect.Effect<First> =>
  Effect.async<First>((resume) => {
    const pending = pendingOf.get(call)!
    const look = (): boolean => {
      if (pending.chunks.length > 0) return (resume(Effect.succeed({ _tag: "Data" })), true)
      if (pending.ending !== undefined) return (resume(Effect.succeed({ _tag: "End", ending: pending.ending })), true)
      return false
    }
    if (look()) return
    pending.onFirst = () => {
      if (look()) pending.onFirst = undefined
    }
    return Effect.sync(() => {
      pending.onFirst = undefined
    })
  })

/** Calls `f` once `stream` takes writes again, or never will (it closed). */
const afterDrain = (stream: http2.Http2Stream, f: () => void): void => {
  if (!stream.writableNeedDrain || stream.destroyed || stream.writableEnded) return queueMicrotask(f)
  const done = () => {
    stream.off("drain", done)
    stream.off("close", done)
    f()
  }
  stream.on("drain", done)
  stream.on("close", done)
}

/** `message` behind the 5-byte length prefix of an uncompressed gRPC message: one write, one DATA frame. */
const framed = (message: Uint8Array): Buffer => {
  const bytes = Buffer.allocUnsafe(5 + message.byteLength)
  bytes[0] = 0
  bytes.writeUInt32BE(message.byteLength, 1)
  bytes.set(message, 5)
  return bytes
}

const makeCall = (stream: http2.ClientHttp2Stream, first: Uint8Array, pacer: ResetPacer.ResetPacer): UpstreamCall => {
  const pending: Pending = { chunks: [], ending: undefined, onFirst: undefined }
  let onData: ((chunk: Buffer) => boolean) | undefined
  let onEnd: ((ending: Ending) => void) | undefined
  let headersStatus: Ending | undefined
  let httpStatus: number | undefined
  // The connection the call runs on, and whether this side reset the call: a stream of a connection that was lost
  // (the node killed, its host gone) closes with HTTP/2 code CANCEL too, which is no cancellation by anyone.
  const session = stream.session
  let resetHere = false

  const finish = (ending: Ending) => {
    if (pending.ending !== undefined) return
    pending.ending = ending
    if (onEnd !== undefined && pending.chunks.length === 0) onEnd(ending)
    else pending.onFirst?.()
  }
  stream.on("response", (headers) => {
    httpStatus = Number(headers[":status"])
    // A trailers-only answer: the status is in the headers.
    headersStatus = statusOf(headers)
  })
  stream.on("trailers", (trailers) => {
    headersStatus = statusOf(trailers) ?? headersStatus
  })
  stream.on("data", (chunk: Buffer) => {
    if (onData === undefined) {
      pending.chunks.push(chunk)
      // Held until it is listened to: the call's window fills and the upstream server waits.
      stream.pause()
      pending.onFirst?.()
      return
    }
    if (!onData(chunk)) stream.pause()
  })
  stream.on("error", (e: Error) => finish({ ok: false, error: unavailable(e.message) }))
  // The answers' end comes with the status (the trailers, or a trailers-only answer): the call is over, and its
  // side of the stream is ended too (a call still open for writing, such as an exec's, would hold the stream).
  stream.on("end", () => {
    if (!stream.writableEnded) stream.end()
    if (headersStatus !== undefined) finish(headersStatus)
  })
  stream.on("close", () => {
    if (headersStatus !== undefined) return finish(headersStatus)
    if (httpStatus !== undefined && httpStatus !== 200)
      return finish({
        ok: false,
        error: new GrpcStatusError({ code: UNAVAILABLE, details: `HTTP status ${httpStatus}` })
      })
    const code = stream.rstCode
    const lost = !resetHere && (session === undefined || session.destroyed || session.closed)
    finish({
      ok: false,
      error: lost
        ? unavailable("the connection to the node was lost before the call's status came")
        : code === http2.constants.NGHTTP2_CANCEL
          ? new GrpcStatusError({ code: CANCELLED, details: "call cancelled" })
          : unavailable(`the call's stream closed without a status${code ? ` (HTTP/2 code ${code})` : ""}`)
    })
  })

  const write = (message: Uint8Array): boolean => {
    if (stream.destroyed || stream.writableEnded) return false
    return stream.write(framed(message))
  }
  write(first)

  const call: UpstreamCall = {
    write,
    onDrain: (f) => afterDrain(stream, f),
    end: () => {
      if (!stream.destroyed && !stream.writableEnded) stream.end()
    },
    // Paced with the connection's other resets (`ResetPacer`): a burst of them closes the whole connection.
    reset: () => {
      if (stream.destroyed) return
      pacer.pace(() => {
        if (stream.destroyed) return
        resetHere = true
        stream.close(http2.constants.NGHTTP2_CANCEL)
      })
    },
    writable: () => !stream.destroyed && !stream.writableEnded,
    listen: (data, end) => {
      onData = data
      onEnd = end
      const held = pending.chunks
      pending.chunks = []
      let go = true
      for (const chunk of held) go = data(chunk) && go
      if (pending.ending !== undefined) return end(pending.ending)
      if (go) stream.resume()
    },
    resume: () => {
      if (!stream.destroyed) stream.resume()
    }
  }
  pendingOf.set(call, pending)
  return call
}

/** Where a server call's answers may be written as raw chunks of length-prefixed messages. */
export interface Downstream {
  /** Writes `chunk` after the call's response headers; `false`: wait for `onDrain`. */
  readonly write: (chunk: Buffer) => boolean
  readonly onDrain: (f: () => void) => void
}

interface ServerCallInternals {
  readonly call?: {
    readonly stream?: http2.ServerHttp2Stream
    readonly maybeSendMetadata?: () => void
  }
}

/** How much a downstream queues before its writer is asked to wait (per call; HTTP/2's window holds more). */
const BUFFERED_BYTES = 256 * 1024

/** The downstream of a grpc-js server call, or `undefined` when its internals are not where this expects them. */
export const downstreamOf = (serverCall: object): Downstream | undefined => {
  const inner = (serverCall as ServerCallInternals).call
  const stream = inner?.stream
  if (inner === undefined || stream === undefined || typeof inner.maybeSendMetadata !== "function") return undefined
  return {
    write: (chunk) => {
      if (stream.destroyed || stream.writableEnded) return true
      inner.maybeSendMetadata!()
      // Past the stream's own high-water mark (16 KiB: less than one socket read of bulk output) the writer is not
      // asked to wait until `BUFFERED_BYTES` are queued: a pause and resume of the upstream per chunk cost more
      // than the chunk. `drain` still comes once the queue is empty (the write said it was full).
      return stream.write(chunk) || stream.writableLength < BUFFERED_BYTES
    },
    onDrain: (f) => afterDrain(stream, f)
  }
}

/** What a passthrough gets of the server call it answers. */
export interface Target {
  readonly downstream: Downstream
  /** Writes `stream` to the call the ordinary way (a passthrough that decides to answer by itself after all). */
  readonly write: <A>(stream: Stream.Stream<A, GrpcStatusError>) => Effect.Effect<void, GrpcStatusError, Scope.Scope>
  /** Ends the call's request stream for its reader: the answers are over (a bidi call's input then returns). */
  readonly stopInput: () => void
}

/** How a stream marked by `withDownstream` is written to a server call's downstream instead. */
export type Passthrough = (target: Target) => Effect.Effect<void, GrpcStatusError, Scope.Scope>

const PassthroughKey: unique symbol = Symbol.for("@cmdop/grpc/GrpcPassthrough")

/**
 * `stream`, which a gRPC server writer may write by `run` instead (given the call's downstream). `run` ends as the
 * call should: its failure is the call's status as it is (not mapped by the stream's error mapping).
 */
export const withDownstream = <A, E, R>(stream: Stream.Stream<A, E, R>, run: Passthrough): Stream.Stream<A, E, R> =>
  Object.assign(stream, { [PassthroughKey]: run })

/** The passthrough a stream was marked with, if any. */
export const passthroughOf = (stream: object): Passthrough | undefined =>
  (stream as { readonly [PassthroughKey]?: Passthrough })[PassthroughKey]
