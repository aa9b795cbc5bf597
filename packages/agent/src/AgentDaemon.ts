/**
 * The agent daemon (`cmdop agent start`): keeps ONE outbound `AgentService.Connect` stream to the relay and serves
 * sessions over it with `AgentEngine`; and `register` (`cmdop agent register`).
 *
 * The connection loop, forever:
 *  1. resolve credential and relay afresh with the `CredentialResolver` service (flags, environment, workspace
 *     store, OAuth session: see `@cmdop/domain/CredentialResolver`);
 *  2. status CONNECTING; dial the relay; call Connect with `authorization: Bearer <key>`; send `Hello` (identity
 *     from `agent.json`, our window, the PTY sessions alive right now); wait for `Welcome` (the relay fails the call
 *     instead when it refuses us, e.g. UNAUTHENTICATED / PERMISSION_DENIED: logged, retried with backoff, since the
 *     user may fix the key);
 *  3. status ONLINE; backoff reset; run the engine with Welcome's window and heartbeat interval, while the
 *     credential is re-resolved every second: when key, relay or workspace changed (`workspace use other`), the
 *     stream is dropped and the loop reconnects at once, so the next Hello registers under the new workspace;
 *  4. when the stream ends or fails (or the relay falls silent): status CONNECTING with the error, backoff (full
 *     jitter, cut short by a credential change), retry.
 *
 * The resolver must read the workspace store anew on every `resolve` (a long-running daemon has to notice another
 * process's `workspace use`); `DaemonCredential.layer` is such a resolver.
 *
 * Interactive (PTY) sessions belong to the daemon, not to a connection: one `PtySessions` service is built per `run`,
 * before the loop, so shells keep running across reconnects. Every Hello lists the sessions alive at that moment
 * (`Hello.ptySessions`); the relay re-adopts them and asks for their output with `SessionReplay`. A session that
 * ended while no stream was up is not listed and its end is never reported.
 *
 * Every session passes the machine's gate first (`Gate.ts`): the `permissions.yaml` at `Options.permissions` (default
 * `~/.cmdop/permissions.yaml`), watched for edits while the daemon runs; its state and pending approvals are shared
 * with the `cmdop agent …` commands through `GateFiles`.
 *
 * Every session is recorded in the machine's audit log, `<stateDir>/audit.log` (`AuditLog`, built once per `run`;
 * what the engine writes there is described in `AgentEngine`).
 *
 * A dead daemon leaves nothing running: every command and shell it starts is listed in `ChildLedger`
 * (`<stateDir>/children`) while it runs; the ledger's watchdog kills them all when the daemon dies, even by SIGKILL,
 * and a starting daemon kills whatever a previous one left listed.
 *
 * Stopping: interrupting the fiber running `run` cancels the stream (the relay sees it close and marks the machine
 * offline at once), kills every session (exec and PTY), writes status STOPPED and removes `cmdop.pid`.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as Secret from "@cmdop/domain/Secret"
import type * as GrpcClient from "@cmdop/grpc/GrpcClient"
import { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import * as PullStream from "@cmdop/grpc/PullStream"
import type { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as grpc from "@grpc/grpc-js"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as AgentEngine from "./AgentEngine.js"
import * as AgentIdentity from "./AgentIdentity.js"
import * as AuditLog from "./AuditLog.js"
import * as ChildLedger from "./ChildLedger.js"
import * as Backoff from "./Backoff.js"
import * as DaemonStatus from "./DaemonStatus.js"
import * as DaemonGate from "./internal/daemonGate.js"
import * as RelayConnection from "./internal/relayConnection.js"
import * as StatusWriter from "./internal/statusWriter.js"
import { ProcessRunner } from "./ProcessRunner.js"
import * as PtySessions from "./PtySessions.js"

export { dialOptions, type Registered } from "./internal/relayConnection.js"

/** Reported to the relay in `MachineIdentity.agentVersion`. */
export const AGENT_VERSION = "0.1.0"

/** The output window the agent offers in Hello (the relay may lower it in Welcome). */
export const DEFAULT_WINDOW = 8 * 1024 * 1024

