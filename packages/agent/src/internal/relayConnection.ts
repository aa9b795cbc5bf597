/**
 * The daemon's wire edge: the one place in the agent that speaks gRPC. It dials the relay and calls
 * `AgentService.Connect` / `Register` with the key as a bearer token; the service definition of `@cmdop/protocol`
 * carries the domain's agent link (`@cmdop/domain/AgentLink`), so no wire type is seen here.
 *
 * A relay message the agent cannot read (a kind from a newer relay) is skipped, except a `SessionOpen` of an
 * unknown kind, which is answered with a lone `SessionExit` (126) so the relay does not wait for a session that
 * never runs.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import type { Machine } from "@cmdop/domain/Machine"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as AgentService from "@cmdop/protocol/AgentService"
import * as RelayAddress from "@cmdop/protocol/RelayAddress"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/** Where and how to reach the relay. */
export interface Target {
  readonly server: string
  readonly apiKey: Redacted.Redacted<string>
  readonly tls?: GrpcClient.Tls | undefined
}

/** One Connect stream, in the domain's terms. */
export interface Connection {
  readonly send: (message: AgentLink.AgentMessage) => Effect.Effect<void, GrpcStatusError>
  /** The relay's messages; ends when the relay ends the stream. */
  readonly incoming: Stream.Stream<AgentLink.RelayMessage, GrpcStatusError>
}

/** What `Register` answers: the machine as the relay registered it, in which workspace. */
export interface Registered {
  readonly machine: Machine
  readonly workspaceName: string
}

/** The agent's channel options on top of `@cmdop/grpc`'s. */
const linkOptions = {
  // A DNS name with several addresses (the nodes of a cluster) is tried in shuffled order, so a fleet of agents
  // spreads over them and one whose node died reaches another on its next attempt.
  "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ pick_first: { shuffleAddressList: true } }] }),
  // No message is kept for a retry (none is configured): grpc-js otherwise holds each message of up to 256 KiB in a
  // retry buffer and reports it written on the next tick, before HTTP/2 has sent it. The agent's output is framed
  // in the buffer it was read into (`GrpcFrameRoom`), which goes back to the pool once written (`GrpcWritten`):
  // that must wait until HTTP/2 wrote the bytes.
  "grpc.per_rpc_retry_buffer_size": 0
}

/** `host:port` and TLS for a server address; `https://` / `grpcs://` mean TLS, `http://` / `grpc://` do not. */
export const dialOptions = (server: string, tls?: GrpcClient.Tls): GrpcClient.Options => {
  const target = RelayAddress.parse(server, RelayAddress.caFromEnv())
  const chosen = tls ?? target.tls
  const base = { address: target.address, channelOptions: linkOptions }
  return chosen === undefined ? base : { ...base, tls: chosen }
}

/** The relay addresses a server setting names: one, or the nodes of a cluster as `a:50051,b:50051`. */
export const addresses = (server: string): ReadonlyArray<string> => {
  const list = server
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  return list.length === 0 ? [server] : list
}

/** Where the next attempt at each server list goes, for the life of the process. */
const cursors = new Map<string, number>()

/**
 * The relay nodes a cluster told us about in `Welcome` (its live nodes' addresses), by server setting: an agent
 * started with one node's address fails over to the others when that node dies. Each is kept spelled the way the
 * node that told it was reached (`RelayAddress.spelledLike`).
 */
const learned = new Map<string, ReadonlyArray<string>>()

/**
 * The addresses tried for `server`: the ones it names, then the ones its relays told about, each node once. A hint
 * is a bare `host:port`; it is dialed the way the agent reached the relay that sent it: `https://` (with the same
 * CA, `CMDOP_TLS_CA`, or the daemon's `tls` option) when that relay was reached over TLS, since a cluster's nodes
 * serve alike, and plaintext when it was reached in plaintext. Spellings of one node (`https://h:p`, `h:p`) count
 * as one, the first kept: so a dead node named as `https://h:p` is not tried a second time as a plaintext hint.
 */
export const candidates = (server: string): ReadonlyArray<string> => {
  const seen = new Set<string>()
  const list: Array<string> = []
  for (const address of [...addresses(server), ...(learned.get(server) ?? [])]) {
    const node = RelayAddress.nodeKey(address)
    if (seen.has(node)) continue
    seen.add(node)
    list.push(address)
  }
  return list
}

