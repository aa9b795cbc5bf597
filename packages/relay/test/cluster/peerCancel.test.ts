/**
 * How a forwarded call whose client went away ends, over real gRPC on loopback: `peerCall` asks the owning node's
 * `PeerServer` to end it in the call itself (`Cancel`, then the half-close), and the owning node ends the session
 * as on a reset and answers CANCELLED. Nothing resets a stream of the shared peer connection, which Node's HTTP/2
 * server would close (GOAWAY) after 1,000 resets in a burst, failing every other call on it. Only an owning node
 * that does not act on the `Cancel` gets the reset, after the fallback delay.
 *
 * The owning node's core is a stand-in that reads its input as the real core does (the stdin forwarding of an exec,
 * the viewer's input of an attach), echoes stdin, counts the sessions it ran and ended, and ends an attach when its
 * input ends (the detach).
 */
import { AttachEvent, type AttachInput, ExecEvent } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import * as GrpcPassthrough from "@cmdop/grpc/GrpcPassthrough"
import * as ResetPacer from "@cmdop/grpc/ResetPacer"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import { type GrpcStatusError, recordToMetadata } from "@cmdop/grpc/GrpcStatusError"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as PeerService from "@cmdop/protocol/PeerService"
import * as ForwardPassthrough from "@cmdop/relay/cluster/forwardPassthrough"
import * as PeerCall from "@cmdop/relay/cluster/peerCall"
import type { PeerClient } from "@cmdop/relay/cluster/PeerClients"
import * as PeerSecret from "@cmdop/relay/cluster/PeerSecret"
import * as PeerServer from "@cmdop/relay/cluster/PeerServer"
import { Counters } from "@cmdop/relay/cluster/PeerStats"
import type { ExecInput } from "@cmdop/relay/RelayCore"
import type * as RelayCore from "@cmdop/relay/RelayCore"
import { eventually } from "@cmdop/test-helpers/Eventually"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as http2 from "node:http2"

const secret = Redacted.make("peer-cancel-test-secret-0123456789abcdef")
const metadata = PeerSecret.metadata(secret)
const D = PeerService.definition

const caller: PeerService.ForwardedCaller = {
  workspaceId: "w",
  workspaceName: "acme",
  kind: "key",
  principal: "ck_live_abcd",
  credential: Redacted.make("ck_live_abcdef")
}
const execStart: PeerService.ExecMessage = {
  _tag: "Start",
  caller,
  fromNode: "node-1",
  request: { machine: "box", argv: ["sleep", "10"], env: {} },
  stdin: true
}
const attachStart: PeerService.AttachMessage = {
  _tag: "Start",
  caller,
  fromNode: "node-1",
  request: { machine: "box", cols: 80, rows: 24 }
}

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)

/** What the stand-in core saw. */
interface Seen {
  started: number
  ended: number
}

/**
 * The owning node's core: each session answers once at its start, then echoes its stdin (exec) or input (attach);
 * an attach ends when its input does. `readsInput: false`: a session that never reads its input (so it never sees
 * a `Cancel`), as behind an owning node too old to know it.
 */
const standIn = (seen: Seen, readsInput = true): RelayCore.RelayCore["Type"] => {
  const session = <A, I, E>(
    input: Stream.Stream<I, E>,
    first: A,
    echo: (i: I) => A | undefined,
    last: A | undefined
  ): Stream.Stream<A, never> =>
    PullStream.unwrapScoped(
      Effect.gen(function* () {
        seen.started++
        yield* Effect.addFinalizer(() => Effect.sync(() => seen.ended++))
        const answers = yield* Queue.unbounded<A>()
        if (readsInput)
          yield* Effect.forkScoped(
            Effect.zipRight(
              PullStream.runForEach(input, (i) => {
                const a = echo(i)
                return a === undefined ? Effect.void : Queue.offer(answers, a)
              }),
              last === undefined ? Effect.void : Effect.zipRight(Queue.offer(answers, last), Queue.shutdown(answers))
            )
          )
        return PullStream.prepend(first, PullStream.fromQueue(answers))
      })
    )
  const core: Pick<RelayCore.RelayCore["Type"], "server" | "exec" | "attach"> = {
    server: "node-2",
    exec: (_caller, _request, input) =>
      session<ExecEvent, ExecInput, unknown>(
        input ?? PullStream.empty,
        ExecEvent.Stdout({ data: bytes("ready") }),
        (i) => (i._tag === "Stdin" ? ExecEvent.Stdout({ data: i.data }) : undefined),
        undefined
      ),
    attach: (_caller, _request, input) =>
      session<AttachEvent, AttachInput, never>(
        input,
        AttachEvent.Output({ offset: 0, data: bytes("ready") }),
        (i) => (i._tag === "Data" ? AttachEvent.Output({ offset: 0, data: i.data }) : undefined),
        AttachEvent.Ended({ exitCode: 0, reason: "detached" })
      )
  }
  // PeerServer's exec and attach reach only these three.
  return core as RelayCore.RelayCore["Type"]
}

