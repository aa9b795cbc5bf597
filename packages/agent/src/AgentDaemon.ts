/**
 * The agent daemon (`cmdop agent start`): keeps ONE outbound `AgentService.Connect` stream to the relay and serves
 * sessions over it with `AgentEngine`; and `register` (`cmdop agent register`).
 *
 * The connection loop, forever:
 *  1. resolve credential and relay afresh: the workspace store file is read anew (`WorkspaceStoreLive.make`), then
 *     `CredentialResolver.resolveWith` with the environment and no OAuth session;
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
 * Interactive (PTY) sessions belong to the daemon, not to a connection: one `PtySessions` service is built per `run`,
 * before the loop, so shells keep running across reconnects. Every Hello lists the sessions alive at that moment
 * (`Hello.pty_sessions`); the relay re-adopts them and asks for their output with `SessionReplay`. A session that
 * ended while no stream was up is not listed and its end is never reported.
 *
 * Every session is recorded in the machine's audit log, `<stateDir>/audit.log` (`AuditLog`, built once per `run`;
 * what the engine writes there is described in `AgentEngine`).
 *
 * Stopping: interrupting the fiber running `run` cancels the stream (the relay sees it close and marks the machine
 * offline at once), kills every session (exec and PTY), writes status STOPPED and removes `cmdop.pid`.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as Secret from "@cmdop/domain/Secret"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as WorkspaceStoreLive from "@cmdop/node/WorkspaceStoreLive"
import type {
  AgentMessage,
  PtySessionInfo,
  RegisterResponse,
  RelayMessage,
  Welcome
} from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { AgentServiceService } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
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
import * as RelayAddress from "@cmdop/protocol/RelayAddress"
import * as Backoff from "./Backoff.js"
import * as DaemonStatus from "./DaemonStatus.js"
import type { ProcessRunner } from "./ProcessRunner.js"
import * as PtySessions from "./PtySessions.js"

/** Reported to the relay in `MachineIdentity.agent_version`. */
export const AGENT_VERSION = "0.1.0"

/** The output window the agent offers in Hello (the relay may lower it in Welcome). */
export const DEFAULT_WINDOW = 2 * 1024 * 1024

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

type Requirements = ProcessRunner | FileSystem.FileSystem | CmdopPaths

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
      const identity = yield* AgentIdentity.loadOrCreate()
      const backoff = yield* Backoff.make(options.backoff ?? Backoff.defaultPolicy)
      const status = makeStatus(identity)
      yield* Effect.addFinalizer(() => status.set("STOPPED", {}))
      // Closed before STOPPED is written: the shells are gone by then.
      const ptys = yield* PtySessions.make(options.pty)
      const services = { ptys, auditLog: yield* AuditLog.make(options.audit) }
      const overrides = options.overrides ?? {}
      const poll = options.credentialPollInterval ?? Duration.seconds(1)
      const version = options.agentVersion ?? AGENT_VERSION
      yield* Effect.logInfo("agent daemon started").pipe(Effect.annotateLogs("machine_id", identity.machine_id))

      for (;;) {
        const resolved = yield* Effect.either(resolveTarget(overrides))
        const seen = fingerprint(resolved)
        const changed = credentialChanged(overrides, seen, poll)
        if (resolved._tag === "Left") {
          const message = resolved.left.message
          yield* Effect.logError(`cannot resolve the relay credential: ${message}`)
          yield* status.set("CONNECTING", { last_error: message })
          yield* Effect.raceFirst(backoff.next, changed)
          continue
        }
        const target = resolved.right
        yield* status.set("CONNECTING", describe(target))
        const ended = yield* connectOnce(target, identity, options, version, services, {
          online: (welcome) =>
            Effect.zipRight(
              backoff.reset,
              Effect.zipRight(
                status.set("ONLINE", { ...describe(target), workspace: target.workspace ?? welcome.workspaceName }),
                Effect.logInfo(`connected to relay ${target.server}`).pipe(
                  Effect.annotateLogs({ workspace: welcome.workspaceName, key: Secret.mask(target.apiKey) })
                )
              )
            ),
          changed
        })
        switch (ended._tag) {
          case "CredentialChanged":
            yield* Effect.logInfo("credential, relay or workspace changed: reconnecting")
            yield* backoff.reset
            continue
          case "StreamEnded":
            yield* Effect.logWarning(`relay ${target.server} closed the stream`)
            yield* status.set("CONNECTING", { ...describe(target), last_error: "the relay closed the stream" })
            break
          case "Failed": {
            const message = explain(ended.error, target)
            yield* isAuthFailure(ended.error) ? Effect.logError(message) : Effect.logWarning(message)
            yield* status.set("CONNECTING", { ...describe(target), last_error: message })
            break
          }
        }
        yield* Effect.raceFirst(backoff.next, changed)
      }
    })
  )

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
  RegisterResponse,
  AgentIdentity.AgentIdentityError | CredentialResolver.ResolveError | GrpcStatusError,
  FileSystem.FileSystem | CmdopPaths
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const target = yield* resolveTarget(options.overrides ?? {})
      const identity = yield* AgentIdentity.loadOrCreate({ hostname: options.hostname, name: options.name })
      const client = yield* GrpcClient.make(AgentServiceService, dialOptions(target.server, options.tls))
      const response = yield* client.unary(
        "register",
        { identity: AgentIdentity.toWire(identity, options.agentVersion ?? AGENT_VERSION) },
        { metadata: authorization(target), timeout: options.timeout ?? Duration.seconds(15) }
      )
      yield* AgentIdentity.loadOrCreate({ server: target.server })
      return response
    })
  )

