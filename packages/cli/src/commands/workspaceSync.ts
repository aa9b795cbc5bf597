/**
 * `cmdop connect workspace sync`: pulls the workspaces the logged-in person belongs to from the relay
 * (`GET /apix/machines/workspaces/` with the OAuth token) and upserts them into `ssh_workspaces.json`: match by
 * `remote_id`, then by `name`; set `remote_id`, `remote_name`, `last_synced_at`; keep stored API keys; never
 * delete a workspace the relay did not return. Prints what was added, updated and left alone (or `--json`).
 * API keys cannot list workspaces: without a login it says to run `cmdop login`.
 */
import * as Command from "@effect/cli/Command"
import * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import { OAuthSession } from "@cmdop/domain/OAuthSession"
import * as RelayNode from "@cmdop/domain/RelayNode"
import * as Workspace from "@cmdop/domain/Workspace"
import { WorkspaceStore } from "@cmdop/domain/WorkspaceStore"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as OAuthSessionLive from "@cmdop/node/OAuthSessionLive"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { CliError } from "../CliError.js"
import { globals } from "../ConnectCommand.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import * as RelayWeb from "./relayWeb.js"

/** One workspace as the relay lists it. */
export const RemoteWorkspace = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  role: Schema.String,
  active: Schema.Boolean
})
export type RemoteWorkspace = typeof RemoteWorkspace.Type

const Listing = Schema.Struct({ workspaces: Schema.Array(RemoteWorkspace) })

export interface SyncResult {
  readonly file: Workspace.WorkspaceFile
  readonly added: ReadonlyArray<string>
  readonly updated: ReadonlyArray<string>
  readonly unchanged: ReadonlyArray<string>
}

/** A local name for a relay workspace: its name when valid and free, else a variant that is. */
const localName = (remote: RemoteWorkspace, taken: ReadonlySet<string>): Workspace.WorkspaceName => {
  const base =
    remote.name
      .replace(/[^A-Za-z0-9._-]/g, "-")
      .replace(/^[^A-Za-z0-9]+/, "")
      .slice(0, 56) || "workspace"
  let name = base
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`
  return Workspace.WorkspaceName.make(name)
}

/**
 * The upsert, as a pure function: `remote` merged into `file` at `now` (RFC 3339). New entries get `server` (the
 * relay the login came from); existing ones keep their name, key and server.
 */
export const merge = (
  file: Workspace.WorkspaceFile,
  remote: ReadonlyArray<RemoteWorkspace>,
  now: string,
  server: string
): SyncResult => {
  const workspaces = [...file.workspaces]
  const added: Array<string> = []
  const updated: Array<string> = []
  const touched = new Set<number>()
  for (const r of remote) {
    let index = workspaces.findIndex((w) => w.remote_id === r.id)
    if (index < 0)
      index = workspaces.findIndex((w, i) => w.name === r.name && !touched.has(i) && w.remote_id === undefined)
    if (index >= 0) {
      workspaces[index] = { ...workspaces[index]!, remote_id: r.id, remote_name: r.name, last_synced_at: now }
      touched.add(index)
      updated.push(workspaces[index]!.name)
    } else {
      const name = localName(r, new Set(workspaces.map((w) => w.name)))
      workspaces.push({ name, server, remote_id: r.id, remote_name: r.name, last_synced_at: now })
      touched.add(workspaces.length - 1)
      added.push(name)
    }
  }
  const unchanged = workspaces.filter((_, i) => !touched.has(i)).map((w) => w.name)
  return { file: { ...file, workspaces }, added, updated, unchanged }
}

/** The relay's listing for the session's access token. */
const fetchListing = (web: string, token: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const response = yield* Effect.tryPromise({
      try: () =>
        fetch(`${web}/apix/machines/workspaces/`, { headers: { authorization: `Bearer ${Redacted.value(token)}` } }),
      catch: (e) => new CliError({ message: `cannot reach the relay at ${web}: ${(e as Error).message}` })
    })
    const body = yield* Effect.tryPromise({
      try: () => response.json() as Promise<unknown>,
      catch: () => new CliError({ message: `the relay at ${web} answered ${response.status} without JSON` })
    })
    if (response.status === 401)
      return yield* new CliError({ message: 'your login has expired or was revoked; log in again with "cmdop login"' })
    if (!response.ok) {
      const message = (body as { message?: unknown }).message
      return yield* new CliError({
        message: typeof message === "string" ? message : `the relay answered ${response.status}`
      })
    }
    return yield* Schema.decodeUnknown(Listing)(body).pipe(
      Effect.mapError(() => new CliError({ message: `the relay at ${web} sent a workspace list this CLI cannot read` }))
    )
  })

export const syncCommand = Command.make("sync", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = yield* globals(own)
    const session = yield* Effect.flatMap(OAuthSession, (s) => s.current)
    if (Option.isNone(session))
      return yield* new CliError({
        message: 'workspace sync needs a login (API keys cannot list workspaces): run "cmdop login" first'
      })
    // Sync lists the workspaces of the login's relay: a --server (or CMDOP_SERVER) naming another one is not
    // silently ignored.
    const env = yield* CredentialResolver.environment
    const named = [g.server, env.CMDOP_SERVER, env.CMDOP_GRPC_SERVER].find((s) => s !== undefined && s.trim() !== "")
    if (named !== undefined && !RelayNode.same(named, session.value.server))
      return yield* new CliError({
        message: `workspace sync lists the workspaces of the relay your login is for, ${session.value.server}, not ${named}: sign in there with "cmdop login --server ${named}" to sync its workspaces`
      })
    const paths = yield* CmdopPaths
    const stored = yield* OAuthSessionLive.read(paths.token).pipe(Effect.orElseSucceed(() => Option.none()))
    const web = Option.isSome(stored)
      ? stored.value.issuer
      : (yield* RelayWeb.target({ server: Option.some(session.value.server), webUrl: Option.none() })).web
    const listing = yield* fetchListing(web, session.value.accessToken)
    const now = DateTime.formatIso(yield* DateTime.now).replace(/\.\d+Z$/, "Z")
    const store = yield* WorkspaceStore
    const result = yield* store.update((file) => {
      const r = merge(file, listing.workspaces, now, session.value.server)
      return Effect.succeed([r, r.file] as const)
    })
    if (g.json) return yield* Output.json({ added: result.added, updated: result.updated, unchanged: result.unchanged })
    const list = (names: ReadonlyArray<string>) => (names.length === 0 ? "none" : names.join(", "))
    yield* Output.line(`added: ${list(result.added)}`)
    yield* Output.line(`updated: ${list(result.updated)}`)
    yield* Output.line(`left alone: ${list(result.unchanged)}`)
  })
).pipe(Command.withDescription("pull your workspaces from the relay (needs cmdop login); keeps keys, deletes nothing"))
