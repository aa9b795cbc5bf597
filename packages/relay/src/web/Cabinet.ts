/**
 * The web cabinet (`/cabinet`), server-rendered with no script: a signed-in person's workspaces and the active
 * one (switching it is what moves their machines at their next heartbeat); in the active workspace, the machines
 * with online state, heartbeat age and a "connect" button (members and owners) that opens the browser terminal;
 * share links with status and audit, and revoke; and for owners, the API keys (`CabinetKeys.ts`) and the members
 * with their roles. The forms are in `CabinetActions.ts`; every one carries the session's CSRF token.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import type { UserId } from "@cmdop/accounts/AccountStore"
import * as Machine from "@cmdop/domain/Machine"
import type { ShareLink } from "@cmdop/domain/ShareLink"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Caller } from "../Authenticator.js"
import { RelayCore } from "../RelayCore.js"
import { RelayStore } from "../store/service.js"
import * as CabinetActions from "./CabinetActions.js"
import { button, csrfField } from "./CabinetForms.js"
import * as CabinetJoin from "./CabinetJoin.js"
import * as CabinetKeys from "./CabinetKeys.js"
import { acting, postedForm } from "./CabinetContext.js"
import { escapeHtml, messagePage, page, seeOther } from "./CabinetPage.js"

const age = (now: number, at: number | undefined) =>
  at === undefined ? "never" : `${Math.max(0, Math.round((now - at) / 1000))} s ago`

const shareStatus = (link: ShareLink, now: number) =>
  link.revokedAt !== undefined
    ? "revoked"
    : link.expiresAt !== undefined && link.expiresAt <= now
      ? "expired"
      : "active"

export const routes = Effect.map(
  Effect.all([Accounts, RelayStore, RelayCore, CabinetActions.routes, CabinetKeys.routes, CabinetJoin.routes]),
  ([accounts, store, core, actions, keyRoutes, joinRoutes]) => {
    const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(
        Effect.provideService(Accounts, accounts),
        Effect.provideService(RelayStore, store),
        Effect.provideService(RelayCore, core)
      )

    /** The active workspace's sections for `caller`. */
    const sections = (caller: Caller, csrf: string, now: number) =>
      Effect.gen(function* () {
        const reach = caller.role !== "viewer"
        const machines = yield* core.listMachines(caller, { onlineOnly: false })
        const machineRows = machines.machines
          .map(
            (m) =>
              `<tr><td>${escapeHtml(m.name)}</td><td>${escapeHtml(m.id)}</td><td>${m.online ? "online" : "offline"}</td><td>${age(now, m.lastHeartbeatAt)}</td><td>${reach && m.online ? button(csrf, "/cabinet/connect", "Connect", { machine: m.id }) : ""}</td></tr>`
          )
          .join("\n")
        const { links } = yield* core.listShares(caller, undefined)
        const linkRows = links
          .map(
            (l) =>
              `<tr><td>${escapeHtml(l.id)}</td><td>${escapeHtml(l.machineHostname)}</td><td>${escapeHtml(l.creator)}</td><td>${shareStatus(l, now)}</td><td>${l.useCount}</td><td>${escapeHtml(l.events.map((e) => e.kind).join(", "))}</td><td>${shareStatus(l, now) === "active" && reach ? button(csrf, "/cabinet/shares/revoke", "Revoke", { id: l.id }) : ""}</td></tr>`
          )
          .join("\n")
        let owners = ""
        if (caller.role === "owner") {
          const members = yield* accounts.listMembers(
            caller.userId as UserId,
            Machine.WorkspaceId.make(caller.workspaceId)
          )
          const memberRows = members
            .map(
              (m) =>
                `<tr><td>${escapeHtml(m.user.email)}</td><td>${m.membership.role}</td><td>${m.user.id === caller.userId ? "" : button(csrf, "/cabinet/members/remove", "Remove", { user: m.user.id })}</td></tr>`
            )
            .join("\n")
          const keys = yield* Effect.provideService(CabinetKeys.section(caller, csrf), RelayStore, store)
          const join = yield* Effect.provideService(CabinetJoin.section(caller, csrf), Accounts, accounts)
          owners = `${keys}
      <h2>Members</h2>
      <table id="members"><tr><th>Email</th><th>Role</th><th></th></tr>
${memberRows}
      </table>
      <form method="post" action="/cabinet/members/add">${csrfField(csrf)}
        <label>Invite by email <input type="email" name="email" required></label>
        <label>Role <select name="role"><option>member</option><option>viewer</option><option>owner</option></select></label>
        <button type="submit">Invite, or change the role</button>
      </form>${join}`
        }
        return `
      <h2>Machines in ${escapeHtml(caller.workspaceName)}</h2>
      <table id="machines"><tr><th>Name</th><th>Id</th><th>State</th><th>Last heartbeat</th><th></th></tr>
${machineRows}
      </table>
      <h2>Share links</h2>
      <table id="shares"><tr><th>Id</th><th>Machine</th><th>Created by</th><th>Status</th><th>Uses</th><th>Audit</th><th></th></tr>
${linkRows}
      </table>${owners}`
      })

    const overview = Effect.gen(function* () {
      const who = yield* acting
      if (!("user" in who)) return who
      const mine = yield* accounts.workspaces(who.user.id)
      const now = yield* Clock.currentTimeMillis
      const rows: Array<string> = []
      for (const w of mine) {
        const record = yield* store.getWorkspaceById(Machine.WorkspaceId.make(w.workspaceId))
        const control = w.active
          ? "<strong>active</strong>"
          : button(who.csrf, "/cabinet/active", "Make active", { workspace: w.workspaceId })
        rows.push(`<tr><td>${escapeHtml(record.name)}</td><td>${escapeHtml(w.role)}</td><td>${control}</td></tr>`)
      }
      const active = who.caller === undefined ? "" : yield* sections(who.caller, who.csrf, now)
      return page(
        "Your workspaces",
        `      <p>Signed in as ${escapeHtml(who.user.email)}.</p>
      ${button(who.csrf, "/signout", "Sign out")}
      <table id="workspaces"><tr><th>Workspace</th><th>Role</th><th></th></tr>
${rows.join("\n")}
      </table>${active}`
      )
    })

    const switchActive = Effect.gen(function* () {
      const form = yield* postedForm
      if (!("fields" in form)) return form
      const changed = yield* Effect.either(
        accounts.setActiveWorkspace(form.user.id, Machine.WorkspaceId.make(form.fields.workspace || "-"))
      )
      if (changed._tag === "Left") return messagePage("Workspaces", changed.left.message, 403)
      return seeOther("/cabinet")
    })

    const failed = (title: string) => (e: { readonly message: string }) =>
      Effect.succeed(messagePage(title, e.message, 500))
    return HttpRouter.empty.pipe(
      HttpRouter.get("/cabinet", provide(overview).pipe(Effect.catchAll(failed("Your workspaces")))),
      HttpRouter.post("/cabinet/active", provide(switchActive).pipe(Effect.catchAll(failed("Workspaces")))),
      HttpRouter.concat(actions),
      HttpRouter.concat(keyRoutes),
      HttpRouter.concat(joinRoutes)
    )
  }
)