/** The credential and relay as the daemon uses them: the store file read anew, the environment, no OAuth. */
export const resolveTarget = (
  overrides: CredentialResolver.Overrides
): Effect.Effect<CredentialResolver.Resolved, CredentialResolver.ResolveError, FileSystem.FileSystem | CmdopPaths> =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const store = yield* WorkspaceStoreLive.make(paths.workspaces, paths.display)
    const file = yield* store.load
    const env = yield* CredentialResolver.environment
    return yield* CredentialResolver.resolveWith({ overrides, env, file, oauth: Option.none() })
  })

/** `host:port` and TLS for a server address; `https://` / `grpcs://` mean TLS, `http://` / `grpc://` do not. */
export const dialOptions = (server: string, tls?: GrpcClient.Tls): GrpcClient.Options => {
  const target = RelayAddress.parse(server, RelayAddress.caFromEnv())
  const chosen = tls ?? target.tls
  return chosen === undefined ? { address: target.address } : { address: target.address, tls: chosen }
}

const authorization = (target: CredentialResolver.Resolved) => ({
  authorization: `Bearer ${Redacted.value(target.apiKey)}`
})

/** One Connect call, from dial to its end. */
const connectOnce = (
  target: CredentialResolver.Resolved,
  identity: AgentIdentity.Identity,
  options: Options,
  version: string,
  services: { readonly ptys: PtySessions.PtySessions["Type"]; readonly auditLog: AuditLog.AuditLog["Type"] },
  hooks: {
    readonly online: (welcome: Welcome) => Effect.Effect<void, never, FileSystem.FileSystem | CmdopPaths>
    readonly changed: Effect.Effect<void, never, FileSystem.FileSystem | CmdopPaths>
  }
): Effect.Effect<Ended, never, Requirements> => {
  const attempt = Effect.gen(function* () {
    const client = yield* GrpcClient.make(AgentServiceService, dialOptions(target.server, options.tls))
    const channel = yield* client.bidiChannel("connect", { metadata: authorization(target) })
    const window = options.window ?? DEFAULT_WINDOW
    yield* channel.send(hello(identity, version, window, yield* services.ptys.list))
    const pull = yield* Stream.toPull(channel.responses)
    const first = yield* firstMessages(pull).pipe(
      Effect.timeoutFail({
        duration: options.handshakeTimeout ?? Duration.seconds(15),
        onTimeout: () => new HandshakeError({ detail: "no Welcome from the relay" })
      })
    )
    const head = Chunk.unsafeHead(first)
    if (head.kind?.$case !== "welcome")
      return yield* new HandshakeError({ detail: `expected Welcome, got ${head.kind?.$case ?? "an empty message"}` })
    const welcome = head.kind.value
    yield* hooks.online(welcome)
    const heartbeatInterval =
      options.heartbeatInterval ??
      (welcome.heartbeatSeconds > 0 ? Duration.seconds(welcome.heartbeatSeconds) : DEFAULT_HEARTBEAT)
    const served = AgentEngine.serve(
      {
        incoming: Stream.concat(Stream.fromChunk(Chunk.drop(first, 1)), Stream.repeatEffectChunkOption(pull)),
        send: channel.send
      },
      {
        window: welcome.window > 0 ? welcome.window : window,
        heartbeatInterval,
        relaySilenceTimeout: options.relaySilenceTimeout ?? Duration.times(Duration.decode(heartbeatInterval), 3),
        ptySessions: services.ptys,
        auditLog: services.auditLog
      }
    )
    return yield* Effect.raceFirst(
      Effect.as(served, { _tag: "StreamEnded" } as Ended),
      Effect.as(hooks.changed, { _tag: "CredentialChanged" } as Ended)
    )
  })
  return Effect.scoped(attempt).pipe(
    Effect.catchAll((error): Effect.Effect<Ended> => Effect.succeed({ _tag: "Failed", error }))
  )
}

