/**
 * The cabinet's forms (all `POST`, all with the session's CSRF token, all acting in the person's active workspace
 * with their role there): connect to a machine in the browser terminal (a one-hour share link minted for the
 * person, ended by their sign-out: `ConnectLinks.ts`), revoke a share link, add a member or change their role,
 * remove a member. Ids in a form that are not of the active workspace are refused like unknown ones.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import type { UserId } from "@cmdop/accounts/AccountStore"
import * as Machine from "@cmdop/domain/Machine"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { RelayCore } from "../RelayCore.js"
import { RelayStore } from "../store/service.js"
import { postedForm } from "./CabinetContext.js"
import { ConnectLinks, LINK_LIFETIME_MS } from "./ConnectLinks.js"
import { escapeHtml, messagePage, page, seeOther } from "./CabinetPage.js"

const refused = (e: { readonly message: string }) => messagePage("Cabinet", e.message, 403)

const roleOf = (value: string | undefined) =>
  value === "owner" || value === "member" || value === "viewer" ? value : undefined

/** The routes, over `Accounts`, `RelayStore` and `RelayCore` in context. */
export const routes = Effect.map(
  Effect.all([Accounts, RelayStore, RelayCore, ConnectLinks]),
  ([accounts, store, core, links]) => {
    const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(
        Effect.provideService(Accounts, accounts),
        Effect.provideService(RelayStore, store),
        Effect.provideService(RelayCore, core),
        Effect.catchAll((e) => Effect.succeed(messagePage("Cabinet", String((e as Error).message), 500)))
      )

    const connect = Effect.gen(function* () {
      const form = yield* postedForm
      if (!("fields" in form)) return form
      const machines = yield* core.listMachines(form.caller, { onlineOnly: false })
      const machine = machines.machines.find((m) => m.id === form.fields.machine)
      if (machine === undefined) return messagePage("Cabinet", "no such machine in your active workspace", 404)
      const minted = yield* Effect.either(core.createShare(form.caller, machine.id, LINK_LIFETIME_MS / 1000))
      if (minted._tag === "Left") return refused(minted.left)
      // Signing out of this browser ends the link (and a terminal open through it).
      yield* links.minted(form.cookie, Effect.ignore(core.revokeShare(form.caller, minted.right.link.id)))
      return seeOther(new URL(minted.right.url).pathname)
    })

    const revokeShare = Effect.gen(function* () {
      const form = yield* postedForm
      if (!("fields" in form)) return form
      const revoked = yield* Effect.either(core.revokeShare(form.caller, form.fields.id ?? ""))
      return revoked._tag === "Left" ? refused(revoked.left) : seeOther("/cabinet")
    })

    const addMember = Effect.gen(function* () {
      const form = yield* postedForm
      if (!("fields" in form)) return form
      const role = roleOf(form.fields.role)
      if (role === undefined) return messagePage("Cabinet", "pick a role: owner, member or viewer", 400)
      const added = yield* Effect.either(
        accounts.addMember({
          actor: form.user.id,
          email: form.fields.email ?? "",
          workspaceId: Machine.WorkspaceId.make(form.caller.workspaceId),
          role
        })
      )
      if (added._tag === "Left") return refused(added.left)
      const link = added.right.link
      if (link === undefined) return seeOther("/cabinet")
      return page(
        "Member added",
        `      <p>${escapeHtml(added.right.user.email)} is ${role} of ${escapeHtml(form.caller.workspaceName)}. Send them this
      one-time sign-in link (24 hours, shown once):</p>
      <p class="secret">/signin/${escapeHtml(Redacted.value(link.token))}</p>
      <p><a href="/cabinet">Back</a></p>`
      )
    })

    const removeMember = Effect.gen(function* () {
      const form = yield* postedForm
      if (!("fields" in form)) return form
      const removed = yield* Effect.either(
        accounts.removeMember({
          actor: form.user.id,
          workspaceId: Machine.WorkspaceId.make(form.caller.workspaceId),
          userId: (form.fields.user ?? "") as UserId
        })
      )
      return removed._tag === "Left" ? refused(removed.left) : seeOther("/cabinet")
    })

    return HttpRouter.empty.pipe(
      HttpRouter.post("/cabinet/connect", provide(connect)),
      HttpRouter.post("/cabinet/shares/revoke", provide(revokeShare)),
      HttpRouter.post("/cabinet/members/add", provide(addMember)),
      HttpRouter.post("/cabinet/members/remove", provide(removeMember))
    )
  }
)
