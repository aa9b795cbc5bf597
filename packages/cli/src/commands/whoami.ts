/**
 * `cmdop connect whoami`: the credential the resolver picks for this call (source, workspace, server, masked
 * key). JSON keys are exactly `source`, `workspace`, `server`, `api_key`.
 */
import * as Command from "@effect/cli/Command"
import { CredentialResolver } from "@cmdop/domain/CredentialResolver"
import * as Secret from "@cmdop/domain/Secret"
import * as Effect from "effect/Effect"
import { globals } from "../ConnectCommand.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"

export const whoamiCommand = Command.make("whoami", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const resolver = yield* CredentialResolver
    const r = yield* resolver.resolve(GlobalOptions.overrides(g))
    const view = {
      source: r.source,
      workspace: r.workspace ?? null,
      server: r.server,
      api_key: Secret.mask(r.apiKey)
    }
    if (g.json) return yield* Output.json(view)
    yield* Output.line(
      Output.table(
        ["FIELD", "VALUE"],
        [
          ["source", view.source],
          ["workspace", view.workspace ?? "(none)"],
          ["server", `${view.server}${r.serverSource === "default" ? " (default)" : ""}`],
          ["api_key", view.api_key]
        ]
      )
        .split("\n")
        .slice(1)
        .join("\n")
    )
  })
).pipe(Command.withDescription("show the credential this call would use: source, workspace, server, masked key"))
