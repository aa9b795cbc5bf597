/**
 * `RelayClient` over gRPC: the live layer the CLI and embedding programs use. The credential is sent on every
 * call as `authorization: Bearer <key>`; errors come back as the domain's tagged errors (see `ErrorCodec`).
 */
import * as ApprovalService from "./ApprovalService.js"
import { RelayClient, type RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as ClientService from "./ClientService.js"
import * as ErrorCodec from "./ErrorCodec.js"
import { isReadable } from "./Unreadable.js"

export interface Options {
  /** `host:port` of the relay. */
  readonly server: string
  readonly apiKey: Redacted.Redacted<string>
  /** Verify the relay's TLS certificate (with this CA when given); plaintext when absent. */
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
    const client = yield* GrpcClient.make(ClientService.definition, {
      address: options.server,
      ...(options.tls ? { tls: options.tls } : {})
    }).pipe(Effect.mapError((e) => ErrorCodec.fromStatus(e, options.server)))
    const approvals = yield* GrpcClient.make(ApprovalService.definition, {
      address: options.server,
      ...(options.tls ? { tls: options.tls } : {})
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
        const signalled: Stream.Stream<ClientService.ExecMessage> =
          signals === undefined ? Stream.empty : Stream.map(signals, (signal) => ({ _tag: "Signal", signal }))
        const stdinInput: Stream.Stream<ClientService.ExecMessage> =
          stdin === undefined
            ? Stream.empty
            : stdin.pipe(
                Stream.mapConcat((chunk) => {
                  const parts: Array<ClientService.ExecMessage> = []
                  for (let i = 0; i < chunk.byteLength; i += STDIN_CHUNK)
                    parts.push({ _tag: "Stdin", data: chunk.subarray(i, i + STDIN_CHUNK) })
                  return parts
                }),
                Stream.concat(Stream.succeed<ClientService.ExecMessage>({ _tag: "Eof" }))
              )
        return Stream.suspend(() => {
          let exited = false
          // Signals go on after stdin's end; the writer stops when the responses end.
          const input = Stream.merge(stdinInput, signalled)
          return client.bidi("exec", Stream.concat(Stream.succeed(start), input), { metadata }).pipe(
            Stream.mapError(mapError),
            Stream.filter(isReadable),
            Stream.tap((e) => Effect.sync(() => void (exited = exited || e._tag === "Exit"))),
            Stream.takeUntil((e) => e._tag === "Exit"),
            // A call that ends without an Exit event lost its relay or agent mid-way.
            Stream.concat(
              Stream.suspend(() =>
                exited
                  ? Stream.empty
                  : Stream.fail(
                      new RelayError({
                        reason: "Unavailable",
                        server: options.server,
                        detail: "the session ended before the command finished"
                      })
                    )
              )
            )
          )
        })
      },
      attach: (request, input) =>
        client
          .bidi(
            "attach",
            Stream.concat(Stream.succeed<ClientService.AttachMessage>({ _tag: "Start", request }), input),
            { metadata }
          )
          .pipe(
            Stream.mapError(mapError),
            Stream.filter(isReadable),
            Stream.takeUntil((e) => e._tag === "Ended")
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
