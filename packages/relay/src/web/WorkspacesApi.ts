/**
 * `GET /apix/machines/workspaces/`: the workspaces of the person behind an OAuth bearer token (what
 * `cmdop connect workspace sync` pulls), with the relay's names, the person's role and which one is active.
 * Answers `{ "workspaces": [{ "id", "name", "role", "active" }] }` sorted by name; a missing or bad token is a 401 JSON error
 * whose message says to run `cmdop login`.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import * as Machine from "@cmdop/domain/Machine"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { bearerOf } from "../Authenticator.js"
import { RelayStore } from "../store/service.js"

export const path = "/apix/machines/workspaces/"

const noStore = { "cache-control": "no-store" }

const refuse = (status: number, error: string, message: string) =>
  HttpServerResponse.unsafeJson({ error, message }, { status, headers: noStore })

/** The handler, over the `Accounts`, `OAuthServer` and `RelayStore` in context. */
export const handler = Effect.map(Effect.all([Accounts, OAuthServer, RelayStore]), ([accounts, oauth, store]) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const token = bearerOf(request.headers["authorization"])
    if (token === undefined) return refuse(401, "unauthenticated", 'no login sent; run "cmdop login" first')
    const identity = yield* Effect.either(oauth.authenticateAccessToken(token))
    if (identity._tag === "Left")
      return identity.left._tag === "AuthenticationError" && identity.left.kind === "PermissionDenied"
        ? identity.left.reason === "NoWorkspace"
          ? HttpServerResponse.unsafeJson({ workspaces: [] }, { headers: noStore })
          : refuse(403, "permission_denied", identity.left.message)
        : refuse(
            identity.left._tag === "AuthenticationError" ? 401 : 500,
            identity.left._tag === "AuthenticationError" ? "unauthenticated" : "server_error",
            identity.left.message
          )
    const mine = yield* Effect.either(accounts.workspaces(identity.right.user.id))
    if (mine._tag === "Left") return refuse(500, "server_error", mine.left.message)
    const workspaces = yield* Effect.forEach(mine.right, (w) =>
      Effect.map(Effect.either(store.getWorkspaceById(Machine.WorkspaceId.make(w.workspaceId))), (record) => ({
        id: w.workspaceId,
        name: record._tag === "Right" ? record.right.name : w.workspaceId,
        role: w.role,
        active: w.active
      }))
    )
    const byName = [...workspaces].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    return HttpServerResponse.unsafeJson({ workspaces: byName }, { headers: noStore })
  })
)
