/**
 * `cmdop relay workspace list`, on the relay host: every workspace of this relay with its id, its API key
 * generation (how many times its key was issued) and its machines (how many, how many online). Keys themselves are
 * never shown: the relay stores only their hashes.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Output from "../Output.js"
import { storeOptions, when, withStore } from "./relayStore.js"

export const workspaceList = Command.make("list", storeOptions, (args) =>
  Effect.gen(function* () {
    const rows = yield* withStore(args, (store) =>
      Effect.flatMap(store.listWorkspaces, (workspaces) =>
        Effect.forEach(workspaces, (ws) =>
          Effect.map(store.listMachines(ws.id), (machines) => ({
            ws,
            machines: machines.length,
            online: machines.filter((m) => m.online).length
          }))
        )
      )
    )
    if (args.json)
      return yield* Output.json({
        workspaces: rows.map(({ machines, online, ws }) => ({
          name: ws.name,
          id: ws.id,
          created_at: new Date(ws.createdAt).toISOString(),
          key_generation: ws.keyGeneration,
          machines,
          online
        }))
      })
    if (rows.length === 0)
      return yield* Output.notice("no workspaces on this relay yet; create one: cmdop relay workspace create <name>")
    yield* Output.line(
      Output.table(
        ["WORKSPACE", "ID", "CREATED", "KEY GEN", "MACHINES"],
        rows.map(({ machines, online, ws }) => [
          ws.name,
          ws.id,
          when(ws.createdAt),
          String(ws.keyGeneration),
          `${machines} (${online} online)`
        ])
      )
    )
  })
).pipe(Command.withDescription("every workspace on this relay: id, created, key generation, machines"))
