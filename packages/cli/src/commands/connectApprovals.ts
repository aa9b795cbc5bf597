/**
 * `cmdop connect approvals [--watch]`, `connect approve <id> [--for-link]`, `connect deny <id>`: answer the
 * machines' gates' `ask`s remotely, through the relay, with a workspace credential (a share link cannot). The
 * approver recorded in the machine's audit.log is the key's non-secret principal. `--watch` reports each new
 * request (and each settled one) as it comes, one line (or JSON object) each, until interrupted.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { MachineApproval, RelayClient } from "@cmdop/domain/RelayClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { globals } from "../ConnectCommand.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"

const remote = Effect.promise(() => import("../Remote.js"))

const view = (a: MachineApproval, now: number) => ({
  id: a.approval.approvalId,
  machine: a.machine,
  caller: a.approval.caller,
  caller_kind: a.approval.callerKind,
  share_id: a.approval.shareId ?? null,
  user: a.approval.user ?? null,
  mode: a.approval.mode,
  command: a.approval.command,
  rule: a.approval.rule,
  expires_in_s: Math.max(0, Math.round((a.approval.expiresAt - now) / 1000))
})

const render = (list: ReadonlyArray<MachineApproval>, now: number) =>
  Output.table(
    ["ID", "MACHINE", "CALLER", "MODE", "COMMAND", "EXPIRES IN"],
    list.map((a) => {
      const v = view(a, now)
      return [
        v.id,
        v.machine,
        v.share_id !== null ? `guest ${v.share_id}` : (v.user ?? v.caller),
        v.mode,
        v.command,
        `${v.expires_in_s}s`
      ]
    })
  )

const WATCH_HELP =
  "keep watching: print each new request as it comes (and when it is settled) until Ctrl-C; with --json, one JSON object per line"

/** One line about a request that has just appeared, for people (`--watch`). */
const pendingLine = (a: MachineApproval, now: number) => {
  const v = view(a, now)
  const who = v.share_id !== null ? `guest ${v.share_id}` : (v.user ?? v.caller)
  return `pending  ${v.id} on ${v.machine}: ${who}, ${v.mode} ${v.command} (${v.rule}), expires in ${v.expires_in_s}s — cmdop connect approve ${v.id} | deny ${v.id}`
}

/**
 * `--watch`: lists what waits now, then reports each change (a new request; one that is no longer pending because
 * it was answered, expired, or its session went away) as one line or one JSON object, until interrupted. The relay
 * is asked once a second (one small unary call).
 */
const watchApprovals = (client: RelayClient["Type"], json: boolean) =>
  Effect.gen(function* () {
    const known = new Map<string, MachineApproval>()
    yield* Output.notice("watching for requests that wait for approval (Ctrl-C to stop)")
    const poll = Effect.gen(function* () {
      const approvals = yield* client.listApprovals
      const now = yield* Clock.currentTimeMillis
      const current = new Map(approvals.map((a) => [a.approval.approvalId, a]))
      for (const a of approvals) {
        if (known.has(a.approval.approvalId)) continue
        known.set(a.approval.approvalId, a)
        yield* Output.line(json ? JSON.stringify({ event: "pending", ...view(a, now) }) : pendingLine(a, now))
      }
      for (const [id, a] of known) {
        if (current.has(id)) continue
        known.delete(id)
        yield* Output.line(
          json
            ? JSON.stringify({ event: "settled", id, machine: a.machine })
            : `settled  ${id} on ${a.machine} (answered, expired, or its session went away)`
        )
      }
    })
    return yield* Effect.repeat(poll, Schedule.spaced("1 second")).pipe(Effect.zipRight(Effect.never))
  })

const list = Command.make(
  "approvals",
  {
    ...GlobalOptions.options,
    watch: Options.boolean("watch").pipe(Options.withDescription(WATCH_HELP))
  },
  ({ watch, ...own }) =>
    Effect.gen(function* () {
      const g = yield* globals(own)
      const Remote = yield* remote
      yield* Remote.withClient(g, (client) =>
        watch
          ? watchApprovals(client, g.json)
          : Effect.gen(function* () {
              const approvals = yield* client.listApprovals
              const now = yield* Clock.currentTimeMillis
              if (g.json) return yield* Output.line(JSON.stringify({ approvals: approvals.map((a) => view(a, now)) }))
              yield* Output.line(approvals.length === 0 ? "no requests wait for approval" : render(approvals, now))
            })
      )
    })
).pipe(Command.withDescription("sessions the machines' gates hold for an operator's approval"))

const answer = (approve: boolean) =>
  Command.make(
    approve ? "approve" : "deny",
    {
      ...GlobalOptions.options,
      ...(approve
        ? {
            forLink: Options.boolean("for-link").pipe(
              Options.withDescription("also let this guest link's later asks through while the agent runs")
            )
          }
        : {}),
      id: Args.text({ name: "id" }).pipe(Args.withDescription("the request id, from cmdop connect approvals"))
    },
    (args) =>
      Effect.gen(function* () {
        const g = yield* globals(args)
        const Remote = yield* remote
        const forLink = "forLink" in args && args.forLink === true
        const done = yield* Remote.withClient(g, (client) =>
          client.answerApproval({ approvalId: args.id, approve, forLink })
        )
        if (g.json)
          return yield* Output.json({ id: args.id, machine: done.machine, approved: approve, for_link: forLink })
        yield* Output.line(
          `${approve ? "approved" : "denied"} ${args.id} on ${done.machine}${forLink ? " (and the rest of the link)" : ""}`
        )
      })
  ).pipe(
    Command.withDescription(
      approve ? "let a held session run (--for-link: and the link's later asks)" : "refuse a held session"
    )
  )

export const connectApprovalsCommands = [list, answer(true), answer(false)] as const
