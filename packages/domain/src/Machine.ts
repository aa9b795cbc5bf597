/**
 * Machines as the relay knows them, and name resolution (spec 4.3), the same in the CLI, the relay and the
 * library: a full UUID matches only that id; then exact hostname (case-insensitive); then exact display name;
 * then a unique prefix or substring (2+ characters) of hostname or name. Several matches is an error listing
 * every candidate.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { MachineError } from "./MachineError.js"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A machine's stable id: a UUID chosen by the agent at `agent register`. */
export const MachineId = Schema.String.pipe(
  Schema.pattern(UUID, { message: () => "a machine id is a UUID (8-4-4-4-12 hex digits)" }),
  Schema.brand("MachineId")
)
export type MachineId = typeof MachineId.Type

/** A workspace's id on the relay (opaque, `ws_…`). */
export const WorkspaceId = Schema.String.pipe(Schema.minLength(1), Schema.brand("WorkspaceId"))
export type WorkspaceId = typeof WorkspaceId.Type

/** A hostname as the agent reports it: 1–253 characters of letters, digits, `.`, `-`, `_`. */
export const Hostname = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, {
    message: () => "a hostname is letters, digits, '.', '-' or '_' (at most 253), starting with a letter or digit"
  })
)

/** What a listing shows of a machine. */
export class Machine extends Schema.Class<Machine>("Machine")({
  id: MachineId,
  workspaceId: WorkspaceId,
  hostname: Hostname,
  name: Schema.String,
  os: Schema.String,
  agentVersion: Schema.String,
  online: Schema.Boolean,
  /** Milliseconds since the epoch of the last heartbeat (or of the handshake); absent when never connected. */
  lastHeartbeatAt: Schema.optional(Schema.Number),
  /** While online: whether its agent runs with a permissions.yaml (false: no gate configured); absent: unknown. */
  gateConfigured: Schema.optional(Schema.Boolean)
}) {}

/** True when the string is a full machine id. */
export const isMachineId = (s: string): boolean => UUID.test(s)

/**
 * Resolves a user-typed name against the machines of one workspace. Pure: the relay calls it on its store, the
 * in-memory relay on its map, and the result is the same.
 */
export const resolve = (machines: ReadonlyArray<Machine>, query: string): Effect.Effect<Machine, MachineError> => {
  const q = query.trim()
  const one = (found: ReadonlyArray<Machine>) =>
    found.length === 1
      ? Effect.succeed(found[0]!)
      : Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.fail(new MachineError({ reason: "Ambiguous", query: q, candidates: found.map(candidateOf), now }))
        )
  const notFound = Effect.suspend(() => Effect.fail(new MachineError({ reason: "NotFound", query: q, candidates: [] })))
  if (q === "") return notFound
  if (isMachineId(q)) {
    const byId = machines.filter((m) => m.id.toLowerCase() === q.toLowerCase())
    return byId.length ? one(byId) : notFound
  }
  const lower = q.toLowerCase()
  const byHost = machines.filter((m) => m.hostname.toLowerCase() === lower)
  if (byHost.length) return one(byHost)
  const byName = machines.filter((m) => m.name === q)
  if (byName.length) return one(byName)
  if (q.length < 2) return notFound
  const partial = machines.filter(
    (m) => m.hostname.toLowerCase().includes(lower) || m.name.toLowerCase().includes(lower)
  )
  return partial.length ? one(partial) : notFound
}

/** The candidate record an ambiguity error carries. */
export const candidateOf = (m: Machine) => ({
  id: m.id,
  hostname: m.hostname,
  name: m.name,
  online: m.online,
  ...(m.lastHeartbeatAt === undefined ? {} : { lastHeartbeatAt: m.lastHeartbeatAt })
})

export { formatAge } from "./Age.js"