/**
 * Remembers the relay nodes a `Welcome` names, spelled like `reached`, the address it came from (the latest list
 * wins; an empty one keeps what we knew).
 */
const learn = (server: string, reached: string, message: AgentLink.RelayMessage) => {
  if (message._tag === "Welcome" && message.relayAddresses !== undefined && message.relayAddresses.length > 0)
    learned.set(
      server,
      message.relayAddresses.slice(0, 64).map((hint) => RelayAddress.spelledLike(hint, reached))
    )
}

/**
 * The address of the next connection attempt to `server`, one of `candidates(server)`: each attempt moves on to the
 * next node of the list, the first from a random one, so a fleet spreads over the nodes and an agent whose node
 * died tries another at once (under the daemon's usual backoff and jitter). The list may have shrunk since the last
 * attempt (a node left the cluster's hint): the cursor wraps around it.
 */
export const nextAddress = (server: string): Effect.Effect<string> => {
  const list = candidates(server)
  if (list.length === 1) return Effect.succeed(list[0]!)
  return Effect.map(Random.nextIntBetween(0, list.length), (start) => {
    const at = (cursors.get(server) ?? start) % list.length
    cursors.set(server, (at + 1) % list.length)
    return list[at]!
  })
}

const authorization = (target: Target) => ({ authorization: `Bearer ${Redacted.value(target.apiKey)}` })

/**
 * Opens the Connect stream to `address`, one node of `target.server` (`nextAddress`); it is cancelled when the scope
 * closes. The nodes its `Welcome` names are learned for `target.server`, spelled like `address`.
 */
export const connect = (target: Target, address: string): Effect.Effect<Connection, GrpcStatusError, Scope.Scope> =>
  Effect.gen(function* () {
    const client = yield* GrpcClient.make(AgentService.definition, dialOptions(address, target.tls))
    const channel = yield* client.bidiChannel("connect", { metadata: authorization(target) })
    const send = (message: AgentLink.AgentMessage) => channel.send(message)
    // One stage per chunk of messages, not three per message: every keystroke comes this way.
    const incoming = PullStream.mapPull(channel.responses, (pull) =>
      Effect.flatMap(pull, (chunk) => {
        const messages: Array<AgentLink.RelayMessage> = []
        let refusals: Array<Effect.Effect<void, GrpcStatusError>> | undefined
        for (const message of chunk) {
          if (message._tag === "Unreadable") continue
          if (message._tag === "UnknownOpen") {
            ;(refusals ??= []).push(refuseUnknownOpen(message.sessionId, send))
            continue
          }
          learn(target.server, address, message)
          messages.push(message)
        }
        const readable = Chunk.unsafeFromArray(messages)
        return refusals === undefined
          ? Effect.succeed(readable)
          : Effect.mapError(Effect.as(Effect.all(refusals, { discard: true }), readable), Option.some)
      })
    )
    return { send, incoming }
  }).pipe(Effect.withSpan("RelayConnection.connect", { attributes: { server: target.server, address } }))

/** A `SessionOpen` of a kind this agent does not know is answered at once, so the relay does not wait for it. */
const refuseUnknownOpen = (sessionId: string, send: Connection["send"]) =>
  send({
    _tag: "SessionExit",
    sessionId,
    exitCode: 126,
    timedOut: false,
    error: "the session asks for neither exec nor pty",
    durationMs: 0
  })

/** One `Register` call with this machine's identity. */
export const register = (
  target: Target,
  identity: AgentLink.MachineIdentity,
  timeout: Duration.DurationInput
): Effect.Effect<Registered, GrpcStatusError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const address = yield* nextAddress(target.server)
      const client = yield* GrpcClient.make(AgentService.definition, dialOptions(address, target.tls))
      const response = yield* client.unary("register", { identity }, { metadata: authorization(target), timeout })
      // The relay always names the machine it registered; an answer without one is a broken relay.
      if (response.machine === undefined)
        return yield* Effect.dieMessage("the relay's Register answer names no machine")
      return { machine: response.machine, workspaceName: response.workspaceName }
    })
  ).pipe(Effect.withSpan("RelayConnection.register", { attributes: { server: target.server } }))