/** Used when Welcome names no heartbeat interval. */
export const DEFAULT_HEARTBEAT = Duration.seconds(30)

export interface Options {
  /** Credential overrides, as from `--api-key` / `--server` / `--workspace`. Default none. */
  readonly overrides?: CredentialResolver.Overrides
  /** Output window offered in Hello. Default `DEFAULT_WINDOW`. */
  readonly window?: number
  /** Reconnect delays. Default 0.5 s doubling to 30 s, full jitter. */
  readonly backoff?: Backoff.Policy
  /** Overrides Welcome's heartbeat interval. */
  readonly heartbeatInterval?: Duration.DurationInput
  /** How long the relay may stay silent before the stream counts as dead. Default 3 heartbeat intervals. */
  readonly relaySilenceTimeout?: Duration.DurationInput
  /** How often the credential is re-resolved to notice a change. Default 1 second. */
  readonly credentialPollInterval?: Duration.DurationInput
  /** How long to wait for Welcome after Hello. Default 15 seconds. */
  readonly handshakeTimeout?: Duration.DurationInput
  /** TLS for the relay connection; by default a `https://` / `grpcs://` server address enables TLS. */
  readonly tls?: GrpcClient.Tls
  readonly agentVersion?: string
  /** Interactive sessions: idle timeout, ring size, shell. Defaults as in `PtySessions.make`. */
  readonly pty?: PtySessions.Options
  /** The audit log's rotation. Defaults as in `AuditLog.make`. */
  readonly audit?: AuditLog.Options
  /** The machine's gate (`Gate.ts`): its `permissions.yaml` (default `~/.cmdop/permissions.yaml`). */
  readonly permissions?: string
}

/** The relay did not complete the handshake (no Welcome in time, or another message first). */
export class HandshakeError extends Data.TaggedError("HandshakeError")<{ readonly detail: string }> {
  override get message(): string {
    return `handshake failed: ${this.detail}`
  }
}

/** Why one connection attempt ended. */
type Ended =
  | { readonly _tag: "CredentialChanged" }
  | { readonly _tag: "StreamEnded" }
  | { readonly _tag: "Failed"; readonly error: GrpcStatusError | HandshakeError | AgentEngine.RelaySilentError }

/** What the daemon needs from the app that runs it. */
export type Requirements = ProcessRunner | FileSystem.FileSystem | CmdopPaths | CredentialResolver.CredentialResolver

type Status = Effect.Effect<void, never, FileSystem.FileSystem | CmdopPaths>

/**
 * Runs the daemon until interrupted (see the module header). Fails only at start: `agent.json` unusable, or another
 * daemon holds `cmdop.pid`.
 */