/**
 * The owning node's peer port over `core`, counting the HTTP/2 connections it accepted and the streams a client
 * reset (RST_STREAM CANCEL, grpc-js's cancel), as its HTTP/2 server sees them.
 */
const owningNode = (core: RelayCore.RelayCore["Type"]) =>
  Effect.gen(function* () {
    const counters = new Counters()
    const seen = { connections: 0, resets: 0, resetAt: [] as Array<number> }
    const server = yield* GrpcServer.make({
      services: [PeerServer.service(core, secret, counters)],
      host: "127.0.0.1",
      port: 0,
      shutdownTimeout: "100 millis",
      onListening: (listeners) => {
        for (const listener of listeners) {
          listener.on("connection", () => seen.connections++)
          listener.on("stream", (stream: http2.ServerHttp2Stream) =>
            stream.once("close", () => {
              if (stream.rstCode === http2.constants.NGHTTP2_CANCEL) {
                seen.resets++
                seen.resetAt.push(performance.now())
              }
            })
          )
        }
      }
    })
    const client = yield* GrpcClient.make(D, { address: server.address })
    return { client, counters, seen, address: server.address }
  })

const noInput: PeerCall.Rest = { input: PullStream.empty, onFailure: [], halfClose: false }

const openExec = (client: PeerClient, rest = noInput, fallbackMs?: number) =>
  PeerCall.open<ExecEvent, GrpcStatusError>(client, D.exec, metadata, execStart, rest, identity, fallbackMs)

const openAttach = (client: PeerClient, rest: PeerCall.Rest) =>
  PeerCall.open<AttachEvent, GrpcStatusError>(client, D.attach, metadata, attachStart, rest, identity)

/** Opens a call, waits for the owning node's first answer, and leaves (the scope closes: the client went away). */
const abandon = <A>(open: Effect.Effect<PeerCall.Opened<A, GrpcStatusError>, GrpcStatusError, Scope.Scope>) =>
  Effect.scoped(Effect.flatMap(open, (call) => call.first))

const settled = (what: string, holds: () => boolean) =>
  eventually(
    what,
    Effect.sync(() => (holds() ? true : undefined)),
    { timeout: "20 seconds" }
  )

