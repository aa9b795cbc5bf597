/**
 * Machines as the relay knows them, and name resolution (spec 4.3), the same in the CLI, the relay and the
 * library. The rule, in order, the first step that matches anything deciding (`docs/machine-names.md`):
 *
 * 1. a full UUID matches only that id;
 * 2. the exact hostname (case-insensitive);
 * 3. the exact display name;
 * 4. a prefix: of the id (4+ characters), of a hostname or of a name (2+ characters, case-insensitive);
 * 5. only when `loose` (the default): a part of a hostname or name (2+ characters, case-insensitive).
 *
 * Several matches is an error listing every candidate. `exec` resolves with `loose: false`: a command never runs on
 * a machine picked by a part of its name, which the user may have meant for another.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { MachineError } from "./MachineError.js"
import * as Nearest from "./Nearest.js"

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

/**
 * Whether a display name may be stored: not empty, and no control character. Names are printed as they are in
 * other people's terminals (`connect --list`, the picker), so an escape sequence in one would act there.
 */
export const isDisplayName = (name: string): boolean => name.trim() !== "" && !/[\u0000-\u001f\u007f-\u009f]/.test(name)

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

/** How a query picked its machine: the step of the rule that decided. */
export type MatchKind = "id" | "hostname" | "name" | "prefix" | "part"

/** The shortest id prefix that resolves (shorter hex strings are taken for names only). */
export const MIN_ID_PREFIX = 4
/** The shortest query a prefix or part of a hostname or name may be. */
export const MIN_PARTIAL = 2

export interface ResolveOptions {
  /** Whether a part of a hostname or name (step 5) may pick the machine. Default true. */
  readonly loose?: boolean
}

const ID_PREFIX = /^[0-9a-f][0-9a-f-]*$/i

/**
 * The machines `query` matches at the deciding step, and that step; none when nothing matches. Pure and total:
 * the relay calls it on its store, the in-memory relay on its map, the CLI on a listing, and the result is the same.
 */
export const matches = (
  machines: ReadonlyArray<Machine>,
  query: string,
  options: ResolveOptions = {}
): { readonly kind: MatchKind; readonly found: ReadonlyArray<Machine> } | undefined => {
  const q = query.trim()
  if (q === "") return undefined
  const lower = q.toLowerCase()
  if (isMachineId(q)) {
    const byId = machines.filter((m) => m.id.toLowerCase() === lower)
    return byId.length ? { kind: "id", found: byId } : undefined
  }
  const byHost = machines.filter((m) => m.hostname.toLowerCase() === lower)
  if (byHost.length) return { kind: "hostname", found: byHost }
  const byName = machines.filter((m) => m.name === q)
  if (byName.length) return { kind: "name", found: byName }
  if (q.length < MIN_PARTIAL) return undefined
  const idPrefix = q.length >= MIN_ID_PREFIX && ID_PREFIX.test(q)
  const byPrefix = machines.filter(
    (m) =>
      (idPrefix && m.id.toLowerCase().startsWith(lower)) ||
      m.hostname.toLowerCase().startsWith(lower) ||
      m.name.toLowerCase().startsWith(lower)
  )
  if (byPrefix.length) return { kind: "prefix", found: byPrefix }
  if (options.loose === false) return undefined
  const byPart = machines.filter(
    (m) => m.hostname.toLowerCase().includes(lower) || m.name.toLowerCase().includes(lower)
  )
  return byPart.length ? { kind: "part", found: byPart } : undefined
}

/** At most this many machines are suggested for a name that matches none. */
const MAX_SUGGESTIONS = 3

/**
 * The machines whose hostname or name is within two edits of a `query` that matched none (`web-1` for `web-01`),
 * nearest first: "did you mean" in the not-found error. Only ever the caller's own workspace's machines.
 */
const nearMisses = (machines: ReadonlyArray<Machine>, query: string) => {
  const lower = query.toLowerCase()
  return machines
    .map((m) => ({
      m,
      d: Math.min(Nearest.distance(lower, m.hostname.toLowerCase()), Nearest.distance(lower, m.name.toLowerCase()))
    }))
    .filter(({ d }) => Nearest.isNear(d, lower))
    .sort((x, y) => x.d - y.d)
    .slice(0, MAX_SUGGESTIONS)
    .map(({ m }) => candidateOf(m))
}

/** The one machine `query` names, with the step that picked it; `NotFound` or `Ambiguous` (every candidate). */
export const resolveMatch = (
  machines: ReadonlyArray<Machine>,
  query: string,
  options: ResolveOptions = {}
): Effect.Effect<{ readonly machine: Machine; readonly kind: MatchKind }, MachineError> => {
  const q = query.trim()
  const m = matches(machines, q, options)
  if (m === undefined)
    return Effect.suspend(() =>
      Effect.fail(new MachineError({ reason: "NotFound", query: q, candidates: nearMisses(machines, q) }))
    )
  if (m.found.length === 1) return Effect.succeed({ machine: m.found[0]!, kind: m.kind })
  return Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.fail(new MachineError({ reason: "Ambiguous", query: q, candidates: m.found.map(candidateOf), now }))
  )
}

/** Resolves a user-typed name against the machines of one workspace (the rule above). */
export const resolve = (
  machines: ReadonlyArray<Machine>,
  query: string,
  options: ResolveOptions = {}
): Effect.Effect<Machine, MachineError> => Effect.map(resolveMatch(machines, query, options), (r) => r.machine)

/** The candidate record an ambiguity error carries. */
export const candidateOf = (m: Machine) => ({
  id: m.id,
  hostname: m.hostname,
  name: m.name,
  online: m.online,
  ...(m.lastHeartbeatAt === undefined ? {} : { lastHeartbeatAt: m.lastHeartbeatAt })
})

export { formatAge } from "./Age.js"
