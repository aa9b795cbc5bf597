/**
 * `cmdop connect share list [host] [--limit N] [--after CURSOR] [--all] [--json]`: the workspace's share links, a
 * page at a time (oldest first), so a workspace flooded with links still lists quickly and readably. A page that
 * is not the last ends with a "more:" line giving the command for the next one; `--json` carries the cursor as
 * `next` (null on the last page); `--all` reads every page.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { formatAge } from "@cmdop/domain/Age"
import type { RelayClient } from "@cmdop/domain/RelayClient"
import { formatInstant } from "@cmdop/domain/ShareError"
import type { ShareLink } from "@cmdop/domain/ShareLink"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError, ExitCode } from "../CliError.js"
import { globals } from "../ConnectCommand.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import { statusOf, view } from "./shareView.js"

const remote = Effect.promise(() => import("../Remote.js"))

/** The relay's largest page (it refuses more); also the page size `--all` reads with. */
export const MAX_PAGE = 500

/** Every page from `after` on, `limit` links a request. */
const allPages = (client: RelayClient["Type"], host: string | undefined, limit: number, after: string | undefined) =>
  Effect.gen(function* () {
    const links: Array<ShareLink> = []
    let cursor = after
    for (;;) {
      const page = yield* client.listShares(host, { limit, ...(cursor === undefined ? {} : { after: cursor }) })
      links.push(...page.links)
      if (page.next === undefined) return { links }
      cursor = page.next
    }
  })

/** The command that lists the page after `next`, as the user typed this one. */
const nextCommand = (host: string | undefined, limit: number | undefined, next: string) =>
  [
    "cmdop connect share list",
    ...(host === undefined ? [] : [host]),
    ...(limit === undefined ? [] : [`--limit ${limit}`]),
    `--after ${next}`
  ].join(" ")

export const list = Command.make(
  "list",
  {
    ...GlobalOptions.options,
    limit: Options.integer("limit").pipe(
      Options.withDescription(`links per page, 1 to ${MAX_PAGE} (default: the relay's, 50)`),
      Options.optional
    ),
    after: Options.text("after").pipe(
      Options.withDescription('start after this cursor: the one the previous page printed after "more:"'),
      Options.optional
    ),
    all: Options.boolean("all").pipe(Options.withDescription("every page, not just one")),
    host: Args.text({ name: "host" }).pipe(Args.withDescription("only this machine's links"), Args.optional)
  },
  ({ after, all, host, limit, ...own }) =>
    Effect.gen(function* () {
      const g = yield* globals(own)
      const size = Option.getOrUndefined(limit)
      if (size !== undefined && (size < 1 || size > MAX_PAGE))
        return yield* new CliError({
          message: `--limit takes 1 to ${MAX_PAGE} links per page, not ${size}; use --all to read every page`,
          exitCode: ExitCode.usage
        })
      const machine = Option.getOrUndefined(host)
      const start = Option.getOrUndefined(after)
      const Remote = yield* remote
      const page = yield* Remote.withClient(g, (client) =>
        all
          ? allPages(client, machine, size ?? MAX_PAGE, start)
          : client.listShares(machine, {
              ...(size === undefined ? {} : { limit: size }),
              ...(start === undefined ? {} : { after: start })
            })
      )
      const now = yield* Clock.currentTimeMillis
      if (g.json) return yield* Output.json({ links: page.links.map((l) => view(l, now)), next: page.next ?? null })
      if (page.links.length === 0)
        return yield* Output.notice(
          start === undefined
            ? 'no share links; mint one with "cmdop connect share <host>"'
            : "no share links after this cursor: that was the last page"
        )
      yield* Output.line(
        Output.table(
          ["ID", "MACHINE", "STATUS", "EXPIRES", "USES", "LAST USED", "CREATOR"],
          page.links.map((l) => [
            l.id,
            l.machineHostname,
            statusOf(l, now),
            l.expiresAt === undefined ? "never" : formatInstant(l.expiresAt),
            String(l.useCount),
            l.lastUsedAt === undefined ? "never" : `${formatAge(now - l.lastUsedAt)} ago`,
            l.creator
          ])
        )
      )
      if (page.next !== undefined) yield* Output.line(`more: ${nextCommand(machine, size, page.next)}`)
    })
).pipe(
  Command.withDescription(
    "list the workspace's share links with their status and audit trail, a page at a time (--all: every page; --json)"
  )
)