describe("a forwarded call whose client went away", () => {
  it.scopedLive(
    "1,200 plain execs abandoned in a burst on one peer channel end on the owning node, none reset; the channel and another tenant's session live on",
    () =>
      Effect.gen(function* () {
        const sessions: Seen = { started: 0, ended: 0 }
        const { client, counters, seen } = yield* owningNode(standIn(sessions))
        // Another tenant's session on the same channel, alive before and after the burst.
        const stdin = yield* Queue.unbounded<PeerService.ExecMessage>()
        const other = yield* PeerCall.open<ExecEvent, GrpcStatusError>(
          client,
          D.exec,
          metadata,
          execStart,
          { input: PullStream.fromQueue(stdin), onFailure: [], halfClose: false },
          identity
        )
        yield* other.first
        const answers = yield* PullStream.toPull(other.answers)
        assert.deepStrictEqual(Chunk.toReadonlyArray(Chunk.map(yield* answers, (e) => e._tag)), ["Stdout"])

        // Node's HTTP/2 server answers more than 1,000 resets in a burst with a GOAWAY, which fails every call on
        // the connection: with the scope's close resetting the call, the calls in flight and `other` fail here.
        yield* Effect.forEach(Array.from({ length: 1_200 }), () => abandon(openExec(client)), {
          concurrency: 50,
          discard: true
        })
        yield* settled("every abandoned session ended on the owning node", () => sessions.ended === 1_200)
        yield* settled("only the other tenant's call still served", () => counters.servedLive === 1)

        yield* Queue.offer(stdin, { _tag: "Stdin", data: bytes("still here") })
        const echoed = Chunk.toReadonlyArray(yield* answers)
        assert.deepStrictEqual(
          echoed.map((e) => (e._tag === "Stdout" ? text(e.data) : e._tag)),
          ["still here"]
        )
        yield* abandon(openExec(client))
        assert.deepInclude(seen, { connections: 1, resets: 0 })
      }),
    120_000
  )

  it.scopedLive(
    "the owning node answers a Cancel with CANCELLED (the call's end, not a reset) and ends the session",
    () =>
      Effect.gen(function* () {
        const sessions: Seen = { started: 0, ended: 0 }
        const { client, seen } = yield* owningNode(standIn(sessions))
        // The forwarding node's side by hand: the start, the first answer, then `Cancel` and the half-close.
        const status = yield* Effect.async<{ readonly code: number; readonly details: string }>((resume) => {
          const call = client.raw.makeBidiStreamRequest(
            D.exec.path,
            D.exec.requestSerialize,
            D.exec.responseDeserialize,
            recordToMetadata(metadata),
            {}
          )
          call.on("error", () => {})
          call.once("data", () => {
            call.write(PeerService.cancel)
            call.end()
          })
          call.on("status", (s) => resume(Effect.succeed(s)))
          call.write(execStart)
          return Effect.sync(() => call.cancel())
        }).pipe(Effect.timeout("5 seconds"))
        assert.strictEqual(status.code, 1) // CANCELLED
        assert.strictEqual(status.details, "cancelled by the forwarding node")
        yield* settled("the session ended", () => sessions.ended === 1)
        assert.deepInclude(seen, { connections: 1, resets: 0 })
      })
  )

  it.scopedLive("an attach ends the same way, and one whose client detached first ends by its half-close", () =>
    Effect.gen(function* () {
      const sessions: Seen = { started: 0, ended: 0 }
      const { client, counters, seen } = yield* owningNode(standIn(sessions))
      const open = yield* Queue.unbounded<PeerService.AttachMessage>()
      // Input still open: the scope's close sends `Cancel`.
      yield* abandon(openAttach(client, { input: PullStream.fromQueue(open), onFailure: [], halfClose: true }))
      // Input ended (the client detached): the call is half-closed at once, and the owning node ends it.
      yield* abandon(openAttach(client, { input: PullStream.empty, onFailure: [], halfClose: true }))
      yield* settled("both sessions ended", () => sessions.ended === 2 && counters.servedLive === 0)
      assert.deepInclude(seen, { connections: 1, resets: 0 })
    })
  )

  it.scopedLive("a call the owning node does not end after the Cancel is reset after the fallback delay", () =>
    Effect.gen(function* () {
      const sessions: Seen = { started: 0, ended: 0 }
      const { client, seen } = yield* owningNode(standIn(sessions, false))
      const started = Date.now()
      yield* abandon(openExec(client, noInput, 600))
      yield* Effect.sleep("300 millis")
      assert.strictEqual(sessions.ended, 0, "the session still runs before the fallback delay")
      assert.strictEqual(seen.resets, 0)
      yield* settled("the reset session ended", () => sessions.ended === 1)
      assert.isAtLeast(Date.now() - started, 600)
      assert.deepInclude(seen, { connections: 1, resets: 1 })
    })
  )
})

/**
 * A gRPC client's forwarded call, passed through as bytes (`forwardPassthrough.ts`), over its own HTTP/2 connection
 * to the owning node: the same rule, the call ended in-band when its client goes away.
 */
