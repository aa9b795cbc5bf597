/**
 * Turns the bearer credential of a call into a `Principal`, on every call: the relay never caches a decision, so
 * a rotated key or a revoked share link is locked out at once. A credential is a workspace API key (`ck_…`) or a
 * share token (a JWT, `eyJ…`: a guest confined to one machine), or an OAuth access token (`cmdop_…`, a person
 * signed in with `cmdop login`) when the relay has accounts: `internal/oauthCaller.ts` checks those.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type { Principal } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as Secret from "@cmdop/domain/Secret"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { ShareError } from "@cmdop/domain/ShareError"
import type { ShareService } from "@cmdop/domain/ShareService"
import type { RelayStoreError } from "./store/RelayStoreError.js"
import type { RelayStore } from "./store/service.js"

/** The `authorization` metadata value → the bearer credential, if well-formed. */
export const bearerOf = (authorization: string | undefined): Redacted.Redacted<string> | undefined => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")
  return match ? Redacted.make(match[1]!) : undefined
}

/** What the relay knows about a caller beyond the public `Principal`. */
export interface Caller extends Principal {
  readonly credential: Redacted.Redacted<string>
  /** For a guest: the share link's id. */
  readonly shareId?: string
  /** For a guest: the one machine's hostname (for messages). */
  readonly machineHostname?: string
  /** For a guest: when the link expires (ms); its sessions end then. */
  readonly expiresAt?: number
  /** For a guest whose link is scoped to one interactive session (pair debugging): that session. */
  readonly sessionId?: string
  /** For a person (OAuth): their role in `workspaceId`, read at call time. */
  readonly role?: "owner" | "member" | "viewer"
  /** For a person (OAuth): their user id. */
  readonly userId?: string
}

/** A guest's principal: `share <link id>` (what the machine's audit log and a session's owner show). */
export const guestPrincipal = (linkId: string): string => `share ${linkId}`

/** The share link behind a principal, when it is a guest's. */
export const linkOfPrincipal = (principal: string): string | undefined =>
  principal.startsWith("share ") && principal.length > 6 ? principal.slice(6) : undefined

/**
 * Whether the person with this email may still reach machines in a workspace (an enabled member or owner),
 * whatever their logins: `undefined` when yes, else why not ("is no longer a member of workspace acme"). What a
 * person left behind without a token of theirs ends with their access: the share links they minted (the cabinet's
 * "Connect" included) and the interactive sessions they opened (`credentialSweep.ts`).
 */
export type PersonAccess = (
  email: string,
  workspaceId: string,
  workspaceName: string
) => Effect.Effect<string | undefined, RelayError>

/**
 * Checks an OAuth access token for one call, optionally in another workspace the person belongs to; carries the
 * relay's `PersonAccess` check along (the core reaches it with `personAccessOf`).
 */
export type OAuthAuthenticate = ((
  token: Redacted.Redacted<string>,
  requestedWorkspace: string | undefined
) => Effect.Effect<Caller, AccessError | RelayError>) & { readonly personAccess?: PersonAccess }

/** A principal that is a person's (their email), not a key's prefix nor a guest's link. */
export const isPersonPrincipal = (principal: string): boolean =>
  linkOfPrincipal(principal) === undefined && principal.includes("@")

/** The person check behind an authenticate function `make` returned, when the relay has accounts. */
export const personAccessOf = (authenticate: unknown): PersonAccess | undefined =>
  (authenticate as { readonly personAccess?: PersonAccess }).personAccess

/** An OAuth access token of the relay's own authorization server (`cmdop login`). */
export const looksLikeAccessToken = (credential: string): boolean => credential.startsWith("cmdop_")

/** A share token looks like a JWT: three base64url parts, the first a JSON header (`eyJ…`). */
export const looksLikeShareToken = (credential: string): boolean =>
  credential.startsWith("eyJ") && credential.split(".").length === 3

/** A share-link failure as the caller sees it. */
export const shareDenied = (e: ShareError): AccessError =>
  new AccessError({
    reason: e.reason === "NotAllowed" ? "PermissionDenied" : "Unauthenticated",
    detail: e.message
  })

/**
 * The store could not check a credential: a database failure (busy, the pool exhausted, unreachable) is transient,
 * so the caller is told UNAVAILABLE and tries again later (an agent backs off, to another node of its list), where
 * INTERNAL would say the relay is broken. Anything else the store reports is a fault of the relay.
 */
export const storeFailure =
  (server: string) =>
  (e: RelayStoreError): RelayError =>
    new RelayError({
      reason: e.reason === "Sql" ? "Unavailable" : "Internal",
      server,
      detail:
        e.reason === "Sql" ? `its database could not check the credential now (${e.detail ?? e.subject})` : e.message
    })

export const make = (
  store: RelayStore["Type"],
  shares: ShareService["Type"],
  server: string,
  oauth?: OAuthAuthenticate
) => {
  const personAccess = oauth?.personAccess
  const check = (
    credential: Redacted.Redacted<string> | undefined,
    requestedWorkspace?: string
  ): Effect.Effect<Caller, AccessError | RelayError> =>
    Effect.gen(function* () {
      if (credential === undefined)
        return yield* new AccessError({
          reason: "Unauthenticated",
          detail: 'no credential sent: pass --api-key, set CMDOP_API_KEY, or run "cmdop connect key set <key>"'
        })
      if (oauth !== undefined && looksLikeAccessToken(Redacted.value(credential)))
        return yield* oauth(credential, requestedWorkspace === "" ? undefined : requestedWorkspace)
      if (looksLikeShareToken(Redacted.value(credential))) {
        const grant = yield* shares
          .validate(Redacted.value(credential))
          .pipe(
            Effect.mapError((e) =>
              e.reason === "Unavailable"
                ? new RelayError({ reason: "Unavailable", server, detail: e.message })
                : shareDenied(e)
            )
          )
        // A person's link is only as good as their access: removed, disabled or demoted, it stops now.
        if (personAccess !== undefined && isPersonPrincipal(grant.creator)) {
          const why = yield* personAccess(grant.creator, grant.workspaceId, grant.workspaceName)
          if (why !== undefined)
            return yield* new AccessError({
              reason: "PermissionDenied",
              detail: `this share link stopped working: ${grant.creator}, who made it, ${why}; ask a member of ${grant.workspaceName} for a new link`
            })
        }
        return {
          credential,
          workspaceId: grant.workspaceId,
          workspaceName: grant.workspaceName,
          kind: "guest" as const,
          principal: guestPrincipal(grant.linkId),
          machineId: grant.machineId,
          machineHostname: grant.machineHostname,
          shareId: grant.linkId,
          ...(grant.expiresAt === undefined ? {} : { expiresAt: grant.expiresAt }),
          ...(grant.sessionId === undefined ? {} : { sessionId: grant.sessionId })
        } satisfies Caller
      }
      const identity = yield* store.authenticateKey(credential).pipe(Effect.mapError(storeFailure(server)))
      if (Option.isNone(identity))
        return yield* new AccessError({
          reason: "Unauthenticated",
          detail: `the relay does not accept key ${Secret.mask(credential)} (unknown, or rotated); get a current key from the workspace admin ("cmdop relay key rotate" prints one)`
        })
      return {
        credential,
        workspaceId: identity.value.workspaceId,
        workspaceName: identity.value.workspaceName,
        kind: "key" as const,
        principal: Redacted.value(credential).slice(0, 12)
      }
    })
  const authenticate = personAccess === undefined ? check : Object.assign(check, { personAccess })
  return { authenticate }
}
