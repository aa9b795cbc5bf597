/**
 * `cmdop connect <host>`: an interactive shell on a machine. One status line per step (resolving, dialing relay,
 * auth, attached — the last says how to detach), then the attached session (`AttachSession`). With stdin not a
 * terminal (`</dev/null`, `echo cmd | cmdop connect vm`) it does what ssh does: the remote user's login shell
 * runs without a PTY, fed by stdin, and its exit status is the CLI's.
 */
import * as PullStream from "@cmdop/grpc/PullStream"
import type { Principal, RelayClient } from "@cmdop/domain/RelayClient"
import * as Secret from "@cmdop/domain/Secret"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { CliError, ExitCode, ExitWith } from "../CliError.js"
import * as EscapeKeys from "../EscapeKeys.js"
import type * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import * as Recent from "../Recent.js"
import { Stdio } from "../Stdio.js"
import * as AttachSession from "../AttachSession.js"

const status = (text: string) => Output.notice(`cmdop: ${text}`)

/** The login shell, as ssh runs it without a PTY: `$SHELL -l`, or `sh -l` when the user has none. */
export const LOGIN_SHELL = 'exec "${SHELL:-/bin/sh}" -l'

export interface AttachOptions {
  readonly sessionId?: string | undefined
  /** The `--detach-keys` value ("" for none: `~.` only). */
  readonly detachKeys?: string | undefined
}

export const attach = (g: GlobalOptions.Globals, host: string, options: AttachOptions = {}) =>
  Effect.gen(function* () {
    const detachKeys = EscapeKeys.parseDetachKeys(options.detachKeys ?? "")
    if (typeof detachKeys === "string") return yield* new CliError({ message: detachKeys, exitCode: ExitCode.usage })
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    const stdin = (yield* Stdio).stdinIfPiped()
    if (stdin !== undefined) {
      if (options.sessionId !== undefined)
        return yield* new CliError({
          message: `--session needs a terminal: stdin is not one (to run a command, use "cmdop connect exec ${host} -- <command>")`,
          exitCode: ExitCode.usage
        })
      return yield* Remote.withClient(g, (client) => pipedShell(client, host, stdin))
    }
    yield* status(`resolving ${host}…`)
    return yield* Remote.withClient(g, (client, resolved) =>
      Effect.gen(function* () {
        yield* status(`dialing relay ${resolved.server}…`)
        const me = yield* client.whoami
        yield* status(authLine(me, Secret.mask(resolved.apiKey)))
        const machine = yield* client.resolveMachine(host)
        yield* Recent.remember(machine.id)
        return yield* AttachSession.run(client, machine.hostname, {
          sessionId: options.sessionId,
          detachKeys,
          detachHint: detachHint(options.detachKeys ?? "")
        })
      })
    )
  })

/**
 * The status line once the relay has accepted the credential: the workspace and who the caller is, as `whoami`
 * names them — a key masked, a signed-in person by email, a guest by its link's id (the relay's principal for a
 * guest is `share <link id>`; "share link share sl_…" said it twice).
 */
export const authLine = (me: Pick<Principal, "workspaceName" | "kind" | "principal">, maskedKey: string): string =>
  `auth ok: workspace ${me.workspaceName}, ${
    me.kind === "guest"
      ? `share link ${me.principal.replace(/^share /, "")}`
      : me.kind === "user"
        ? `user ${me.principal}`
        : `key ${maskedKey}`
  }`

/** What the attached line says about detaching. */
const detachHint = (chord: string) =>
  `detach with ~. at the start of a line${chord.trim() === "" ? "" : ` or ${chord.trim()}`} (~? lists escapes)`

/** `cmdop connect <host>` with stdin not a terminal: the login shell without a PTY, fed by stdin. */
const pipedShell = (client: RelayClient["Type"], host: string, stdin: Stream.Stream<Uint8Array>) =>
  Effect.gen(function* () {
    const stdio = yield* Stdio
    let exit: { readonly exitCode: number; readonly error?: string | undefined } | undefined
    yield* PullStream.runForEach(
      client.exec({ machine: host, argv: [LOGIN_SHELL], shell: true, timeoutMs: 0 }, stdin),
      (event) => {
        switch (event._tag) {
          case "Started":
            return Effect.void
          case "Stdout":
            return stdio.stdout(event.data)
          case "Stderr":
            return stdio.stderr(event.data)
          case "Exit":
            return Effect.sync(() => void (exit = { exitCode: event.exitCode, error: event.error }))
        }
      }
    )
    if (exit === undefined) return yield* new CliError({ message: "the relay ended the shell without an exit status" })
    if (exit.error !== undefined) yield* status(exit.error)
    if (exit.exitCode !== 0) return yield* new ExitWith({ code: exit.exitCode })
  })