export const run = (
  options: Options = {}
): Effect.Effect<never, AgentIdentity.AgentIdentityError | DaemonStatus.DaemonStatusError, Requirements> =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* DaemonStatus.acquirePid
      const ledger = yield* ChildLedger.start
      const identity = yield* AgentIdentity.loadOrCreate()
      const backoff = yield* Backoff.make(options.backoff ?? Backoff.defaultPolicy)
      const status = StatusWriter.make(identity)
      yield* Effect.addFinalizer(() => status.set("STOPPED", {}))
      // Closed before STOPPED is written: the shells are gone by then.
      const ptys = yield* PtySessions.make({ ...options.pty, ledger })
      const runner = ChildLedger.recording(ledger, yield* ProcessRunner)
      const auditLog = yield* AuditLog.make(options.audit)
      // Named as the relay names it in `connect approvals` and the notices it writes itself: by hostname.
      const gate = yield* DaemonGate.start({ path: options.permissions, auditLog, machine: identity.hostname })
      const services = { ptys, auditLog, gate }
      const overrides = options.overrides ?? {}
      const poll = options.credentialPollInterval ?? Duration.seconds(1)
      yield* Effect.logInfo("agent daemon started").pipe(Effect.annotateLogs("machine_id", identity.machine_id))

      // Why the last attempt failed: `agent status` keeps saying it while the next attempt connects.
      let lastError: string | undefined
      for (;;) {
        const resolved = yield* Effect.either(resolveTarget(overrides))
        const changed = credentialChanged(overrides, fingerprint(resolved), poll)
        if (resolved._tag === "Left") {
          const message = resolved.left.message
          lastError = message
          yield* status.set("CONNECTING", { last_error: message })
          yield* Effect.logError(`cannot resolve the relay credential: ${message}`)
          yield* Effect.raceFirst(backoff.next, changed)
          continue
        }
        const target = resolved.right
        // One node of the server list (or of the nodes a cluster told us about): the log and the status name it.
        const address = yield* RelayConnection.nextAddress(target.server)
        yield* status.set("CONNECTING", {
          ...describe(target, address),
          ...(lastError === undefined ? {} : { last_error: lastError })
        })
        const online = (welcome: AgentLink.Welcome): Status =>
          Effect.zipRight(
            Effect.zipRight(
              Effect.sync(() => {
                lastError = undefined
              }),
              backoff.reset
            ),
            Effect.zipRight(
              status.set("ONLINE", {
                ...describe(target, address),
                workspace: target.workspace ?? welcome.workspaceName
              }),
              Effect.logInfo(`connected to relay ${address}`).pipe(
                Effect.annotateLogs({ workspace: welcome.workspaceName, key: Secret.mask(target.apiKey) })
              )
            )
          )
        const ended = yield* connectOnce(target, address, identity, options, services, { online, changed }).pipe(
          Effect.provideService(ProcessRunner, runner)
        )
        lastError = yield* report(ended, target, address, status)
        if (ended._tag === "CredentialChanged") yield* backoff.reset
        else yield* Effect.raceFirst(backoff.next, changed)
      }
    })
  )

/**
 * Records how an attempt at `address` ended in the status, then logs it (so whoever saw the log line finds it in the
 * status); the status's `last_error`, if the attempt failed.
 */
const report = (
  ended: Ended,
  target: CredentialResolver.Resolved,
  address: string,
  status: StatusWriter.StatusWriter
): Effect.Effect<string | undefined, never, FileSystem.FileSystem | CmdopPaths> => {
  switch (ended._tag) {
    case "CredentialChanged":
      return Effect.as(Effect.logInfo("credential, relay or workspace changed: reconnecting"), undefined)
    case "StreamEnded": {
      const message = "the relay closed the stream"
      return Effect.as(
        Effect.zipRight(
          status.set("CONNECTING", { ...describe(target, address), last_error: message }),
          Effect.logWarning(`relay ${address} closed the stream`)
        ),
        message
      )
    }
    case "Failed": {
      const message = explain(ended.error, target, address)
      return Effect.as(
        Effect.zipRight(
          status.set("CONNECTING", { ...describe(target, address), last_error: message }),
          isAuthFailure(ended.error) ? Effect.logError(message) : Effect.logWarning(message)
        ),
        message
      )
    }
  }
}

/**
 * `cmdop agent register`: one `AgentService.Register` call with this machine's identity (created on first use;
 * `hostname` / `name` update it) under the resolved credential. Records the relay in `agent.json` on success.
 */
export const register = (
  options: {
    readonly hostname?: string | undefined
    readonly name?: string | undefined
    readonly overrides?: CredentialResolver.Overrides
    readonly timeout?: Duration.DurationInput
    readonly tls?: GrpcClient.Tls
    readonly agentVersion?: string
  } = {}
): Effect.Effect<
  RelayConnection.Registered,
  AgentIdentity.AgentIdentityError | CredentialResolver.ResolveError | GrpcStatusError,
  FileSystem.FileSystem | CmdopPaths | CredentialResolver.CredentialResolver
> =>
  Effect.gen(function* () {
    const target = yield* resolveTarget(options.overrides ?? {})
    const identity = yield* AgentIdentity.loadOrCreate({ hostname: options.hostname, name: options.name })
    const response = yield* RelayConnection.register(
      { server: target.server, apiKey: target.apiKey, tls: options.tls },
      AgentIdentity.toMachineIdentity(identity, options.agentVersion ?? AGENT_VERSION),
      options.timeout ?? Duration.seconds(15)
    )
    yield* AgentIdentity.loadOrCreate({ server: target.server })
    return response
  }).pipe(Effect.withSpan("AgentDaemon.register"))

