/**
 * OAuth access tokens (`cmdop_…`, from `cmdop login`) as callers of the relay: the token is checked with the
 * account core's `authenticateAccessToken` (the person's active workspace, or the one a call asks for, and their
 * role there, read from the store) on every call, with no cache: the store answers in one indexed lookup, and a
 * sign-out, removal or demotion then reaches the very next call wherever it was made (the cabinet, or the relay
 * host's CLI on the same database in another process). Live sessions are re-checked by `credentialSweep.ts`.
 * `personAccess` answers for a person by email, without a token: the links they minted and the shells they
 * opened end with their access (`Authenticator.ts`, `credentialSweep.ts`).
 */
import { AuthenticationError } from "@cmdop/accounts/AuthenticationError"
import type { AccessIdentity, OAuthServer } from "@cmdop/accounts/OAuthServer"
import { AccessError } from "@cmdop/domain/AccessError"
import * as Machine from "@cmdop/domain/Machine"
import { RelayError } from "@cmdop/domain/RelayError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { Caller, OAuthAuthenticate, PersonAccess } from "../Authenticator.js"
import type { RelayStore } from "../store/service.js"

/** An account-core refusal as the caller sees it (UNAUTHENTICATED: log in again; PERMISSION_DENIED otherwise). */
export const accessDenied = (e: AuthenticationError): AccessError =>
  new AccessError({ reason: e.kind, detail: e.message })

/** The workspace a call names (`--workspace`): an id, or a name on this relay. */
const resolveWorkspace = (store: RelayStore["Type"], requested: string) =>
  Effect.option(
    store.getWorkspace(requested).pipe(Effect.orElse(() => store.getWorkspaceById(Machine.WorkspaceId.make(requested))))
  )

/**
 * A workspace the caller does not belong to, whether or not it exists: one answer for both, naming the workspace as
 * the call did, so that a login (or a token that is none) cannot tell which names and ids this relay has.
 */
const notYours = (requested: string) =>
  accessDenied(new AuthenticationError({ reason: "NotAMember", workspace: requested }))

/** The check for every call. */
export interface OAuthCaller {
  readonly authenticate: OAuthAuthenticate
}

export const make = (options: {
  readonly oauth: OAuthServer["Type"]
  readonly store: RelayStore["Type"]
  readonly server: string
}): OAuthCaller => {
  const { oauth, store, server } = options

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

  const personAccess: PersonAccess = (email, workspaceId, workspaceName) =>
    oauth.currentRole(email, Machine.WorkspaceId.make(workspaceId)).pipe(
      Effect.mapError((e) => new RelayError({ reason: "Internal", server, detail: e.message })),
      Effect.map((role) =>
        Option.isNone(role)
          ? `is no longer a member of workspace ${workspaceName}`
          : role.value === "viewer"
            ? `is now a viewer of workspace ${workspaceName} and cannot reach machines`
            : undefined
      )
    )

  /** The token in `workspaceId` (none: the active one); `NotAMember` there is answered by `notMember`. */
  const authenticateIn = (
    token: Redacted.Redacted<string>,
    workspaceId: Machine.WorkspaceId | undefined,
    notMember: (e: AuthenticationError) => Effect.Effect<AccessIdentity, AccessError> = (e) =>
      Effect.fail(accessDenied(e))
  ) =>
    oauth.authenticateAccessToken(token, workspaceId).pipe(
      Effect.catchTags({
        AuthenticationError: (e) =>
          e.reason === "NotAMember" || (workspaceId === undefined && e.reason === "NoWorkspace")
            ? notMember(e)
            : Effect.fail(accessDenied(e)),
        AccountStoreError: (e) => Effect.fail(new RelayError({ reason: "Internal", server, detail: e.message }))
      })
    )

  const check = (token: Redacted.Redacted<string>, requested: string | undefined) =>
    Effect.gen(function* () {
      if (requested === undefined) return yield* callerOf(token, yield* authenticateIn(token, undefined))
      const workspace = yield* resolveWorkspace(store, requested)
      // No such workspace: the token is checked first all the same (a bad token, a disabled person get the same
      // refusal as for a workspace that exists), then the answer is the one a non-member gets.
      if (Option.isNone(workspace))
        return yield* Effect.zipRight(
          authenticateIn(token, undefined, () => Effect.fail(notYours(requested))),
          Effect.fail(notYours(requested))
        )
      const identity = yield* authenticateIn(token, workspace.value.id, () => Effect.fail(notYours(requested)))
      return yield* callerOf(token, identity)
    })
  const authenticate: OAuthAuthenticate = Object.assign(check, { personAccess })
  return { authenticate }
}
