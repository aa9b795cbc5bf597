/**
 * `/device`: where a signed-in person approves `cmdop login` (RFC 8628). The page takes the user code (typed, or
 * from `verification_uri_complete`), shows who asks and lets the person pick the workspace the login acts in,
 * then approves or denies. Not signed in: on to `/signin`, and back here after. The form carries the session's
 * CSRF token.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import type { User } from "@cmdop/accounts/AccountStore"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import * as Secrets from "@cmdop/accounts/Secrets"
import * as Machine from "@cmdop/domain/Machine"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import { RelayStore } from "../store/service.js"
import { escapeHtml, formFields, messagePage, page, seeOther, sessionCookie } from "./CabinetPage.js"

/** The signed-in person behind the request's cookie, or none. */
export const currentUser = Effect.gen(function* () {
  const accounts = yield* Accounts
  const cookie = yield* sessionCookie
  if (cookie === undefined) return undefined
  const session = yield* Effect.either(accounts.session(cookie))
  if (session._tag === "Left") return undefined
  return { user: session.right.user, cookie, csrf: Secrets.csrfToken(cookie) }
})

/** The person's workspaces as `<option>`s (the active one selected), with the relay's names. */
const workspaceOptions = (user: User) =>
  Effect.gen(function* () {
    const accounts = yield* Accounts
    const store = yield* RelayStore
    const mine = yield* accounts.workspaces(user.id)
    const named = yield* Effect.forEach(mine, (w) =>
      Effect.map(Effect.either(store.getWorkspaceById(Machine.WorkspaceId.make(w.workspaceId))), (r) => ({
        ...w,
        name: r._tag === "Right" ? r.right.name : w.workspaceId
      }))
    )
    return named
      .map(
        (w) =>
          `<option value="${escapeHtml(w.workspaceId)}"${w.active ? " selected" : ""}>${escapeHtml(w.name)} (${w.role})</option>`
      )
      .join("")
  })

const devicePage = (csrf: string, userCode: string, options: string, email: string) =>
  page(
    "Approve a device",
    `      <p>Signed in as ${escapeHtml(email)}. A terminal ran <code>cmdop login</code> and shows a code; approve only
      if it is yours and the codes match.</p>
      <form method="post" action="/device">
        <input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
        <label>Code <input name="user_code" value="${escapeHtml(userCode)}" autocomplete="off" required></label>
        <label>Workspace <select name="workspace">${options}</select></label>
        <button type="submit" name="action" value="approve">Approve</button>
        <button type="submit" name="action" value="deny">Deny</button>
      </form>`
  )

/** `GET /device` and `POST /device`, over the `Accounts`, `OAuthServer` and `RelayStore` in context. */
export const routes = Effect.map(Effect.all([Accounts, OAuthServer, RelayStore]), ([accounts, oauth, store]) => {
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provideService(Accounts, accounts),
      Effect.provideService(OAuthServer, oauth),
      Effect.provideService(RelayStore, store)
    )
  return HttpRouter.empty.pipe(
    HttpRouter.get(
      "/device",
      provide(
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const url = new URL(request.url, "http://relay.invalid")
          const me = yield* currentUser
          if (me === undefined) return seeOther(`/signin?next=${encodeURIComponent(url.pathname + url.search)}`)
          const options = yield* Effect.orElseSucceed(workspaceOptions(me.user), () => "")
          return devicePage(me.csrf, url.searchParams.get("user_code") ?? "", options, me.user.email)
        })
      )
    ),
    HttpRouter.post(
      "/device",
      provide(
        Effect.gen(function* () {
          const me = yield* currentUser
          if (me === undefined) return seeOther("/signin?next=%2Fdevice")
          const fields = yield* formFields
          const csrf = yield* Effect.either(accounts.checkCsrf(me.cookie, fields.csrf))
          if (csrf._tag === "Left") return messagePage("Approve a device", csrf.left.message, 403)
          const code = fields.user_code ?? ""
          const outcome = yield* Effect.either(
            fields.action === "deny"
              ? oauth.denyDevice(me.user.id, code)
              : oauth.approveDevice(
                  me.user.id,
                  code,
                  fields.workspace ? Machine.WorkspaceId.make(fields.workspace) : undefined
                )
          )
          if (outcome._tag === "Left") return messagePage("Approve a device", outcome.left.message, 400)
          return fields.action === "deny"
            ? messagePage("Device denied", "The login was refused; the terminal will say so.", 200)
            : messagePage("Device approved", "You can close this page and return to your terminal.", 200)
        })
      )
    )
  )
})
