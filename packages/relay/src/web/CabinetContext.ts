/**
 * Who is acting in the web cabinet, resolved on the server for every request: the signed-in person (the session
 * cookie), the CSRF check of a posted form, and their active workspace with their role in it, as the relay core's
 * `Caller` (a `user` principal), so every action goes through the same rules as a gRPC call. Nothing here comes
 * from the form but the fields of the action itself: the workspace is always the person's active one.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import type { User } from "@cmdop/accounts/AccountStore"
import * as Secrets from "@cmdop/accounts/Secrets"
import * as Machine from "@cmdop/domain/Machine"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { Caller } from "../Authenticator.js"
import { RelayStore } from "../store/service.js"
import { formFields, messagePage, seeOther, sessionCookie } from "./CabinetPage.js"

export interface Acting {
  readonly user: User
  readonly cookie: Redacted.Redacted<string>
  readonly csrf: string
  /** The person as a caller in their active workspace (absent: they have none). */
  readonly caller: Caller | undefined
}

/** The person behind the cookie and their active workspace; a response (redirect or refusal) otherwise. */
export const acting = Effect.gen(function* () {
  const accounts = yield* Accounts
  const store = yield* RelayStore
  const cookie = yield* sessionCookie
  if (cookie === undefined) return seeOther("/signin?next=%2Fcabinet") as HttpServerResponse.HttpServerResponse
  const session = yield* Effect.either(accounts.session(cookie))
  if (session._tag === "Left") return seeOther("/signin?next=%2Fcabinet") as HttpServerResponse.HttpServerResponse
  const user = session.right.user
  const mine = yield* accounts.workspaces(user.id)
  const active = mine.find((w) => w.active)
  const record =
    active === undefined ? undefined : yield* store.getWorkspaceById(Machine.WorkspaceId.make(active.workspaceId))
  const caller: Caller | undefined =
    active === undefined || record === undefined
      ? undefined
      : {
          credential: cookie,
          workspaceId: record.id,
          workspaceName: record.name,
          kind: "user",
          principal: user.email,
          role: active.role,
          userId: user.id
        }
  return { user, cookie, csrf: Secrets.csrfToken(cookie), caller } satisfies Acting
})

/** A posted form of a signed-in person with a valid CSRF token: the person and the form's fields. */
export const postedForm = Effect.gen(function* () {
  const accounts = yield* Accounts
  const who = yield* acting
  if (!("user" in who)) return who
  const fields = yield* formFields
  const csrf = yield* Effect.either(accounts.checkCsrf(who.cookie, fields.csrf))
  if (csrf._tag === "Left") return messagePage("Cabinet", csrf.left.message, 403)
  if (who.caller === undefined) return messagePage("Cabinet", "you have no active workspace", 403)
  return { ...who, caller: who.caller, fields }
})
