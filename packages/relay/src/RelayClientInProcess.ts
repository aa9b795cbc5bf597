/**
 * `RelayClient` wired straight to a `RelayCore` in the same process: no sockets, same behaviour (every call still
 * authenticates its credential). For tests and for programs that embed a relay.
 */
import { RelayClient } from "@cmdop/domain/RelayClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { RelayCore } from "./RelayCore.js"

export const make = (credential: Redacted.Redacted<string>) =>
  Effect.map(RelayCore, (core) => {
    const caller = core.authenticate(credential)
    return RelayClient.of({
      server: core.server,
      whoami: Effect.flatMap(caller, core.whoami),
      listMachines: (options) =>
        Effect.flatMap(caller, (c) => core.listMachines(c, { onlineOnly: options?.onlineOnly ?? false })),
      resolveMachine: (query) => Effect.flatMap(caller, (c) => core.resolveMachine(c, query)),
      exec: (request, stdin, signals) =>
        Stream.unwrap(
          Effect.map(caller, (c) => {
            const stdinInput =
              stdin === undefined
                ? undefined
                : Stream.concat(
                    Stream.map(stdin, (data) => ({ _tag: "Stdin" as const, data })),
                    Stream.succeed({ _tag: "Eof" as const })
                  )
            const signalled =
              signals === undefined ? undefined : Stream.map(signals, (signal) => ({ _tag: "Signal" as const, signal }))
            const input =
              stdinInput === undefined
                ? signalled
                : signalled === undefined
                  ? stdinInput
                  : Stream.merge(stdinInput, signalled)
            return core.exec(c, request, input, { stdin: stdin !== undefined })
          })
        ),
      attach: (request, input) => Stream.unwrap(Effect.map(caller, (c) => core.attach(c, request, input))),
      listSessions: (machine) => Effect.flatMap(caller, (c) => core.listSessions(c, machine)),
      killSession: (machine, sessionId) => Effect.flatMap(caller, (c) => core.killSession(c, machine, sessionId)),
      createShare: (machine, ttlSeconds, options) =>
        Effect.flatMap(caller, (c) => core.createShare(c, machine, ttlSeconds, options)),
      listShares: (machine, page) => Effect.flatMap(caller, (c) => core.listShares(c, machine, page)),
      revokeShare: (id) => Effect.flatMap(caller, (c) => core.revokeShare(c, id)),
      listApprovals: Effect.flatMap(caller, (c) => core.listApprovals(c)),
      answerApproval: (answer) => Effect.flatMap(caller, (c) => core.answerApproval(c, answer))
    })
  })

/** A client for `credential` over the `RelayCore` in context. */
export const layer = (credential: Redacted.Redacted<string>): Layer.Layer<RelayClient, never, RelayCore> =>
  Layer.effect(RelayClient, make(credential))
