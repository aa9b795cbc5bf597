/**
 * `cmdop connect whoami`: the credential the resolver picks for this call (source, workspace, server, masked
 * key), and what the relay says about it when it answers. JSON keys: `source`, `workspace`, `server`, `api_key`, and
 * `relay` (`{workspace, principal_kind, principal}`, or null when the relay did not answer).
 */
import * as Command from "@effect/cli/Command"
import * as Secret from "@cmdop/domain/Secret"
import * as Effect from "effect/Effect"
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
        Effect.succeed({ answered: false as const, error: "message" in e ? String(e.message) : String(e) })
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
    if (g.json) return yield* Output.json(view)
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
  })
).pipe(Command.withDescription("show the credential this call would use: source, workspace, server, masked key"))
