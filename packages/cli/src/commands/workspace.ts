/**
 * `cmdop connect workspace` (alias `ws`): show, list, use, add and remove workspaces in the local store. Local
 * only: nothing here talks to a relay.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { WorkspaceStore } from "@cmdop/domain/WorkspaceStore"
import * as Workspace from "@cmdop/domain/Workspace"
import * as Secret from "@cmdop/domain/Secret"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as AgentFollows from "../AgentFollows.js"
import { CliError, ExitCode } from "../CliError.js"
import { globals } from "../ConnectCommand.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import { syncCommand } from "./workspaceSync.js"

const nameArg = Args.text({ name: "name" }).pipe(Args.withDescription("workspace name, e.g. production"))

/** Validates a user-typed workspace name with a message that says what a name looks like. */
export const parseName = (raw: string) =>
  Schema.decodeUnknown(Workspace.WorkspaceName)(raw).pipe(
    Effect.mapError(
      () =>
        new CliError({
          message: `invalid workspace name "${raw}": use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
          exitCode: ExitCode.usage
        })
    )
  )

const describe = (file: Workspace.WorkspaceFile, w: Workspace.Workspace) => ({
  name: w.name,
  active: Workspace.activeName(file) === w.name,
  api_key: w.api_key && Workspace.hasKey(w) ? Secret.mask(w.api_key) : null,
  server: w.server && w.server !== "" ? w.server : null,
  remote_id: w.remote_id ?? null,
  remote_name: w.remote_name ?? null,
  last_synced_at: w.last_synced_at ?? null
})

const show = Command.make("workspace", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const store = yield* WorkspaceStore
    const file = yield* store.load
    const name = Workspace.activeName(file)
    const active = name === undefined ? undefined : Workspace.find(file, name)
    if (g.json) return yield* Output.json({ active: active ? describe(file, active) : null })
    if (!active) return yield* Workspace.active(file)
    yield* Output.line(active.name)
  })
).pipe(Command.withDescription("print the active workspace"))

const list = Command.make("list", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const file = yield* Effect.flatMap(WorkspaceStore, (s) => s.load)
    const rows = file.workspaces.map((w) => describe(file, w))
    if (g.json) return yield* Output.json({ active: Workspace.activeName(file) ?? null, workspaces: rows })
    if (rows.length === 0)
      return yield* Output.notice(
        'no workspaces stored; add one with "cmdop connect workspace add <name> --api-key <key>"'
      )
    yield* Output.line(
      Output.table(
        ["", "NAME", "API KEY", "SERVER", "LAST SYNCED"],
        rows.map((r) => [
          r.active ? "*" : " ",
          r.name,
          r.api_key ?? "-",
          r.server ?? "(default)",
          r.last_synced_at ?? "never"
        ])
      )
    )
  })
).pipe(Command.withDescription("list stored workspaces; the active one is marked with *"))

const use = Command.make("use", { ...GlobalOptions.options, name: nameArg }, ({ name, ...own }) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const store = yield* WorkspaceStore
    const agent = yield* AgentFollows.snapshot
    yield* store.update((file) => Effect.map(Workspace.use(file, name), (next) => [undefined, next] as const))
    if (g.json) return yield* Output.json({ active: name })
    yield* Output.line(`active workspace: ${name}`)
    yield* AgentFollows.activeChanged(agent, name)
  })
).pipe(Command.withDescription("make a stored workspace the active one (unknown names change nothing)"))

const force = Options.boolean("force").pipe(
  Options.withDescription("change the workspace if it exists: its key (--api-key) and server (--server)")
)

/**
 * `file` with workspace `name` changed by the given key and server (kept when not given). A web address recorded
 * with another server (`cmdop up`'s) is dropped with it: it was that relay's.
 */
const change = (file: Workspace.WorkspaceFile, name: string, g: GlobalOptions.Globals) =>
  Effect.map(Workspace.get(file, name), ({ web_url, ...w }) =>
    Workspace.upsert(file, {
      ...w,
      ...(web_url !== undefined && (!g.server || g.server === w.server) ? { web_url } : {}),
      ...(g.apiKey ? { api_key: g.apiKey } : {}),
      ...(g.server ? { server: g.server } : {})
    })
  )

const add = Command.make("add", { ...GlobalOptions.options, force, name: nameArg }, ({ force, name: raw, ...own }) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const name = yield* parseName(raw)
    const store = yield* WorkspaceStore
    const [file, existed] = yield* store.update((file) =>
      Effect.gen(function* () {
        const existed = Workspace.find(file, name) !== undefined
        const next =
          existed && force
            ? yield* change(file, name, g)
            : yield* Workspace.add(file, {
                name,
                ...(g.apiKey ? { api_key: g.apiKey } : {}),
                ...(g.server ? { server: g.server } : {})
              })
        return [[next, existed] as const, next] as const
      })
    )
    const added = Workspace.find(file, name)!
    if (g.json) return yield* Output.json(describe(file, added))
    yield* Output.line(
      `${existed ? "changed" : "added"} workspace ${name}${Workspace.activeName(file) === name ? " (active)" : ""}${
        g.apiKey ? ` with key ${Secret.mask(g.apiKey)}` : ""
      }${g.server ? ` and server ${g.server}` : ""}`
    )
    if (!added.api_key) yield* Output.notice(`set its key with "cmdop connect key set <key> --workspace ${name}"`)
  })
).pipe(Command.withDescription("store a new workspace (--api-key K, --server S); with --force, change an existing one"))

const set = Command.make("set", { ...GlobalOptions.options, name: nameArg }, ({ name, ...own }) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    if (!g.apiKey && !g.server)
      return yield* new CliError({
        message: `nothing to change: cmdop connect workspace set ${name} --api-key K and/or --server S`,
        exitCode: ExitCode.usage
      })
    const store = yield* WorkspaceStore
    const agent = yield* AgentFollows.snapshot
    const file = yield* store.update((file) => Effect.map(change(file, name, g), (next) => [next, next] as const))
    const w = Workspace.find(file, name)!
    if (g.json) return yield* Output.json(describe(file, w))
    yield* Output.line(
      `changed workspace ${name}:${g.apiKey ? ` key ${Secret.mask(g.apiKey)}` : ""}${g.server ? ` server ${g.server}` : ""}`
    )
    if (Workspace.activeName(file) === name) yield* AgentFollows.activeChanged(agent, name)
  })
).pipe(Command.withDescription("change a stored workspace's key (--api-key K) and/or server (--server S)"))

const remove = Command.make("remove", { ...GlobalOptions.options, name: nameArg }, ({ name, ...own }) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const store = yield* WorkspaceStore
    const agent = yield* AgentFollows.snapshot
    const wasActive = yield* store.update((file) =>
      Effect.map(Workspace.remove(file, name), (next) => [Workspace.activeName(file) === name, next] as const)
    )
    if (g.json) return yield* Output.json({ removed: name, was_active: wasActive })
    yield* Output.line(`removed workspace ${name} (local only; the relay is not touched)`)
    if (wasActive)
      yield* Output.notice('no workspace is active now; pick one with "cmdop connect workspace use <name>"')
    yield* AgentFollows.removed(agent, name)
  })
).pipe(Command.withDescription("forget a stored workspace (local only; never touches the relay)"))

const subcommands = [list, use, add, set, remove, syncCommand] as const

/** `workspace` and its alias `ws`. */
export const workspaceCommand = show.pipe(
  Command.withDescription("manage the local workspaces (alias: ws); bare: print the active one"),
  Command.withSubcommands(subcommands)
)
export const wsAlias = Command.make("ws", GlobalOptions.options, show.handler).pipe(
  Command.withDescription("alias of workspace"),
  Command.withSubcommands(subcommands)
)
