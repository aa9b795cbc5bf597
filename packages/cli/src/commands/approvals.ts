/**
 * `cmdop agent approvals | approve <id> [--for-link] | deny <id>`: answer the gate's `ask` decisions on this machine.
 * The running daemon lists what waits in `<stateDir>/gate/status.json` and picks answers up from
 * `<stateDir>/gate/answers/` (`GateFiles`); only the agent's user can read or write there. A request nobody answers
 * in 60 s is denied.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as GateFiles from "@cmdop/agent/GateFiles"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as os from "node:os"
import { CliError } from "../CliError.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"

const loadAgent = Effect.promise(() => import("../LocalAgent.js"))

/** The running daemon's gate status; fails when no daemon runs. */
const running = Effect.gen(function* () {
  const runtime = yield* loadAgent
  const status = yield* GateFiles.readStatus
  if (status === undefined || !runtime.isAlive(status.pid))
    return yield* new CliError({ message: 'the agent is not running; start it with "cmdop agent start"' })
  return status
})

const age = (ms: number) => `${Math.max(0, Math.round(ms / 1000))}s`

const list = Command.make("approvals", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = GlobalOptions.merge(own, own)
    const status = yield* running
    if (g.json) return yield* Output.json({ pending: status.pending })
    if (status.pending.length === 0) return yield* Output.line("no requests wait for approval")
    const now = yield* Clock.currentTimeMillis
    yield* Output.line(
      Output.table(
        ["ID", "CALLER", "MODE", "COMMAND", "RULE", "EXPIRES IN"],
        status.pending.map((p) => [
          p.id,
          p.share_id !== null ? `guest ${p.share_id}` : p.user !== null ? p.user : `${p.caller_kind} ${p.caller}`,
          p.mode,
          p.command,
          p.rule,
          age(p.expires_at - now)
        ])
      )
    )
  })
).pipe(Command.withDescription("the gate's requests waiting for an operator on this machine"))

const answer = (approve: boolean) =>
  Command.make(
    approve ? "approve" : "deny",
    {
      ...GlobalOptions.options,
      ...(approve
        ? {
            forLink: Options.boolean("for-link").pipe(
              Options.withDescription("also approve this guest link's later asks while the agent runs")
            )
          }
        : {}),
      id: Args.text({ name: "id" }).pipe(Args.withDescription("the request id, from cmdop agent approvals"))
    },
    (args) =>
      Effect.gen(function* () {
        const g = GlobalOptions.merge(args, args)
        const status = yield* running
        const pending = status.pending.find((p) => p.id === args.id)
        if (pending === undefined)
          return yield* new CliError({
            message: `no request ${args.id} waits for approval (answered, expired, or unknown); see "cmdop agent approvals"`
          })
        const forLink = "forLink" in args && args.forLink === true
        const approver = `${os.userInfo().username}@${os.hostname()} (on the machine)`
        yield* GateFiles.writeAnswer(args.id, { approve, for_link: forLink, approver }).pipe(
          Effect.mapError((e) => new CliError({ message: `cannot answer ${args.id}: ${e.message}` }))
        )
        // The daemon takes the answer within a fraction of a second; confirm it did.
        const deadline = (yield* Clock.currentTimeMillis) + 5_000
        for (;;) {
          const now = yield* GateFiles.readStatus
          if (now === undefined || !now.pending.some((p) => p.id === args.id)) break
          if ((yield* Clock.currentTimeMillis) > deadline)
            return yield* new CliError({ message: `the agent did not take the answer to ${args.id}; is it running?` })
          yield* Effect.sleep("50 millis")
        }
        if (g.json) return yield* Output.json({ id: args.id, approved: approve, for_link: forLink })
        yield* Output.line(
          `${approve ? "approved" : "denied"} ${args.id}${forLink ? " (and the rest of the link)" : ""}`
        )
      })
  ).pipe(
    Command.withDescription(
      approve ? "let a held request run (--for-link: and the link's later asks)" : "refuse a held request"
    )
  )

export const approvalsCommands = [list, answer(true), answer(false)] as const
