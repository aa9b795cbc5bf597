/**
 * The implementation of `OAuthServer` over the account store. Every secret is minted here and handed to the store
 * only as a hash; every state change of a code or token is one atomic store call (see `store/transitions.ts`).
 */
import type { WorkspaceId } from "@cmdop/domain/Machine"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { AccountError } from "../AccountError.js"
import { AccountStore, DeviceCodeRecord, type NewTokenPair, type UserId } from "../AccountStore.js"
import { AuthenticationError } from "../AuthenticationError.js"
import * as Email from "../Email.js"
import { oauthError } from "../OAuthError.js"
import type { OAuthConfig, OAuthServer, TokenResponse } from "../OAuthServer.js"
import * as Secrets from "../Secrets.js"
import { metadataDocument, paths, SCOPE } from "../OAuthMetadata.js"

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

/** A fresh token pair: the raw tokens for the response and their hashes for the store. */
const mintPair = (config: OAuthConfig, now: number) => {
  const access = Secrets.mintAccessToken()
  const refresh = Secrets.mintRefreshToken()
  const hashes: NewTokenPair = {
    accessHash: Secrets.hashSecret(access),
    accessExpiresAt: now + Duration.toMillis(config.accessTokenLifetime),
    refreshHash: Secrets.hashSecret(refresh),
    refreshExpiresAt: now + Duration.toMillis(config.refreshTokenLifetime)
  }
  const response: TokenResponse = {
    access_token: Redacted.value(access),
    token_type: "Bearer",
    expires_in: Math.floor(Duration.toSeconds(config.accessTokenLifetime)),
    refresh_token: Redacted.value(refresh),
    scope: SCOPE
  }
  return { hashes, response }
}

