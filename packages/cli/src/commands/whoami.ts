/**
 * `cmdop connect whoami`: the credential the resolver picks for this call (source, workspace, server, masked
 * key), and what the relay says about it when it answers; exits 255 when the relay refuses the credential. JSON
 * keys: `source`, `workspace`, `server`, `api_key`, and `relay` (`{workspace, principal_kind, principal}`, or null
 * when the relay did not answer).
 */
import * as Command from "@effect/cli/Command"
import * as Secret from "@cmdop/domain/Secret"
import * as Effect from "effect/Effect"
import { CliError } from "../CliError.js"
import { globals } from "../ConnectCommand.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"

export const whoamiCommand = Command.make("whoami", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    const r = yield* Remote.resolve(g)
    // What the relay says, when it answers within a moment; a local answer is still useful without it.
    const relay = yield* Remote.withClient(g, (client) => client.whoami).pipe(
      Effect.timeout("3 seconds"),
      Effect.map((p) => ({
        answered: true as const,
        workspace: p.workspaceName,
        kind: p.kind,
        principal: p.principal
      })),
      Effect.catchAll((e) =>
        Effect.succeed({
          answered: false as const,
          error: "message" in e ? String(e.message) : String(e),
          refused: e._tag === "AccessError" && e.reason === "Unauthenticated"
        })
      )
    )
    const view = {
      source: r.source,
      workspace: r.workspace ?? null,
      server: r.server,
      api_key: Secret.mask(r.apiKey),
      relay: relay.answered
        ? { workspace: relay.workspace, principal_kind: relay.kind, principal: relay.principal }
        : null
    }
    // A key the relay refuses is a failed check, for scripts too (`whoami && deploy`): the view is still printed,
    // then one line on stderr and exit 255. An unreachable relay is not: the local answer is what was asked.
    const refused = !relay.answered && relay.refused
    const end = refused
      ? Effect.fail(
          new CliError({
            message: `the relay at ${r.server} refuses this ${r.source === "oauth" ? "login" : "key"} (${relay.error}); set a valid one with "cmdop connect key set <key>" or "cmdop login"`
          })
        )
      : Effect.void
    if (g.json) return yield* Effect.zipRight(Output.json(view), end)
    yield* Output.line(
      Output.table(
        ["FIELD", "VALUE"],
        [
          ["source", view.source],
          ["workspace", view.workspace ?? "(none)"],
          ["server", `${view.server}${r.serverSource === "default" ? " (default)" : ""}`],
          ["api_key", view.api_key],
          [
            "relay says",
            relay.answered
              ? `workspace ${relay.workspace}, ${relay.kind} ${relay.principal}`
              : `(no answer: ${relay.error})`
          ]
        ]
      )
        .split("\n")
        .slice(1)
        .join("\n")
    )
    yield* end
  })
).pipe(Command.withDescription("show the credential this call would use: source, workspace, server, masked key"))
