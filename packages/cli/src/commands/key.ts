/**
 * `cmdop connect key get|set|clear` and the deprecated `set-key`: the API key of the active workspace, or of
 * `--workspace NAME` (which `key set` creates when missing).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { BearerCredential } from "@cmdop/domain/ApiKey"
import * as Secret from "@cmdop/domain/Secret"
import * as Workspace from "@cmdop/domain/Workspace"
import { WorkspaceError } from "@cmdop/domain/WorkspaceError"
import { WorkspaceStore } from "@cmdop/domain/WorkspaceStore"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { CliError } from "../CliError.js"
import { globals } from "../ConnectCommand.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import { parseName } from "./workspace.js"

const keyArg = Args.redacted({ name: "key" }).pipe(Args.withDescription("the API key, e.g. ck_live_…"))

/** The workspace a key command acts on: `--workspace`, else the active one. */
const target = (file: Workspace.WorkspaceFile, named: string | undefined) =>
  named !== undefined ? Workspace.get(file, named) : Workspace.active(file)

const get = Command.make("get", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const file = yield* Effect.flatMap(WorkspaceStore, (s) => s.load)
    const w = yield* target(file, g.workspace)
    const masked = w.api_key && Workspace.hasKey(w) ? Secret.mask(w.api_key) : null
    if (g.json) return yield* Output.json({ workspace: w.name, api_key: masked })
    if (masked === null)
      return yield* new CliError({
        message: `workspace "${w.name}" has no API key; set one with "cmdop connect key set <key>"`
      })
    yield* Output.line(`${w.name}  ${masked}`)
  })
).pipe(Command.withDescription("show the workspace's API key, masked"))

/** Shared by `key set` and the deprecated `set-key`. */
const setKey = (own: GlobalOptions.Raw, key: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    yield* Schema.decodeUnknown(BearerCredential)(Redacted.value(key)).pipe(
      Effect.mapError((e) => new CliError({ message: `invalid API key: ${e.message.split("\n").pop()?.trim()}` }))
    )
    const store = yield* WorkspaceStore
    const name = yield* store.update((file) =>
      Effect.gen(function* () {
        const named = g.workspace !== undefined ? yield* parseName(g.workspace) : undefined
        const name = named ?? Workspace.activeName(file)
        if (name === undefined)
          return yield* new WorkspaceError({ reason: "NoActive", name: "", known: Workspace.names(file) })
        const next = yield* Workspace.setKey(file, name, key, { create: named !== undefined })
        return [name, next] as const
      })
    )
    if (g.json) return yield* Output.json({ workspace: name, api_key: Secret.mask(key) })
    yield* Output.line(`stored key ${Secret.mask(key)} for workspace ${name}`)
  })

const set = Command.make("set", { ...GlobalOptions.options, key: keyArg }, ({ key, ...own }) => setKey(own, key)).pipe(
  Command.withDescription("store the API key of the active workspace (or of --workspace NAME, created if missing)")
)

const clear = Command.make("clear", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const store = yield* WorkspaceStore
    const name = yield* store.update((file) =>
      Effect.gen(function* () {
        const w = yield* target(file, g.workspace)
        return [w.name, yield* Workspace.clearKey(file, w.name)] as const
      })
    )
    if (g.json) return yield* Output.json({ workspace: name, api_key: null })
    yield* Output.line(`cleared the key of workspace ${name}; calls fall through to CMDOP_API_KEY or cmdop login`)
  })
).pipe(Command.withDescription("remove the workspace's API key (later calls fall through to env or login)"))

export const keyCommand = Command.make("key").pipe(
  Command.withDescription("inspect, replace or remove a workspace's API key"),
  Command.withSubcommands([get, set, clear])
)

export const setKeyCommand = Command.make("set-key", { ...GlobalOptions.options, key: keyArg }, ({ key, ...own }) =>
  Effect.zipRight(
    Output.notice('cmdop: "connect set-key" is deprecated; use "cmdop connect key set <key>"'),
    setKey(own, key)
  )
).pipe(Command.withDescription('deprecated alias of "key set"'))
