/**
 * `cmdop relay key list|create|revoke`, run on the relay host: a workspace's named API keys ("ci", "laptop").
 * A new key is printed once; listings show only its prefix. Revoking one key ends its access on the very next
 * call (the relay checks keys against the store on every call, with no cache), and leaves the other keys and the
 * share links alone; `relay key rotate` (in `relay.ts`) retires them all. The store is opened directly, like the
 * other `relay` admin commands: the data dir's SQLite file, or `--db` PostgreSQL. Each change is in the relay's
 * audit trail (actor `relay-host`).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import type { WorkspaceId } from "@cmdop/domain/Machine"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"
import { RelayHost } from "../RelayHost.js"
import { type StoreArgs, storeConfig, storeOptions as relayStoreOptions, withStore } from "./relayStore.js"

const storeOptions = {
  ...relayStoreOptions,
  workspace: Args.text({ name: "workspace" }).pipe(Args.withDescription("workspace name on the relay"))
}

/**
 * Records a key change in the relay's audit trail (actor: the relay host), next to the store (`relay key rotate`,
 * in `relay.ts`, records through it too).
 */
export const auditKeyChange = (
  args: StoreArgs,
  event: {
    readonly action: "key.created" | "key.revoked" | "key.rotated"
    readonly workspaceId: WorkspaceId
    readonly detail: string
  }
) =>
  Effect.gen(function* () {
    const config = yield* storeConfig(args)
    const host = yield* RelayHost
    const RelayAccounts = yield* Effect.promise(() => import("@cmdop/relay/RelayAccounts"))
    const at = yield* Clock.currentTimeMillis
    yield* Effect.flatMap(RelayAccounts.AccountStore, (store) =>
      store.appendAudit({
        actor: "relay-host",
        action: event.action,
        subject: event.workspaceId,
        workspaceId: event.workspaceId,
        detail: event.detail,
        at
      })
    ).pipe(
      Effect.provide(host.accounts(config)),
      Effect.mapError((e) => new CliError({ message: e.message }))
    )
  })

/** The key name, checked before anything is opened. */
const keyName = (raw: string) =>
  Effect.flatMap(
    Effect.promise(() => import("@cmdop/relay/store/records")),
    (records) =>
      Schema.decodeUnknown(records.KeyName)(raw).pipe(
        Effect.mapError(
          () =>
            new CliError({
              message: `invalid key name "${raw}": a key name is 1 to 64 letters, digits, '.', '_' or '-' (e.g. ci, laptop)`,
              exitCode: 2
            })
        )
      )
  )

const masked = (prefix: string) => `${prefix}…`

const keyList = Command.make("list", storeOptions, (args) =>
  Effect.gen(function* () {
    const keys = yield* withStore(args, (store) => store.listKeys(args.workspace))
    if (args.json)
      return yield* Output.json({
        workspace: args.workspace,
        keys: keys.map((k) => ({
          id: k.id,
          name: k.name,
          key: masked(k.prefix),
          generation: k.generation,
          created_at: new Date(k.createdAt).toISOString()
        }))
      })
    if (keys.length === 0)
      return yield* Output.line(
        `workspace ${args.workspace} has no live API key; create one: cmdop relay key create ${args.workspace} <name>`
      )
    yield* Output.line(
      Output.table(
        ["NAME", "KEY", "ID", "CREATED"],
        keys.map((k) => [k.name, masked(k.prefix), k.id, new Date(k.createdAt).toISOString()])
      )
    )
  })
).pipe(Command.withDescription("list a workspace's live API keys (masked: only the prefix is kept)"))

const keyCreate = Command.make(
  "create",
  { ...storeOptions, name: Args.text({ name: "name" }).pipe(Args.withDescription("a name for the key, e.g. ci")) },
  (args) =>
    Effect.gen(function* () {
      const name = yield* keyName(args.name)
      const created = yield* withStore(args, (store) => store.createKey(args.workspace, name))
      yield* auditKeyChange(args, {
        action: "key.created",
        workspaceId: created.key.workspaceId,
        detail: `API key "${created.key.name}" (${created.key.id}) of ${args.workspace} created on the relay host`
      })
      const key = Redacted.value(created.apiKey)
      if (args.json)
        return yield* Output.json({
          workspace: args.workspace,
          id: created.key.id,
          name: created.key.name,
          api_key: key
        })
      yield* Output.line(`new api key "${created.key.name}" for ${args.workspace} (${created.key.id}): ${key}`)
      yield* Output.notice(
        `this key is shown once; store it now, e.g. cmdop connect key set <key> --workspace ${args.workspace}`
      )
    })
).pipe(Command.withDescription("issue one more named API key for a workspace (printed once); the others stay"))

const keyRevoke = Command.make(
  "revoke",
  {
    ...storeOptions,
    key: Args.text({ name: "key" }).pipe(Args.withDescription("the key's name or id (see cmdop relay key list)"))
  },
  (args) =>
    Effect.gen(function* () {
      const revoked = yield* withStore(args, (store) => store.revokeKey(args.workspace, args.key))
      yield* auditKeyChange(args, {
        action: "key.revoked",
        workspaceId: revoked.workspaceId,
        detail: `API key "${revoked.name}" (${revoked.id}) of ${args.workspace} revoked on the relay host`
      })
      if (args.json)
        return yield* Output.json({ workspace: args.workspace, revoked: { id: revoked.id, name: revoked.name } })
      yield* Output.line(
        `revoked api key "${revoked.name}" (${masked(revoked.prefix)}) of ${args.workspace}: its next call is refused`
      )
    })
).pipe(Command.withDescription("revoke one API key of a workspace: its very next call is refused; the others stay"))

/** The subcommands `relay key` adds next to `rotate`. */
export const relayKeyCommands = [keyList, keyCreate, keyRevoke] as const
