/**
 * `cmdop connect <host>`: an interactive shell on a machine. One status line per step (resolving, dialing relay,
 * auth, attached), then raw mode with the local window size; resizes follow; Ctrl-C reaches the remote shell (it
 * is just a byte in raw mode); Ctrl-D detaches locally and leaves the session running for
 * `cmdop connect <host> --session <id>`. When the relay or the network drops, the client reconnects within a grace
 * period and resumes at the last byte it saw.
 */
import type { RelayClient } from "@cmdop/domain/RelayClient"
import { AttachInput } from "@cmdop/domain/RelayClient"
import * as Secret from "@cmdop/domain/Secret"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { CliError, ExitWith } from "../CliError.js"
import type * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import * as Recent from "../Recent.js"
import { Stdio } from "../Stdio.js"
import * as Terminal from "../TerminalSession.js"

/** How long a dropped attach keeps trying to get back before giving up. */
const GRACE_MS = 60_000

const status = (text: string) => Output.notice(`cmdop: ${text}`)

interface Outcome {
  readonly _tag: "Detached" | "Ended" | "Lost"
  readonly exitCode?: number
  readonly reason?: string
  readonly error?: unknown
}

export const attach = (g: GlobalOptions.Globals, host: string, sessionId: string | undefined) =>
  Effect.gen(function* () {
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    yield* status(`resolving ${host}…`)
    return yield* Remote.withClient(g, (client, resolved) =>
      Effect.gen(function* () {
        yield* status(`dialing relay ${resolved.server}…`)
        const me = yield* client.whoami
        yield* status(
          `auth ok: workspace ${me.workspaceName}, ${me.kind === "guest" ? `share link ${me.principal}` : `key ${Secret.mask(resolved.apiKey)}`}`
        )
        const machine = yield* client.resolveMachine(host)
        yield* Recent.remember(machine.id)
        return yield* session(client, machine.hostname, sessionId)
      })
    )
  })

const session = (client: RelayClient["Type"], hostname: string, initialSession: string | undefined) =>
  Effect.scoped(
    Effect.gen(function* () {
      const stdio = yield* Stdio
      const inputs = yield* Queue.unbounded<AttachInput>()
      let sessionId = initialSession
      let offset: number | undefined
      let announced = false
      const lostSince: { at?: number } = {}

      const runOnce = Effect.gen(function* () {
        const size = Terminal.size()
        const events = client.attach(
          {
            machine: hostname,
            cols: size.cols,
            rows: size.rows,
            term: process.env["TERM"] ?? "xterm-256color",
            ...(sessionId === undefined ? {} : { sessionId }),
            ...(offset === undefined ? {} : { resumeFrom: offset })
          },
          Stream.fromQueue(inputs)
        )
        let end: Outcome | undefined
        yield* Stream.runForEach(events, (event) => {
          switch (event._tag) {
            case "Attached":
              return Effect.gen(function* () {
                sessionId = event.sessionId
                offset = event.offset
                delete lostSince.at
                if (!announced) {
                  announced = true
                  yield* status(
                    `attached to ${event.machine.hostname}, session ${event.sessionId}${event.created ? " (new)" : ""} — Ctrl-D to detach`
                  )
                  yield* Terminal.rawMode
                } else yield* stdio.stderr(new TextEncoder().encode("\r\ncmdop: reconnected\r\n"))
              })
            case "Output":
              offset = event.offset + event.data.byteLength
              return stdio.stdout(event.data)
            case "Ended":
              end = { _tag: "Ended", exitCode: event.exitCode, reason: event.reason }
              return Effect.void
          }
        })
        return end ?? ({ _tag: "Lost" } as Outcome)
      })

      const keys = yield* Terminal.keys
      yield* keys.input.pipe(
        Stream.runForEach((data) => Queue.offer(inputs, AttachInput.Data({ data }))),
        Effect.forkScoped
      )
      yield* Effect.flatMap(Terminal.resizes, (sizes) =>
        Stream.runForEach(sizes, (s) => Queue.offer(inputs, AttachInput.Resize(s)))
      ).pipe(Effect.forkScoped)

      for (;;) {
        const outcome: Outcome = yield* Effect.raceFirst(
          Effect.either(runOnce).pipe(
            Effect.map((r): Outcome => (Either.isRight(r) ? r.right : { _tag: "Lost", error: r.left }))
          ),
          Effect.as(keys.ended, { _tag: "Detached" } as Outcome)
        )
        if (outcome._tag === "Detached") {
          yield* stdio.stderr(
            new TextEncoder().encode(
              `\r\ncmdop: detached; session ${sessionId} keeps running — reattach with: cmdop connect ${hostname} --session ${sessionId}\r\n`
            )
          )
          return 0
        }
        if (outcome._tag === "Ended") {
          yield* stdio.stderr(
            new TextEncoder().encode(`\r\ncmdop: session ended (${outcome.reason}, exit ${outcome.exitCode})\r\n`)
          )
          return outcome.exitCode ?? 0
        }
        // Lost: the relay, the network or the machine dropped. Retry within the grace period, resuming at `offset`.
        if (!announced || sessionId === undefined) {
          return yield* Effect.fail(outcome.error ?? new CliError({ message: "the relay closed the session" }))
        }
        const now = yield* Clock.currentTimeMillis
        lostSince.at ??= now
        if (now - lostSince.at > GRACE_MS)
          return yield* new CliError({
            message: `lost the connection to session ${sessionId} for over ${GRACE_MS / 1000}s; it may still be running: cmdop connect ${hostname} --session ${sessionId}`
          })
        yield* stdio.stderr(new TextEncoder().encode("\r\ncmdop: connection lost; reconnecting…\r\n"))
        yield* Effect.sleep("1 second")
      }
    })
  ).pipe(Effect.flatMap((code) => (code === 0 ? Effect.void : Effect.fail(new ExitWith({ code })))))
