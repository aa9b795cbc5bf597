/**
 * The web cabinet (`/cabinet`): a signed-in person's workspaces and the active one (switching it is what moves
 * their machines on their next call), and the machines of the active workspace with online state and heartbeat
 * age. Server-rendered, no script; every form carries the session's CSRF token, and every id a form names is
 * checked against the person's own memberships on the server.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import * as Machine from "@cmdop/domain/Machine"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { RelayStore } from "../store/service.js"
import { escapeHtml, formFields, messagePage, page, seeOther } from "./CabinetPage.js"
import { currentUser } from "./DevicePage.js"

const age = (now: number, at: number | undefined) =>
  at === undefined ? "never" : `${Math.max(0, Math.round((now - at) / 1000))} s ago`

const csrfField = (csrf: string) => `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`

/** `GET /cabinet` and `POST /cabinet/active`, over the `Accounts`, `OAuthServer` and `RelayStore` in context. */
export const routes = Effect.map(Effect.all([Accounts, OAuthServer, RelayStore]), ([accounts, oauth, store]) => {
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provideService(Accounts, accounts),
      Effect.provideService(OAuthServer, oauth),
      Effect.provideService(RelayStore, store)
    )
  const overview = Effect.gen(function* () {
    const me = yield* currentUser
    if (me === undefined) return seeOther("/signin?next=%2Fcabinet")
    const mine = yield* accounts.workspaces(me.user.id)
    const now = yield* Clock.currentTimeMillis
    const rows: Array<string> = []
    let machines = ""
    for (const w of mine) {
      const record = yield* store.getWorkspaceById(Machine.WorkspaceId.make(w.workspaceId))
      const switchForm = w.active
        ? "<strong>active</strong>"
        : `<form class="inline" method="post" action="/cabinet/active">${csrfField(me.csrf)}<input type="hidden" name="workspace" value="${escapeHtml(w.workspaceId)}"><button type="submit">Make active</button></form>`
      rows.push(`<tr><td>${escapeHtml(record.name)}</td><td>${escapeHtml(w.role)}</td><td>${switchForm}</td></tr>`)
      if (w.active) {
        const list = yield* store.listMachines(record.id)
        machines = list
          .map(
            (m) =>
              `<tr><td>${escapeHtml(m.hostname)}</td><td>${escapeHtml(m.id)}</td><td>${m.online ? "online" : "offline"}</td><td>${age(now, m.lastHeartbeatAt)}</td></tr>`
          )
          .join("\n")
      }
    }
    return page(
      "Your workspaces",
      `      <p>Signed in as ${escapeHtml(me.user.email)}.</p>
      <form method="post" action="/signout">${csrfField(me.csrf)}<button type="submit">Sign out</button></form>
      <table id="workspaces"><tr><th>Workspace</th><th>Role</th><th></th></tr>
${rows.join("\n")}
      </table>
      <h2>Machines in the active workspace</h2>
      <table id="machines"><tr><th>Name</th><th>Id</th><th>State</th><th>Last heartbeat</th></tr>
${machines}
      </table>`
    )
  })
  const switchActive = Effect.gen(function* () {
    const me = yield* currentUser
    if (me === undefined) return seeOther("/signin?next=%2Fcabinet")
    const fields = yield* formFields
    const csrf = yield* Effect.either(accounts.checkCsrf(me.cookie, fields.csrf))
    if (csrf._tag === "Left") return messagePage("Workspaces", csrf.left.message, 403)
    const changed = yield* Effect.either(
      accounts.setActiveWorkspace(me.user.id, Machine.WorkspaceId.make(fields.workspace ?? "-"))
    )
    if (changed._tag === "Left") return messagePage("Workspaces", changed.left.message, 403)
    return seeOther("/cabinet")
  })
  const failed = (title: string) => (e: { readonly message: string }) =>
    Effect.succeed(messagePage(title, e.message, 500))
  return HttpRouter.empty.pipe(
    HttpRouter.get("/cabinet", provide(overview).pipe(Effect.catchAll(failed("Your workspaces")))),
    HttpRouter.post("/cabinet/active", provide(switchActive).pipe(Effect.catchAll(failed("Workspaces"))))
  )
})