export const make = (config: OAuthConfig) =>
  Effect.gen(function* () {
    const store = yield* AccountStore
    const audit = (event: Parameters<typeof store.appendAudit>[0]) => store.appendAudit(event)

    const client = (clientId: string | undefined) =>
      clientId !== undefined && config.clients.includes(clientId)
        ? Effect.succeed(clientId)
        : Effect.fail(oauthError("invalid_client", "unknown client_id; this relay accepts logins from the cmdop CLI"))

    const pendingCode = (userCode: string, now: number) =>
      Effect.gen(function* () {
        const normalized = Secrets.normalizeUserCode(userCode)
        if (normalized === undefined) return yield* new AccountError({ reason: "InvalidUserCode" })
        const found = yield* store.findDeviceCodeByUserCode(Secrets.hashUserCode(normalized))
        if (Option.isNone(found) || found.value.status !== "pending" || now >= found.value.expiresAt) {
          return yield* new AccountError({ reason: "InvalidUserCode" })
        }
        return { code: found.value, hash: Secrets.hashUserCode(normalized) }
      })

    /**
     * The workspace an approval binds: the chosen one (a membership is required) or the active one; `switchTo`
     * when the chosen one must become active.
     */
    const approvalWorkspace = (userId: UserId, chosen: WorkspaceId | undefined) =>
      Effect.gen(function* () {
        const user = yield* store.getUser(userId)
        if (user.disabled) return yield* new AccountError({ reason: "UserDisabled" })
        if (chosen !== undefined) {
          if (Option.isNone(yield* store.getMembership(userId, chosen))) {
            return yield* new AccountError({ reason: "NotAMember", detail: chosen })
          }
          return { workspaceId: chosen, switchTo: user.activeWorkspaceId !== chosen }
        }
        if (user.activeWorkspaceId === undefined) return yield* new AccountError({ reason: "NoWorkspace" })
        return { workspaceId: user.activeWorkspaceId, switchTo: false }
      })

    const decide = (userId: UserId, userCode: string, approve: boolean, chosen?: WorkspaceId) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const { code, hash } = yield* pendingCode(userCode, now)
        const target = approve ? yield* approvalWorkspace(userId, chosen) : undefined
        const workspaceId = target?.workspaceId
        yield* store.decideDeviceCode(hash, now, approve ? { approve, userId, workspaceId } : { approve, userId }).pipe(
          Effect.catchIf(
            (e) => e.reason === "DeviceCodeNotFound" || e.reason === "DeviceCodeNotPending",
            () => new AccountError({ reason: "InvalidUserCode" })
          )
        )
        if (target?.switchTo === true) {
          yield* store.setActiveWorkspace(userId, target.workspaceId)
          yield* audit({
            actor: userId,
            action: "workspace.activated",
            subject: userId,
            workspaceId: target.workspaceId,
            detail: "at device approval",
            at: now
          })
        }
        yield* audit({
          actor: userId,
          action: approve ? "device.approved" : "device.denied",
          subject: userId,
          ...(workspaceId === undefined ? {} : { workspaceId }),
          detail: `client ${code.clientId}`,
          at: now
        })
      })

    const deviceCodeGrant = (clientId: string, deviceCode: string | undefined) =>
      Effect.gen(function* () {
        if (deviceCode === undefined) return yield* oauthError("invalid_request", "device_code is required")
        const now = yield* Clock.currentTimeMillis
        const { hashes, response } = mintPair(config, now)
        const polled = yield* store.pollDeviceCode(Secrets.hashSecret(Redacted.make(deviceCode)), now, hashes)
        if (Option.isNone(polled) || polled.value.code.clientId !== clientId) {
          return yield* oauthError("invalid_grant", 'the device code is not valid; run "cmdop login" again')
        }
        const { code, grant, outcome } = polled.value
        switch (outcome) {
          case "authorization_pending":
            return yield* oauthError("authorization_pending", "waiting for the code to be approved in the browser")
          case "slow_down":
            return yield* oauthError("slow_down", `polling too fast; wait ${code.intervalSeconds} s between polls`)
          case "access_denied":
            return yield* oauthError("access_denied", "the login was refused in the browser")
          case "expired_token":
            return yield* oauthError(
              "expired_token",
              'the code expired before it was approved; run "cmdop login" again'
            )
          case "reused":
            if (grant !== undefined) {
              yield* audit({
                actor: "system",
                action: "token.reuse-detected",
                subject: grant.userId,
                detail: `device code of grant ${grant.id}`,
                at: now
              })
            }
            return yield* oauthError(
              "invalid_grant",
              'the device code was already used, so its login is revoked; run "cmdop login" again'
            )
          case "issued":
            yield* audit({
              actor: grant.userId,
              action: "token.issued",
              subject: grant.userId,
              ...(grant.workspaceId === undefined ? {} : { workspaceId: grant.workspaceId }),
              detail: `grant ${grant.id}, device flow`,
              at: now
            })
            return response
        }
      })

    const refreshGrant = (refreshToken: string | undefined) =>
      Effect.gen(function* () {
        if (refreshToken === undefined) return yield* oauthError("invalid_request", "refresh_token is required")
        const now = yield* Clock.currentTimeMillis
        const { hashes, response } = mintPair(config, now)
        const result = yield* store.rotateRefreshToken(Secrets.hashSecret(Redacted.make(refreshToken)), now, hashes)
        switch (result._tag) {
          case "invalid":
            return yield* oauthError(
              "invalid_grant",
              'the login session has expired or was revoked; run "cmdop login" again'
            )
          case "reused":
            yield* audit({
              actor: "system",
              action: "token.reuse-detected",
              subject: result.grant.userId,
              detail: `refresh token of grant ${result.grant.id}; grant revoked`,
              at: now
            })
            return yield* oauthError(
              "invalid_grant",
              'this refresh token was already used, so the login is revoked everywhere; run "cmdop login" again'
            )
          case "rotated":
            yield* audit({
              actor: result.grant.userId,
              action: "token.refreshed",
              subject: result.grant.userId,
              detail: `grant ${result.grant.id}`,
              at: now
            })
            return response
        }
      })

    const service: OAuthServer["Type"] = {
      config,
      // Read per request: the relay may learn its public URL (the issuer) only once its HTTP port is bound.
      get metadata() {
        return metadataDocument(config)
      },

      deviceAuthorization: ({ clientId, scope }) =>
        Effect.gen(function* () {
          const id = yield* client(clientId)
          if (scope !== undefined && scope.split(" ").some((s) => s !== "" && s !== SCOPE)) {
            return yield* oauthError("invalid_scope", `the only scope is "${SCOPE}"`)
          }
          const now = yield* Clock.currentTimeMillis
          const deviceCode = Secrets.mintDeviceCode()
          const userCode = Secrets.mintUserCode()
          const interval = Math.ceil(Duration.toSeconds(config.pollInterval))
          yield* store.createDeviceCode(
            new DeviceCodeRecord({
              deviceCodeHash: Secrets.hashSecret(deviceCode),
              userCodeHash: Secrets.hashUserCode(Secrets.normalizeUserCode(userCode)!),
              clientId: id,
              scope: SCOPE,
              createdAt: now,
              expiresAt: now + Duration.toMillis(config.deviceCodeLifetime),
              intervalSeconds: interval,
              status: "pending"
            })
          )
          const verification = `${config.issuer}${paths.verification}`
          return {
            device_code: Redacted.value(deviceCode),
            user_code: userCode,
            verification_uri: verification,
            verification_uri_complete: `${verification}?user_code=${userCode}`,
            expires_in: Math.floor(Duration.toSeconds(config.deviceCodeLifetime)),
            interval
          }
        }),

      describeUserCode: (userCode) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(pendingCode(userCode, now), ({ code }) => ({
            clientId: code.clientId,
            scope: code.scope,
            expiresAt: code.expiresAt
          }))
        ),
      approveDevice: (userId, userCode, workspaceId) => decide(userId, userCode, true, workspaceId),
      denyDevice: (userId, userCode) => decide(userId, userCode, false),

      token: (params) =>
        Effect.gen(function* () {
          const clientId = yield* client(params.client_id)
          switch (params.grant_type) {
            case DEVICE_GRANT:
              return yield* deviceCodeGrant(clientId, params.device_code)
            case "refresh_token":
              return yield* refreshGrant(params.refresh_token)
            case undefined:
              return yield* oauthError("invalid_request", "grant_type is required")
            default:
              return yield* oauthError(
                "unsupported_grant_type",
                `this relay supports ${DEVICE_GRANT} and refresh_token`
              )
          }
        }),

      revoke: (params) =>
        Effect.gen(function* () {
          yield* client(params.client_id)
          if (params.token === undefined) return yield* oauthError("invalid_request", "token is required")
          const now = yield* Clock.currentTimeMillis
          const revoked = yield* store.revokeToken(Secrets.hashSecret(Redacted.make(params.token)), now)
          if (Option.isSome(revoked) && revoked.value.revokedAt === now) {
            yield* audit({
              actor: revoked.value.userId,
              action: "token.revoked",
              subject: revoked.value.userId,
              detail: `grant ${revoked.value.id}`,
              at: now
            })
          }
        }),

      authenticateAccessToken: (token, requestedWorkspace) =>
        Effect.gen(function* () {
          const facts = yield* store.lookupAccessToken(Secrets.hashSecret(token), requestedWorkspace)
          if (Option.isNone(facts)) return yield* new AuthenticationError({ reason: "InvalidToken" })
          const { expiresAt, grant, membership, user, workspaceId } = facts.value
          if (grant.revokedAt !== undefined) return yield* new AuthenticationError({ reason: "Revoked" })
          if ((yield* Clock.currentTimeMillis) >= expiresAt)
            return yield* new AuthenticationError({ reason: "Expired" })
          if (user.disabled) return yield* new AuthenticationError({ reason: "UserDisabled" })
          if (workspaceId === undefined) return yield* new AuthenticationError({ reason: "NoWorkspace" })
          if (membership === undefined) {
            return yield* new AuthenticationError({ reason: "NotAMember", workspace: workspaceId })
          }
          return { user, workspaceId, role: membership.role, grantId: grant.id, expiresAt }
        }),
      currentRole: (email, workspaceId) =>
        Either.match(Email.fromInput(email), {
          onLeft: () => Effect.succeedNone,
          onRight: (valid) =>
            Effect.flatMap(store.findUserByEmail(valid), (user) =>
              Option.isNone(user) || user.value.disabled
                ? Effect.succeedNone
                : Effect.map(
                    store.getMembership(user.value.id, workspaceId),
                    Option.map((m) => m.role)
                  )
            )
        })
    }
    return service
  })
