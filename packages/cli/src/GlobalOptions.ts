/**
 * The flags every `cmdop connect` subcommand takes: `--api-key/-k`, `--server/-s`, `--workspace`,
 * `--json`, `--no-interactive/-q`. They are declared on `connect` and on each subcommand, so they work before or
 * after the subcommand's name; `merge` combines the two (the subcommand's own wins).
 */
import * as Options from "@effect/cli/Options"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"

export const options = {
  apiKey: Options.redacted("api-key").pipe(
    Options.withAlias("k"),
    Options.withDescription("API key (or share token) for this call only; overrides CMDOP_API_KEY and the store"),
    Options.optional
  ),
  server: Options.text("server").pipe(
    Options.withAlias("s"),
    Options.withDescription("relay address host:port for this call only (default 127.0.0.1:50051)"),
    Options.optional
  ),
  workspace: Options.text("workspace").pipe(
    Options.withDescription("use this stored workspace for this call only (CMDOP_WORKSPACE)"),
    Options.optional
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print one JSON document on stdout (implies -q)")),
  noInteractive: Options.boolean("no-interactive").pipe(
    Options.withAlias("q"),
    Options.withDescription("never prompt; fail fast")
  )
}

export interface Raw {
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  readonly server: Option.Option<string>
  readonly workspace: Option.Option<string>
  readonly json: boolean
  readonly noInteractive: boolean
}

/** The resolved global flags of one invocation. */
export interface Globals {
  readonly apiKey: Redacted.Redacted<string> | undefined
  readonly server: string | undefined
  readonly workspace: string | undefined
  readonly json: boolean
  readonly interactive: boolean
}

/** Combines the flags given to `connect` with those given to the subcommand. */
export const merge = (parent: Raw, own: Raw): Globals => ({
  apiKey: Option.getOrUndefined(Option.orElse(own.apiKey, () => parent.apiKey)),
  server: Option.getOrUndefined(Option.orElse(own.server, () => parent.server)),
  workspace: Option.getOrUndefined(Option.orElse(own.workspace, () => parent.workspace)),
  json: own.json || parent.json,
  interactive: !(own.json || parent.json || own.noInteractive || parent.noInteractive)
})

/** The credential overrides the resolver takes. */
export const overrides = (g: Globals) => ({ apiKey: g.apiKey, server: g.server, workspace: g.workspace })
