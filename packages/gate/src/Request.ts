/**
 * What the gate is asked: who is calling, how the session runs, and for exec what it runs. The agent builds one
 * per session from the relay's request before anything is spawned.
 */
import type { CallerKind, Mode } from "./Policy.js"

export interface Caller {
  readonly kind: CallerKind
  /** The signed-in person's email (caller kind `user`). */
  readonly user?: string
  /** The share link id (caller kind `guest`). */
  readonly shareId?: string
  /** A display name for audit (key name, email, or link label). */
  readonly name?: string
}

export interface GateRequest {
  readonly caller: Caller
  readonly mode: Mode
  /** For exec: the argv as sent. With `shell`, the agent runs `argv.join(" ")` through a POSIX shell. */
  readonly argv?: ReadonlyArray<string>
  readonly shell?: boolean
  /** Environment the caller asked for (merged over the agent's); names that can change what runs are gated. */
  readonly env?: Readonly<Record<string, string>>
}
