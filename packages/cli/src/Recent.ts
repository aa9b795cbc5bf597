/**
 * Machines this user attached to recently (`~/.cmdop/recent_machines.json`, newest first, at most 20 ids), so
 * the picker puts them on top. Best effort: a missing or unreadable file is an empty list.
 */
import * as AtomicFile from "@cmdop/node/AtomicFile"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Effect from "effect/Effect"
import * as path from "node:path"

const fileOf = (root: string) => path.join(root, "recent_machines.json")

export const load = Effect.gen(function* () {
  const paths = yield* CmdopPaths
  const text = yield* AtomicFile.readIfExists(fileOf(paths.root)).pipe(Effect.orElseSucceed(() => undefined))
  try {
    const ids = JSON.parse(text ?? "[]")
    return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === "string") : []
  } catch {
    return []
  }
})

export const remember = (machineId: string) =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const ids = [machineId, ...(yield* load).filter((id) => id !== machineId)].slice(0, 20)
    yield* AtomicFile.ensurePrivateDir(paths.root)
    yield* AtomicFile.write(fileOf(paths.root), JSON.stringify(ids) + "\n")
  }).pipe(Effect.ignore)
