/**
 * What a request will really run, as the gate reads it: the commands it can read (each decided on its own), the
 * parts it cannot see through (decided as "arbitrary shell"), and any floor hits. `Reader.read` builds one.
 */
import type { ArgWord } from "./CommandPattern.js"
import type { FloorHit } from "./Floor.js"

/** A piece of a request that the policy decides on its own. */
export type Unit =
  /** A simple command the gate can read: `words` is what it will run (as written, before wrappers run). */
  | { readonly _tag: "Command"; readonly words: ReadonlyArray<ArgWord>; readonly text: string }
  /** Code or settings the gate cannot see through (`eval`, `$cmd`, `> file`, a caller-set `PATH`, …). */
  | { readonly _tag: "Hidden"; readonly text: string; readonly reason: string }

export interface Plan {
  readonly units: ReadonlyArray<Unit>
  readonly floor: ReadonlyArray<FloorHit>
  /** Set when the request cannot be read at all (a shell line that does not parse, an empty command). */
  readonly error?: string
}
