/**
 * Workspaces: the tenant boundary, as the local store `~/.cmdop/ssh_workspaces.json` holds them.
 *
 * The schemas mirror the file exactly (snake_case keys, optional fields may be absent) so a file written by any
 * version round-trips. Unknown fields are kept by decoding and encoding with `onExcessProperty: "preserve"`
 * (see `WorkspaceFileJson`), so a newer CLI's additions survive an older CLI's rewrite.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { WorkspaceError } from "./WorkspaceError.js"

/** A workspace name: 1–64 characters, letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const WorkspaceName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    message: () =>
      "a workspace name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. production)"
  }),
  Schema.brand("WorkspaceName")
)
export type WorkspaceName = typeof WorkspaceName.Type

/** An RFC 3339 UTC timestamp kept as written (so rewriting a file never reformats untouched entries). */
export const Timestamp = Schema.String.pipe(
  Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, {
    message: () => "expected an RFC 3339 timestamp such as 2026-04-22T11:04:31Z"
  })
)

/** One stored workspace. `api_key` is a `Redacted` secret in memory and a plain string in the file. */
export const Workspace = Schema.Struct({
  name: WorkspaceName,
  api_key: Schema.optional(Schema.Redacted(Schema.String)),
  server: Schema.optional(Schema.String),
  /** The relay's web (HTTP) address, recorded with `server` by `cmdop up`; `cmdop login` signs in there. */
  web_url: Schema.optional(Schema.String),
  remote_id: Schema.optional(Schema.String),
  remote_name: Schema.optional(Schema.String),
  last_synced_at: Schema.optional(Timestamp)
})
export type Workspace = typeof Workspace.Type

const uniqueNames = (workspaces: ReadonlyArray<Workspace>): string | true => {
  const seen = new Set<string>()
  for (const w of workspaces) {
    if (seen.has(w.name)) return `workspace "${w.name}" appears twice`
    seen.add(w.name)
  }
  return true
}

/** The whole store file. `active` may be absent or empty when no workspace is chosen. */
export const WorkspaceFile = Schema.Struct({
  active: Schema.optional(Schema.Union(WorkspaceName, Schema.Literal(""))),
  workspaces: Schema.Array(Workspace).pipe(Schema.filter(uniqueNames))
})
export type WorkspaceFile = typeof WorkspaceFile.Type

/** The empty store: what a missing file means. */
export const empty: WorkspaceFile = { workspaces: [] }

/** Parse options that keep unknown fields on decode and on encode. */
export const preserveUnknown = { onExcessProperty: "preserve" } as const

/** The store file from and to its JSON text (two-space indent, trailing newline). */
export const WorkspaceFileJson = Schema.parseJson(WorkspaceFile, { space: 2 })

/** The active workspace's name, if one is set. */
export const activeName = (file: WorkspaceFile): WorkspaceName | undefined =>
  file.active === undefined || file.active === "" ? undefined : file.active

/** The names of all stored workspaces, in file order. */
export const names = (file: WorkspaceFile): ReadonlyArray<string> => file.workspaces.map((w) => w.name)

/** Looks a workspace up by name. */
export const find = (file: WorkspaceFile, name: string): Workspace | undefined =>
  file.workspaces.find((w) => w.name === name)

/** Looks a workspace up by name, failing with the list of known names. */
export const get = (file: WorkspaceFile, name: string): Effect.Effect<Workspace, WorkspaceError> => {
  const found = find(file, name)
  return found
    ? Effect.succeed(found)
    : Effect.fail(new WorkspaceError({ reason: "NotFound", name, known: names(file) }))
}

/** The active workspace, failing with `NoActive` when none is set or it is missing from the file. */
export const active = (file: WorkspaceFile): Effect.Effect<Workspace, WorkspaceError> => {
  const name = activeName(file)
  return name === undefined
    ? Effect.fail(new WorkspaceError({ reason: "NoActive", name: "", known: names(file) }))
    : get(file, name)
}

/** True when the workspace holds a non-empty API key. */
export const hasKey = (w: Workspace): boolean => w.api_key !== undefined && Redacted.value(w.api_key) !== ""

const replace = (file: WorkspaceFile, next: Workspace): WorkspaceFile => ({
  ...file,
  workspaces: file.workspaces.map((w) => (w.name === next.name ? next : w))
})

/** True when the file names an active workspace and holds it (a hand-edited file may name one it lacks). */
const hasActive = (file: WorkspaceFile): boolean => {
  const name = activeName(file)
  return name !== undefined && find(file, name) !== undefined
}

/**
 * Adds a new workspace; it becomes active when none is, or when the active name is not a stored workspace.
 * Fails when the name is taken.
 */
export const add = (file: WorkspaceFile, workspace: Workspace): Effect.Effect<WorkspaceFile, WorkspaceError> =>
  find(file, workspace.name)
    ? Effect.fail(new WorkspaceError({ reason: "Exists", name: workspace.name, known: names(file) }))
    : Effect.succeed({
        ...file,
        ...(hasActive(file) ? {} : { active: workspace.name }),
        workspaces: [...file.workspaces, workspace]
      })

/** Removes a workspace (local only). Removing the active one leaves no workspace active. */
export const remove = (file: WorkspaceFile, name: string): Effect.Effect<WorkspaceFile, WorkspaceError> =>
  Effect.map(get(file, name), () => ({
    ...file,
    ...(activeName(file) === name ? { active: "" as const } : {}),
    workspaces: file.workspaces.filter((w) => w.name !== name)
  }))

/** Makes `name` the active workspace; an unknown name fails and changes nothing. */
export const use = (file: WorkspaceFile, name: string): Effect.Effect<WorkspaceFile, WorkspaceError> =>
  Effect.map(get(file, name), (w) => ({ ...file, active: w.name }))

/**
 * Sets a workspace's API key. With `create`, a missing workspace is created (and becomes active when none is);
 * without it, a missing workspace is an error.
 */
export const setKey = (
  file: WorkspaceFile,
  name: WorkspaceName,
  key: Redacted.Redacted<string>,
  options: { readonly create: boolean }
): Effect.Effect<WorkspaceFile, WorkspaceError> => {
  const existing = find(file, name)
  if (existing) return Effect.succeed(replace(file, { ...existing, api_key: key }))
  return options.create
    ? add(file, { name, api_key: key })
    : Effect.fail(new WorkspaceError({ reason: "NotFound", name, known: names(file) }))
}

/** Removes a workspace's API key, so the next call falls through to later credential sources. */
export const clearKey = (file: WorkspaceFile, name: string): Effect.Effect<WorkspaceFile, WorkspaceError> =>
  Effect.map(get(file, name), (w) => {
    const { api_key: _dropped, ...rest } = w
    return replace(file, rest)
  })

/** Replaces (or adds) a workspace record as a whole; used by sync. */
export const upsert = (file: WorkspaceFile, workspace: Workspace): WorkspaceFile =>
  find(file, workspace.name) ? replace(file, workspace) : { ...file, workspaces: [...file.workspaces, workspace] }