describe("a passed-through forwarded call whose client went away", () => {
  /** Runs a passthrough of `start` until its first answer reached the client, then leaves (the scope closes). */
  const abandonPassed = (
    upstream: GrpcPassthrough.Upstream,
    address: string,
    method: typeof D.exec | typeof D.attach,
    start: unknown,
    rest = noInput,
    fallbackMs?: number
  ) =>
    Effect.scoped(
      Effect.gen(function* () {
        let wake: (() => void) | undefined
        let answers = 0
        const target: GrpcPassthrough.Target = {
          downstream: {
            write: () => {
              answers++
              wake?.()
              return true
            },
            onDrain: (f) => f()
          },
          write: () => Effect.dieMessage("not retried here"),
          stopInput: () => {}
        }
        const run = ForwardPassthrough.passthrough({
          found: undefined,
          address,
          upstream: () => upstream,
          path: method.path,
          metadata,
          encode: (message) => method.requestSerialize(message as never),
          start,
          rest,
          count: Effect.void,
          failure: (e) => new RelayError({ reason: "Internal", server: "node-1", detail: e.message }),
          warn: () => Effect.void,
          stale: () => false,
          ...(fallbackMs === undefined ? {} : { fallbackMs }),
          again: () => Effect.dieMessage("not retried here")
        })
        yield* Effect.forkScoped(Effect.scoped(run(target)))
        yield* Effect.async<void>((resume) => {
          if (answers > 0) return resume(Effect.void)
          wake = () => resume(Effect.void)
        })
      })
    )

  it.scopedLive(
    "1,200 passed-through execs abandoned in a burst end on the owning node, none reset, on one connection",
    () =>
      Effect.gen(function* () {
        const sessions: Seen = { started: 0, ended: 0 }
        const { counters, seen, address } = yield* owningNode(standIn(sessions))
        const upstream = GrpcPassthrough.upstream(address)
        yield* Effect.addFinalizer(() => Effect.sync(() => upstream.close()))
        yield* Effect.forEach(
          Array.from({ length: 1_200 }),
          () => abandonPassed(upstream, address, D.exec, execStart),
          {
            concurrency: 50,
            discard: true
          }
        )
        yield* settled("every abandoned session ended on the owning node", () => sessions.ended === 1_200)
        yield* settled("no call still served", () => counters.servedLive === 0)
        // An attach with its input still open ends the same way.
        const open = yield* Queue.unbounded<PeerService.AttachMessage>()
        yield* abandonPassed(upstream, address, D.attach, attachStart, {
          input: PullStream.fromQueue(open),
          onFailure: [],
          halfClose: true
        })
        yield* settled("the attach ended", () => sessions.ended === 1_201)
        assert.deepInclude(seen, { connections: 1, resets: 0 })
      }),
    120_000
  )

  it.scopedLive(
    "calls whose owning node does not read the Cancel are reset after the fallback, paced: never a burst on the shared connection",
    () =>
      Effect.gen(function* () {
        const sessions: Seen = { started: 0, ended: 0 }
        // Sessions that never read their input (stdin held behind the agent's credit): the Cancel goes unseen.
        const { counters, seen, address } = yield* owningNode(standIn(sessions, false))
        const pacer = ResetPacer.make({ burst: 40, perSecond: 200 })
        const upstream = GrpcPassthrough.upstream(address, pacer)
        yield* Effect.addFinalizer(() => Effect.sync(() => upstream.close()))
        yield* Effect.forEach(
          Array.from({ length: 240 }),
          () => abandonPassed(upstream, address, D.exec, execStart, noInput, 100),
          { concurrency: 60, discard: true }
        )
        yield* settled("every stuck call reset and its session ended", () => sessions.ended === 240)
        assert.strictEqual(seen.resets, 240)
        assert.strictEqual(seen.connections, 1)
        assert.strictEqual(counters.servedLive, 0)
        // No more than the burst and the pace allow in any 200 ms, as the owning node sees them: slack for 100 ms of
        // either process stalled on a loaded machine (what was sent meanwhile arrives together; 88 were seen once in
        // CI against 85 allowed with 25 ms). Unpaced, all 240 come within a few milliseconds of the fallback.
        const at = seen.resetAt
        for (let i = 0; i < at.length; i++) {
          const inWindow = at.filter((t) => t >= at[i]! && t < at[i]! + 200).length
          assert.isAtMost(inWindow, 40 + 200 * 0.2 + 200 * 0.1, `${inWindow} resets within 200 ms`)
        }
      }),
    60_000
  )
})
