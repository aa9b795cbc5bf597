/**
 * Who may join the active workspace, for its owners: the email domains whose people join through single sign-on
 * (with a role each), added, changed and removed here; invited emails are the members form (`Cabinet.ts`): an
 * invited person signs in through their one-time link, or signs on with that verified email. Every change is in
 * the audit trail (`Accounts.setDomainRule`, which also checks the actor is an owner).
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import type { UserId } from "@cmdop/accounts/AccountStore"
import * as Machine from "@cmdop/domain/Machine"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import type { Caller } from "../Authenticator.js"
import { postedForm } from "./CabinetContext.js"
import { button, csrfField } from "./CabinetForms.js"
import { escapeHtml, messagePage, seeOther } from "./CabinetPage.js"

const roleOf = (value: string | undefined) =>
  value === "owner" || value === "member" || value === "viewer" ? value : undefined

/** The owners' "who may join" section. */
export const section = (caller: Caller, csrf: string) =>
  Effect.gen(function* () {
    const accounts = yield* Accounts
    const rules = yield* accounts.listDomainRules(caller.userId as UserId, Machine.WorkspaceId.make(caller.workspaceId))
    const rows = rules
      .map(
        (r) =>
          `<tr><td>@${escapeHtml(r.domain)}</td><td>${r.role}</td><td>${button(csrf, "/cabinet/domains/remove", "Remove", { domain: r.domain })}</td></tr>`
      )
      .join("\n")
    return `
      <h2>Who may join</h2>
      <p>People you invite by email below (under Members) join with the role you give them: through their one-time
      sign-in link, or by single sign-on with that email. With single sign-on, anyone whose verified email is in an
      allowed domain joins too.</p>
      <table id="domains"><tr><th>Allowed domain</th><th>Joins as</th><th></th></tr>
${rows}
      </table>
      <form method="post" action="/cabinet/domains/set">${csrfField(csrf)}
        <label>Email domain <input name="domain" required placeholder="example.com"></label>
        <label>Joins as <select name="role"><option>member</option><option>viewer</option><option>owner</option></select></label>
        <button type="submit">Allow the domain</button>
      </form>`
  })

/** Sets (`role` given) or removes a domain rule of the active workspace. */
const change = (removing: boolean) =>
  Effect.gen(function* () {
    const form = yield* postedForm
    if (!("fields" in form)) return form
    const accounts = yield* Accounts
    const role = removing ? undefined : roleOf(form.fields.role)
    if (!removing && role === undefined) return messagePage("Cabinet", "pick a role: owner, member or viewer", 400)
    const changed = yield* Effect.either(
      accounts.setDomainRule({
        actor: form.user.id,
        workspaceId: Machine.WorkspaceId.make(form.caller.workspaceId),
        domain: form.fields.domain ?? "",
        role
      })
    )
    if (changed._tag === "Left")
      return messagePage(
        "Cabinet",
        changed.left.message,
        changed.left._tag === "AccountError" && changed.left.reason === "InvalidDomain" ? 400 : 403
      )
    return seeOther("/cabinet")
  })

/** The routes, over `Accounts` in context. */
export const routes = Effect.map(Accounts, (accounts) => {
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provideService(Accounts, accounts),
      Effect.catchAll((e) => Effect.succeed(messagePage("Cabinet", String((e as Error).message), 500)))
    )
  return HttpRouter.empty.pipe(
    HttpRouter.post("/cabinet/domains/set", provide(change(false))),
    HttpRouter.post("/cabinet/domains/remove", provide(change(true)))
  )
})