/** The credential and relay the daemon uses, from the `CredentialResolver` service. */
export const resolveTarget = (
  overrides: CredentialResolver.Overrides
): Effect.Effect<CredentialResolver.Resolved, CredentialResolver.ResolveError, CredentialResolver.CredentialResolver> =>
  Effect.flatMap(CredentialResolver.CredentialResolver, (resolver) => resolver.resolve(overrides))

/** One Connect call to `address` (one node of `target.server`), from dial to its end. */
const connectOnce = (
  target: CredentialResolver.Resolved,
  address: string,
  identity: AgentIdentity.Identity,
  options: Options,
  services: {
    readonly ptys: PtySessions.PtySessions["Type"]
    readonly auditLog: AuditLog.AuditLog["Type"]
    readonly gate: AgentEngine.Options["gate"]
  },
  hooks: {
    readonly online: (welcome: AgentLink.Welcome) => Status
    readonly changed: Effect.Effect<void, never, CredentialResolver.CredentialResolver>
  }
): Effect.Effect<Ended, never, Requirements> => {
  const attempt = Effect.gen(function* () {
    const connection = yield* RelayConnection.connect(
      { server: target.server, apiKey: target.apiKey, tls: options.tls },
      address
    )
    const window = options.window ?? DEFAULT_WINDOW
    const version = options.agentVersion ?? AGENT_VERSION
    const gateConfigured = services.gate === undefined ? undefined : yield* services.gate.gate.configured
    yield* connection.send(hello(identity, version, window, yield* services.ptys.list, gateConfigured))
    const [welcome, rest] = yield* handshake(connection.incoming, options.handshakeTimeout ?? Duration.seconds(15))
    yield* hooks.online(welcome)
    const heartbeatInterval =
      options.heartbeatInterval ??
      (welcome.heartbeatSeconds > 0 ? Duration.seconds(welcome.heartbeatSeconds) : DEFAULT_HEARTBEAT)
    const served = AgentEngine.serve(
      { incoming: rest, send: connection.send },
      {
        window: welcome.window > 0 ? welcome.window : window,
        heartbeatInterval,
        relaySilenceTimeout: options.relaySilenceTimeout ?? Duration.times(Duration.decode(heartbeatInterval), 3),
        ptySessions: services.ptys,
        auditLog: services.auditLog,
        ...(services.gate === undefined ? {} : { gate: services.gate })
      }
    )
    return yield* Effect.raceFirst(
      Effect.as(served, { _tag: "StreamEnded" } as Ended),
      Effect.as(hooks.changed, { _tag: "CredentialChanged" } as Ended)
    )
  })
  return Effect.scoped(attempt).pipe(
    Effect.catchAll((error): Effect.Effect<Ended> => Effect.succeed({ _tag: "Failed", error })),
    Effect.withSpan("AgentDaemon.connect", { attributes: { server: target.server, address } })
  )
}

/**
 * The relay's first message, which must be `Welcome`, and the rest of its messages. (Not `Stream.peel`: in Effect
 * 3.22 a failure of the stream after the peel reaches the rest as a defect, a `ChannelException`, not as the error.)
 */
const handshake = <E>(incoming: Stream.Stream<AgentLink.RelayMessage, E>, timeout: Duration.DurationInput) =>
  Effect.gen(function* () {
    const pull = yield* PullStream.toPull(incoming)
    const first = yield* firstChunk(pull).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new HandshakeError({ detail: "no Welcome from the relay" })
      })
    )
    const head = Chunk.headNonEmpty(first)
    if (head._tag !== "Welcome") return yield* new HandshakeError({ detail: `expected Welcome, got ${head._tag}` })
    const rest = PullStream.fromPull(() => PullStream.startingWith(Chunk.drop(first, 1), pull))
    return [head, rest] as const
  })

