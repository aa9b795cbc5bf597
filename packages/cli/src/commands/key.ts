/**
 * `cmdop connect key get|set|clear` and the deprecated `set-key`: the API key of the active workspace, or of
 * `--workspace NAME` (which `key set` creates when missing).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { ApiKeyPattern, BearerCredential } from "@cmdop/domain/ApiKey"
import * as Secret from "@cmdop/domain/Secret"
import * as Workspace from "@cmdop/domain/Workspace"
import { WorkspaceError } from "@cmdop/domain/WorkspaceError"
import { WorkspaceStore } from "@cmdop/domain/WorkspaceStore"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AgentFollows from "../AgentFollows.js"
import { CliError, ExitCode } from "../CliError.js"
import * as KeyCheck from "../KeyCheck.js"
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

/** A share token: a JWT, three base64url parts. */
const SHARE_TOKEN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** The key's format, checked before anything is stored: an API key (ck_live_/ck_test_ + base62) or a share token. */
const checkFormat = (key: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const raw = Redacted.value(key)
    yield* Schema.decodeUnknown(BearerCredential)(raw).pipe(
      Effect.mapError(
        (e) =>
          new CliError({ message: `invalid API key: ${e.message.split("\n").pop()?.trim()}`, exitCode: ExitCode.usage })
      )
    )
    if (!ApiKeyPattern.test(raw) && !SHARE_TOKEN.test(raw))
      return yield* new CliError({
        message: `invalid API key ${Secret.mask(key)}: a key looks like ck_live_ (or ck_test_) followed by at least 32 letters and digits, or is a share token; nothing was stored`,
        exitCode: ExitCode.usage
      })
  })

/** Shared by `key set` and the deprecated `set-key`. */
const setKey = (own: GlobalOptions.Raw, key: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    yield* checkFormat(key)
    const store = yield* WorkspaceStore
    const agent = yield* AgentFollows.snapshot
    const [name, wasActive] = yield* store.update((file) =>
      Effect.gen(function* () {
        const named = g.workspace !== undefined ? yield* parseName(g.workspace) : undefined
        const name = named ?? Workspace.activeName(file)
        if (name === undefined)
          return yield* new WorkspaceError({ reason: "NoActive", name: "", known: Workspace.names(file) })
        const withKey = yield* Workspace.setKey(file, name, key, { create: named !== undefined })
        // `--server` given with the key is saved with it (the README's line for a second machine).
        const next =
          g.server === undefined
            ? withKey
            : Workspace.upsert(withKey, { ...Workspace.find(withKey, name)!, server: g.server })
        return [[name, Workspace.activeName(next) === name] as const, next] as const
      })
    )
    const accepted = yield* KeyCheck.accepted(g, name, key)
    if (g.json)
      return yield* Output.json({
        workspace: name,
        api_key: Secret.mask(key),
        ...(g.server === undefined ? {} : { server: g.server }),
        relay_accepts: accepted.accepts
      })
    yield* Output.line(
      `stored key ${Secret.mask(key)} for workspace ${name}${g.server === undefined ? "" : ` (server ${g.server})`}`
    )
    yield* Output.notice(`cmdop: ${accepted.line}`)
    if (wasActive) yield* AgentFollows.activeChanged(agent, name)
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
    yield* Output.line(`cleared the key of workspace ${name}; calls fall through to CMDOP_API_KEY`)
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
