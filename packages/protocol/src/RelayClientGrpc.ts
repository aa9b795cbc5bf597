/**
 * `RelayClient` over gRPC: the live layer the CLI and embedding programs use. The credential is sent on every
 * call as `authorization: Bearer <key>`; errors come back as the domain's tagged errors (see `ErrorCodec`).
 */
import { RelayClient, type RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import type { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as AttachCodec from "./AttachCodec.js"
import * as ErrorCodec from "./ErrorCodec.js"
import * as ExecCodec from "./ExecCodec.js"
import { ClientServiceService, type ExecRequest } from "./generated/cmdop/connect/v1/client.js"
import * as MachineCodec from "./MachineCodec.js"
import * as ShareCodec from "./ShareCodec.js"

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
    const client = yield* GrpcClient.make(ClientServiceService, {
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
      whoami: client.unary("whoAmI", {}, call).pipe(
        Effect.mapError(mapError),
        Effect.map((r) => ({
          workspaceId: r.workspaceId,
          workspaceName: r.workspaceName,
          kind: r.principalKind === "user" ? "user" : r.principalKind === "guest" ? "guest" : "key",
          principal: r.principal,
          ...(r.machineId === "" ? {} : { machineId: r.machineId })
        }))
      ),
      listMachines: (opts) =>
        client.unary("listMachines", { onlineOnly: opts?.onlineOnly ?? false }, call).pipe(
          Effect.mapError(mapError),
          Effect.map((r) => ({ machines: r.machines.map(MachineCodec.fromWire), now: r.now }))
        ),
      resolveMachine: (query) =>
        client
          .unary("resolveMachine", { query }, call)
          .pipe(Effect.mapError(mapError), Effect.map(MachineCodec.fromWire)),
      exec: (request, stdin) => {
        const start: ExecRequest = {
          kind: { $case: "start", value: ExecCodec.startToWire(request, stdin !== undefined) }
        }
        const input: Stream.Stream<ExecRequest> =
          stdin === undefined
            ? Stream.empty
            : stdin.pipe(
                Stream.mapConcat((chunk) => {
                  const parts: Array<ExecRequest> = []
                  for (let i = 0; i < chunk.byteLength; i += STDIN_CHUNK) {
                    const part = chunk.subarray(i, i + STDIN_CHUNK)
                    parts.push({
                      kind: { $case: "stdin", value: Buffer.from(part.buffer, part.byteOffset, part.byteLength) }
                    })
                  }
                  return parts
                }),
                Stream.concat(Stream.succeed<ExecRequest>({ kind: { $case: "eof", value: true } }))
              )
        return Stream.suspend(() => {
          let exited = false
          return client.bidi("exec", Stream.concat(Stream.succeed(start), input), { metadata }).pipe(
            Stream.mapError(mapError),
            Stream.filterMap((e) => Option.fromNullable(ExecCodec.eventFromWire(e))),
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
            Stream.concat(Stream.succeed(AttachCodec.startToWire(request)), Stream.map(input, AttachCodec.inputToWire)),
            { metadata }
          )
          .pipe(
            Stream.mapError(mapError),
            Stream.filterMap((e) => Option.fromNullable(AttachCodec.eventFromWire(e))),
            Stream.takeUntil((e) => e._tag === "Ended")
          ),
      listSessions: (machine) =>
        client.unary("listSessions", { machine }, call).pipe(
          Effect.mapError(mapError),
          Effect.flatMap((r) =>
            r.machine
              ? Effect.succeed({
                  machine: MachineCodec.fromWire(r.machine),
                  sessions: r.sessions.map(AttachCodec.sessionFromWire)
                })
              : Effect.fail(
                  new RelayError({ reason: "Protocol", server: options.server, detail: "no machine in the answer" })
                )
          )
        ),
      createShare: (machine, ttlSeconds) =>
        client.unary("createShare", { machine, ttlSeconds }, call).pipe(
          Effect.mapError(mapError),
          Effect.map((w) => ({ link: ShareCodec.fromWire(w), token: w.token, url: w.url }))
        ),
      listShares: (machine) =>
        client.unary("listShares", { machine: machine ?? "" }, call).pipe(
          Effect.mapError(mapError),
          Effect.map((r) => r.links.map((l) => ShareCodec.fromWire(l)))
        ),
      revokeShare: (id) =>
        client.unary("revokeShare", { id }, call).pipe(
          Effect.mapError(mapError),
          Effect.map((l) => ShareCodec.fromWire(l))
        )
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