/** The first non-empty chunk of messages; the handshake fails if the stream ends before. */
const firstChunk = <A, E>(
  pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>
): Effect.Effect<Chunk.NonEmptyChunk<A>, E | HandshakeError> =>
  pull.pipe(
    Effect.mapError(
      Option.getOrElse(
        (): E | HandshakeError => new HandshakeError({ detail: "the relay closed the stream before Welcome" })
      )
    ),
    Effect.repeat({ until: Chunk.isNonEmpty }),
    Effect.map((chunk) => chunk as Chunk.NonEmptyChunk<A>)
  )

/** The first message on Connect: who we are, our window, and the interactive sessions alive now. */
export const hello = (
  identity: AgentIdentity.Identity,
  version: string,
  window: number,
  ptySessions: ReadonlyArray<AgentLink.PtySessionInfo>,
  gateConfigured?: boolean
): AgentLink.AgentMessage => ({
  _tag: "Hello",
  identity: AgentIdentity.toMachineIdentity(identity, version),
  window,
  ptySessions,
  ...(gateConfigured === undefined ? {} : { gateConfigured })
})

/**
 * Completes once the resolved credential differs from `seen` (checked every `poll`): another key, relay or
 * workspace, or a change between resolvable and not.
 */
const credentialChanged = (
  overrides: CredentialResolver.Overrides,
  seen: string,
  poll: Duration.DurationInput
): Effect.Effect<void, never, CredentialResolver.CredentialResolver> =>
  Effect.gen(function* () {
    for (;;) {
      yield* Effect.sleep(poll)
      const now = fingerprint(yield* Effect.either(resolveTarget(overrides)))
      if (now !== seen) return
    }
  })

/** A digest of what the daemon connects with, so the key itself is never held in a plain string. */
const fingerprint = (
  resolved:
    | { readonly _tag: "Right"; readonly right: CredentialResolver.Resolved }
    | { readonly _tag: "Left"; readonly left: { readonly message: string } }
): string => {
  const text =
    resolved._tag === "Left"
      ? `error\0${resolved.left.message}`
      : `ok\0${Redacted.value(resolved.right.apiKey)}\0${resolved.right.server}\0${resolved.right.workspace ?? ""}`
  return crypto.createHash("sha256").update(text).digest("hex")
}

const isAuthFailure = (error: unknown): boolean =>
  error instanceof GrpcStatusError &&
  (error.code === grpc.status.UNAUTHENTICATED || error.code === grpc.status.PERMISSION_DENIED)

/** The relay's PERMISSION_DENIED for a machine whose hostname/name or secret clashes with another's. */
const isRegistrationRefusal = (error: unknown): error is GrpcStatusError =>
  error instanceof GrpcStatusError &&
  error.code === grpc.status.PERMISSION_DENIED &&
  /cannot register machine|conflicts with another machine|already registered with a different machine secret/.test(
    error.message
  )

/** A log line and `last_error` for a failed attempt at `address`; never the key itself. */
const explain = (
  error: GrpcStatusError | HandshakeError | AgentEngine.RelaySilentError,
  target: CredentialResolver.Resolved,
  address: string
): string => {
  const where = `relay ${address}`
  // A registration clash (name taken, another machine's secret) is about this machine, not the key: the relay's
  // message says how to fix it (another --hostname or --name), so no key hint is added.
  if (isRegistrationRefusal(error)) return `${where} refused to register this machine: ${error.message}`
  if (isAuthFailure(error))
    return `${where} refused the credential ${Secret.mask(target.apiKey)} (from ${target.source}${
      target.workspace === undefined ? "" : ` "${target.workspace}"`
    }): ${error.message}; fix it with "cmdop connect key set <key>"`
  return `${where}: ${error.message}`
}

/** The status's relay fields: the server setting (every node it names) and `address`, the node in use or tried. */
const describe = (
  target: CredentialResolver.Resolved,
  address: string
): { server: string; relay: string; workspace: string } => ({
  server: target.server,
  relay: address,
  workspace: target.workspace ?? ""
})