/** The first message on Connect: who we are, our window, and the interactive sessions alive now. */
export const hello = (
  identity: AgentIdentity.Identity,
  version: string,
  window: number,
  ptySessions: ReadonlyArray<PtySessionInfo>
): AgentMessage => ({
  kind: {
    $case: "hello",
    value: { identity: AgentIdentity.toWire(identity, version), window, ptySessions: [...ptySessions] }
  }
})

/** The first non-empty chunk of the relay's messages; the handshake fails if the stream ends before. */
const firstMessages = (
  pull: Effect.Effect<Chunk.Chunk<RelayMessage>, Option.Option<GrpcStatusError>>
): Effect.Effect<Chunk.NonEmptyChunk<RelayMessage>, GrpcStatusError | HandshakeError> =>
  Effect.gen(function* () {
    for (;;) {
      const chunk = yield* pull.pipe(
        Effect.mapError(
          Option.getOrElse(
            (): GrpcStatusError | HandshakeError =>
              new HandshakeError({ detail: "the relay closed the stream before Welcome" })
          )
        )
      )
      if (Chunk.isNonEmpty(chunk)) return chunk
    }
  })

/**
 * Completes once the resolved credential differs from `seen` (checked every `poll`): another key, relay or
 * workspace, or a change between resolvable and not.
 */
const credentialChanged = (
  overrides: CredentialResolver.Overrides,
  seen: string,
  poll: Duration.DurationInput
): Effect.Effect<void, never, FileSystem.FileSystem | CmdopPaths> =>
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

/** A log line and `last_error` for a failed attempt; never the key itself. */
const explain = (
  error: GrpcStatusError | HandshakeError | AgentEngine.RelaySilentError,
  target: CredentialResolver.Resolved
): string => {
  const where = `relay ${target.server}`
  if (isAuthFailure(error))
    return `${where} refused the credential ${Secret.mask(target.apiKey)} (from ${target.source}${
      target.workspace === undefined ? "" : ` "${target.workspace}"`
    }): ${error.message}; fix it with "cmdop connect key set <key>"`
  return `${where}: ${error.message}`
}

interface Described {
  readonly server?: string
  readonly workspace?: string
  readonly last_error?: string
}

const describe = (target: CredentialResolver.Resolved): { server: string; workspace: string } => ({
  server: target.server,
  workspace: target.workspace ?? ""
})

/** Writes `daemon.status` on every change, keeping `since` while the state stays the same; never fails. */
const makeStatus = (identity: AgentIdentity.Identity) => {
  let current: DaemonStatus.Status | undefined
  return {
    set: (state: DaemonStatus.State, details: Described) =>
      Effect.gen(function* () {
        const since =
          current !== undefined && current.state === state
            ? current.since
            : new Date().toISOString().replace(/\.\d{3}Z$/, "Z")
        const next: DaemonStatus.Status = {
          state,
          pid: process.pid,
          since,
          server: details.server ?? current?.server ?? "",
          workspace: details.workspace ?? current?.workspace ?? "",
          machine_id: identity.machine_id,
          ...(details.last_error === undefined ? {} : { last_error: details.last_error })
        }
        current = next
        yield* DaemonStatus.write(next).pipe(
          Effect.catchAll((error) => Effect.logWarning(`cannot write the daemon status: ${error.message}`))
        )
      })
  }
}
