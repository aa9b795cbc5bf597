/**
 * `RelayClient` over gRPC: the live layer the CLI and embedding programs use. The credential is sent on every
 * call as `authorization: Bearer <key>`; errors come back as the domain's tagged errors (see `ErrorCodec`).
 */
import * as ApprovalService from "./ApprovalService.js"
import { type AttachEvent, type ExecEvent, RelayClient, type RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import * as PullStream from "@cmdop/grpc/PullStream"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import * as Chunk from "effect/Chunk"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as ClientService from "./ClientService.js"
import * as ErrorCodec from "./ErrorCodec.js"
import * as RelayAddress from "./RelayAddress.js"
import { isReadable, type Unreadable } from "./Unreadable.js"

export interface Options {
  /** The relay: `host:port` (plaintext unless `tls`), or `https://host[:port]` (TLS) as the CLI takes it. */
  readonly server: string
  readonly apiKey: Redacted.Redacted<string>
  /** Verify the relay's TLS certificate (with this CA when given); absent: TLS only for an `https://` server. */
  readonly tls?: GrpcClient.Tls
  /** Deadline for unary calls. Default 15 s. */
  readonly timeout?: Duration.DurationInput
  /** For a person's login (OAuth): act in this workspace (id or name) instead of their active one. */
  readonly workspace?: string
}

/** Largest stdin chunk sent in one message. */
const STDIN_CHUNK = 64 * 1024

export const make = (options: Options) =>
  Effect.gen(function* () {
    // `server` as the CLI spells it works here too: `https://host[:port]` is TLS (system roots unless `tls` is
    // given), `http://host:port` plaintext; it was handed to grpc-js as a host name ("Name resolution failed").
    const target = RelayAddress.parse(options.server)
    const tls = options.tls ?? target.tls
    const client = yield* GrpcClient.make(ClientService.definition, {
      address: target.address,
      ...(tls ? { tls } : {})
    }).pipe(Effect.mapError((e) => ErrorCodec.fromStatus(e, options.server)))
    const approvals = yield* GrpcClient.make(ApprovalService.definition, {
      address: target.address,
      ...(tls ? { tls } : {})
    }).pipe(Effect.mapError((e) => ErrorCodec.fromStatus(e, options.server)))
    const metadata: Record<string, string> = {
      authorization: `Bearer ${Redacted.value(options.apiKey)}`,
      ...(options.workspace === undefined ? {} : { "x-cmdop-workspace": options.workspace })
    }
    const call: GrpcClient.CallOptions = { metadata, timeout: options.timeout ?? "15 seconds" }
    const mapError = (e: GrpcStatusError): RelayCallError => ErrorCodec.fromStatus(e, options.server)

    return RelayClient.of({
      server: options.server,
      whoami: client.unary("whoAmI", {}, call).pipe(Effect.mapError(mapError)),
      listMachines: (opts) =>
        client.unary("listMachines", { onlineOnly: opts?.onlineOnly ?? false }, call).pipe(Effect.mapError(mapError)),
      resolveMachine: (query) => client.unary("resolveMachine", { query }, call).pipe(Effect.mapError(mapError)),
      exec: (request, stdin, signals) => {
        const start: ClientService.ExecMessage = { _tag: "Start", request, stdin: stdin !== undefined }
        const signalled: Stream.Stream<ClientService.ExecMessage> | undefined =
          signals === undefined ? undefined : Stream.map(signals, (signal) => ({ _tag: "Signal", signal }))
        const stdinInput: Stream.Stream<ClientService.ExecMessage> | undefined =
          stdin === undefined
            ? undefined
            : stdin.pipe(
                Stream.mapConcat((chunk) => {
                  const parts: Array<ClientService.ExecMessage> = []
                  for (let i = 0; i < chunk.byteLength; i += STDIN_CHUNK)
                    parts.push({ _tag: "Stdin", data: chunk.subarray(i, i + STDIN_CHUNK) })
                  return parts
                }),
                Stream.concat(Stream.succeed<ClientService.ExecMessage>({ _tag: "Eof" }))
              )
        // Signals go on after stdin's end; the writer stops when the responses end. A merge forks fibers: only
        // when there are two inputs to merge (a plain `exec host cmd` has neither).
        const input: Stream.Stream<ClientService.ExecMessage> =
          stdinInput === undefined
            ? (signalled ?? PullStream.empty)
            : signalled === undefined
              ? stdinInput
              : Stream.merge(stdinInput, signalled)
        return PullStream.unwrapScoped(
          Effect.map(
            PullStream.toPull(client.bidi("exec", PullStream.prepend(start, input), { metadata, isLast: isExit })),
            (pull) => execEvents(pull, mapError, options.server)
          )
        )
      },
      attach: (request, input) =>
        PullStream.unwrapScoped(
          Effect.map(
            PullStream.toPull(
              client.bidi(
                "attach",
                PullStream.prepend<ClientService.AttachMessage, never, never>({ _tag: "Start", request }, input),
                { metadata, isLast: isEnded }
              )
            ),
            (pull) => attachEvents(pull, mapError)
          )
        ),
      listSessions: (machine) =>
        client.unary("listSessions", { machine }, call).pipe(
          Effect.mapError(mapError),
          Effect.flatMap(({ machine, sessions }) =>
            machine
              ? Effect.succeed({ machine, sessions })
              : Effect.fail(
                  new RelayError({ reason: "Protocol", server: options.server, detail: "no machine in the answer" })
                )
          )
        ),
      killSession: (machine, sessionId) =>
        client.unary("killSession", { machine, sessionId }, call).pipe(
          Effect.mapError(mapError),
          Effect.flatMap(({ machine, ...killed }) =>
            machine
              ? Effect.succeed({ machine, ...killed })
              : Effect.fail(
                  new RelayError({ reason: "Protocol", server: options.server, detail: "no machine in the answer" })
                )
          )
        ),
      createShare: (machine, ttlSeconds, options) =>
        client
          .unary(
            "createShare",
            { machine, ttlSeconds, ...(options?.sessionId === undefined ? {} : { sessionId: options.sessionId }) },
            call
          )
          .pipe(Effect.mapError(mapError)),
      listShares: (machine, page) =>
        client
          .unary(
            "listShares",
            { ...(machine === undefined ? {} : { machine }), ...(page === undefined ? {} : { page }) },
            call
          )
          .pipe(Effect.mapError(mapError)),
      revokeShare: (id) => client.unary("revokeShare", { id }, call).pipe(Effect.mapError(mapError)),
      listApprovals: approvals.unary("listApprovals", {}, call).pipe(Effect.mapError(mapError)),
      answerApproval: (answer) => approvals.unary("answerApproval", answer, call).pipe(Effect.mapError(mapError))
    })
  })

/**
 * The final answers of an exec and an attach call: once one is read, the call is left to end by itself rather
 * than cancelled (`StreamCallOptions.isLast`: a loop of calls that each reset their stream loses its connection).
 */
const isExit = (e: ExecEvent | Unreadable) => e._tag === "Exit"
const isEnded = (e: AttachEvent | Unreadable) => e._tag === "Ended"

/**
 * An attach call's events: readable ones, up to and including `Ended`, errors mapped. One plain pull per chunk
 * rather than a stream stage per step (map the error, filter, take until): each stage costs every keystroke's echo.
 */
const attachEvents = (
  pull: Effect.Effect<Chunk.Chunk<AttachEvent | Unreadable>, Option.Option<GrpcStatusError>>,
  mapError: (e: GrpcStatusError) => RelayCallError
): Stream.Stream<AttachEvent, RelayCallError> => {
  let ended = false
  const done: Effect.Effect<never, Option.Option<RelayCallError>> = PullStream.end
  const next = Effect.suspend(() =>
    ended
      ? done
      : Effect.mapBoth(pull, {
          onFailure: Option.map(mapError),
          onSuccess: (chunk) => {
            const out: Array<AttachEvent> = []
            for (const e of chunk) {
              if (!isReadable(e)) continue
              out.push(e)
              if (e._tag === "Ended") {
                ended = true
                break
              }
            }
            return Chunk.unsafeFromArray(out)
          }
        })
  )
  return PullStream.fromPull(() => next)
}

/**
 * An exec call's events: readable ones, up to and including `Exit`, errors mapped; a call that ends without an
 * `Exit` lost its relay or agent mid-way and fails with `RelayError` Unavailable. One plain pull per chunk of
 * messages rather than a stream stage per step (map the error, filter, tap, take until): each stage costs every
 * chunk of output.
 */
const execEvents = (
  pull: Effect.Effect<Chunk.Chunk<ExecEvent | Unreadable>, Option.Option<GrpcStatusError>>,
  mapError: (e: GrpcStatusError) => RelayCallError,
  server: string
): Stream.Stream<ExecEvent, RelayCallError> => {
  let exited = false
  const done: Effect.Effect<never, Option.Option<RelayCallError>> = PullStream.end
  const lost = Effect.suspend(() =>
    Effect.fail(
      Option.some(
        new RelayError({ reason: "Unavailable", server, detail: "the session ended before the command finished" })
      )
    )
  )
  const next = Effect.suspend(() =>
    exited
      ? done
      : Effect.matchEffect(pull, {
          onFailure: (e) => (Option.isSome(e) ? Effect.fail(Option.map(e, mapError)) : lost),
          onSuccess: (chunk) => {
            const out: Array<ExecEvent> = []
            for (const e of chunk) {
              if (!isReadable(e)) continue
              out.push(e)
              if (e._tag === "Exit") {
                exited = true
                break
              }
            }
            return Effect.succeed(Chunk.unsafeFromArray(out))
          }
        })
  )
  return PullStream.fromPull(() => next)
}

/** The live `RelayClient` for one relay and credential. */
export const layerGrpc = (options: Options): Layer.Layer<RelayClient> =>
  Layer.scoped(
    RelayClient,
    make(options).pipe(
      Effect.catchAll((e) =>
        Effect.die(
          new RelayError({ reason: "Internal", server: options.server, detail: `cannot create client: ${e.message}` })
        )
      )
    )
  )
