/** The daemon's `daemon.status` writer: one file rewritten on every change, keeping `since` while the state stays. */
import type * as FileSystem from "@effect/platform/FileSystem"
import type { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as AgentIdentity from "../AgentIdentity.js"
import * as DaemonStatus from "../DaemonStatus.js"

export interface Details {
  readonly server?: string
  /** The node of `server` in use or being tried. */
  readonly relay?: string
  readonly workspace?: string
  readonly last_error?: string
}

export interface StatusWriter {
  /** Writes the new state; never fails (a write error is logged). */
  readonly set: (
    state: DaemonStatus.State,
    details: Details
  ) => Effect.Effect<void, never, FileSystem.FileSystem | CmdopPaths>
}

export const make = (identity: AgentIdentity.Identity): StatusWriter => {
  let current: DaemonStatus.Status | undefined
  return {
    set: (state, details) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const since =
          current !== undefined && current.state === state
            ? current.since
            : new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z")
        const relay = details.relay ?? current?.relay
        const next: DaemonStatus.Status = {
          state,
          pid: process.pid,
          since,
          server: details.server ?? current?.server ?? "",
          ...(relay === undefined ? {} : { relay }),
          workspace: details.workspace ?? current?.workspace ?? "",
          machine_id: identity.machine_id,
          ...(details.last_error === undefined ? {} : { last_error: details.last_error })
        }
        current = next
        yield* DaemonStatus.write(next).pipe(
          Effect.catchAll((error) => Effect.logWarning(`cannot write the daemon status: ${error.message}`))
        )
      })
  }
}
