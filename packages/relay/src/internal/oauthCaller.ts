/**
 * OAuth access tokens (`cmdop_…`, from `cmdop login`) as callers of the relay: the token is checked with the
 * account core's `authenticateAccessToken` (the person's active workspace, or the one a call asks for, and their
 * role there, read from the store), and the result is kept for at most `cacheFor` (1 s by default) per token and
 * requested workspace, so a sign-out, removal or demotion reaches live callers within that bound. An account
 * change made through the relay's own pages and endpoints (`forget`) clears it at once, so it reaches the very next
 * call. The cache is keyed by the token's SHA-256, never the token itself.
 */
import type { AuthenticationError } from "@cmdop/accounts/AuthenticationError"
import type { AccessIdentity, OAuthServer } from "@cmdop/accounts/OAuthServer"
import { AccessError } from "@cmdop/domain/AccessError"
import * as Machine from "@cmdop/domain/Machine"
import { RelayError } from "@cmdop/domain/RelayError"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createHash } from "node:crypto"
import type { Caller, OAuthAuthenticate } from "../Authenticator.js"
import type { RelayStore } from "../store/service.js"

const MAX_ENTRIES = 10_000

/** An account-core refusal as the caller sees it (UNAUTHENTICATED: log in again; PERMISSION_DENIED otherwise). */
export const accessDenied = (e: AuthenticationError): AccessError =>
  new AccessError({ reason: e.kind, detail: e.message })

/** The workspace a call names (`--workspace`): an id, or a name on this relay. */
const resolveWorkspace = (store: RelayStore["Type"], requested: string) =>
  store.getWorkspace(requested).pipe(
    Effect.orElse(() => store.getWorkspaceById(Machine.WorkspaceId.make(requested))),
    Effect.mapError(
      () =>
        new AccessError({
          reason: "PermissionDenied",
          detail: `there is no workspace ${requested} on this relay; "cmdop connect workspace sync" lists yours`
        })
    )
  )

/** The check for every call, and `forget`, which drops every cached verdict (after an account change). */
export interface OAuthCaller {
  readonly authenticate: OAuthAuthenticate
  readonly forget: () => void
}

export const make = (options: {
  readonly oauth: OAuthServer["Type"]
  readonly store: RelayStore["Type"]
  readonly server: string
  readonly cacheFor?: Duration.DurationInput
}): OAuthCaller => {
  const { oauth, store, server } = options
  const ttl = Duration.toMillis(options.cacheFor ?? "1 second")
  const cache = new Map<string, { readonly caller: Caller; readonly at: number }>()

  const callerOf = (token: Redacted.Redacted<string>, identity: AccessIdentity) =>
    Effect.map(
      store
        .getWorkspaceById(identity.workspaceId)
        .pipe(Effect.mapError((e) => new RelayError({ reason: "Internal", server, detail: e.message }))),
      (workspace): Caller => ({
        credential: token,
        workspaceId: identity.workspaceId,
        workspaceName: workspace.name,
        kind: "user",
        principal: identity.user.email,
        role: identity.role,
        userId: identity.user.id
      })
    )

  const authenticate: OAuthAuthenticate = (token, requested) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const key = createHash("sha256").update(Redacted.value(token)).digest("base64url") + "|" + (requested ?? "")
      const hit = cache.get(key)
      if (hit !== undefined && now - hit.at < ttl) return hit.caller
      const workspaceId = requested === undefined ? undefined : (yield* resolveWorkspace(store, requested)).id
      const identity = yield* oauth.authenticateAccessToken(token, workspaceId).pipe(
        Effect.catchTags({
          AuthenticationError: (e) => Effect.fail(accessDenied(e)),
          AccountStoreError: (e) => Effect.fail(new RelayError({ reason: "Internal", server, detail: e.message }))
        })
      )
      const caller = yield* callerOf(token, identity)
      if (cache.size >= MAX_ENTRIES) cache.clear()
      cache.set(key, { caller, at: now })
      return caller
    })
  return { authenticate, forget: () => cache.clear() }
}
