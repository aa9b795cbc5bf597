/**
 * How closely a query names a machine, for commands that must not act on a machine picked by a loose substring:
 * its id (or a prefix of the id), its exact hostname or name, or a prefix of either (case-insensitive).
 */
import type { Machine } from "@cmdop/domain/Machine"

/** True when `query` is the machine's id, hostname or name, or a prefix of one. */
export const isPrefixOrExact = (machine: Machine, query: string): boolean => {
  const q = query.trim().toLowerCase()
  return [machine.id, machine.hostname, machine.name].some((field) => field.toLowerCase().startsWith(q))
}
