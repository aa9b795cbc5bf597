/**
 * Whether the relay accepts a workspace's stored key, asked right after `key set` so a bad key is noticed at once
 * instead of when the agent next reconnects. Never fails: offline or slow relays get a line saying the key could
 * not be checked.
 */
import * as Messages from "./Messages.js"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as GlobalOptions from "./GlobalOptions.js"

/** How long the check may take before it gives up (it is advice, not the command's work). */
const CHECK_TIMEOUT = "3 seconds"

export interface Verdict {
  /** true / false when the relay answered; null when it could not be asked. */
  readonly accepts: boolean | null
  readonly line: string
}

/** Asks the relay of workspace `name` (or `--server`) whether it accepts `key`. */
export const accepted = (g: GlobalOptions.Globals, name: string, key: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const Remote = yield* Effect.promise(() => import("./Remote.js"))
    return yield* Remote.withClient({ ...g, apiKey: key, workspace: name }, (client) =>
      Effect.map(client.whoami, (me): Verdict => ({
        accepts: true,
        line: `the relay at ${client.server} accepts it (workspace ${me.workspaceName})`
      }))
    ).pipe(
      Effect.timeoutFail({ duration: CHECK_TIMEOUT, onTimeout: () => ({ _tag: "Timeout" as const }) }),
      Effect.catchAll((e: unknown) => {
        const tag = typeof e === "object" && e !== null && "_tag" in e ? (e as { _tag: string })._tag : ""
        const reason = typeof e === "object" && e !== null && "reason" in e ? (e as { reason: string }).reason : ""
        if (tag === "AccessError" || reason === "Unauthenticated")
          return Effect.succeed<Verdict>({
            accepts: false,
            line: `warning: the relay does not accept this key (${(e as { message?: string }).message ?? "unauthenticated"}); calls with it will fail until you set the right one`
          })
        // Why, when it says something a person can act on (a certificate not trusted here, a plaintext port).
        const said = Messages.forUser(typeof e === "object" && e !== null && "message" in e ? String(e.message) : "")
        const why = /does not trust|closed the connection at once|does not answer TLS/.test(said)
          ? `: ${said}`
          : " (offline?)"
        return Effect.succeed<Verdict>({
          accepts: null,
          line: `could not reach the relay to check the key${why}; it is stored and will be used on the next call`
        })
      })
    )
  })
