/**
 * The implementation of `Sso`. Discovery runs on first use and is kept once it succeeds, so a relay starts even
 * while its provider is down. Admission follows `Sso.ts`: a linked identity, else an account with the verified
 * email, else the domain rules.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as client from "openid-client"
import { Accounts } from "../Accounts.js"
import { AccountStore, type UserId } from "../AccountStore.js"
import * as Email from "../Email.js"
import type { SsoAttempt, SsoConfig } from "../Sso.js"
import { SsoError } from "../SsoError.js"

/** The library's message, with its cause's when it has one (`invalid response encountered: unexpected "state"…`). */
const describe = (cause: unknown): string =>
  cause instanceof Error
    ? cause.cause instanceof Error
      ? `${cause.message}: ${cause.cause.message}`
      : cause.message
    : String(cause)

export const make = (config: SsoConfig) =>
  Effect.gen(function* () {
    const store = yield* AccountStore
    const accounts = yield* Accounts
    const discovered = yield* Ref.make(Option.none<client.Configuration>())
    const insecure = config.allowInsecureRequests === true ? { execute: [client.allowInsecureRequests] } : {}

    const configuration = Effect.flatMap(
      Ref.get(discovered),
      Option.match({
        onSome: Effect.succeed,
        onNone: () =>
          Effect.tryPromise({
            try: () =>
              client.discovery(
                new URL(config.issuer),
                config.clientId,
                Redacted.value(config.clientSecret),
                undefined,
                insecure
              ),
            catch: (cause) => new SsoError({ reason: "ProviderUnreachable", detail: describe(cause) })
          }).pipe(Effect.tap((c) => Ref.set(discovered, Option.some(c))))
      })
    )

    /** The account for these ID token claims: linked, invited (same verified email), or admitted by domain. */
    const admit = (issuer: string, claims: client.IDToken | (client.IDToken & client.UserInfoResponse)) =>
      Effect.gen(function* () {
        const linked = yield* store.findSsoIdentity(issuer, claims.sub)
        if (Option.isSome(linked)) return linked.value
        const address = typeof claims.email === "string" ? Email.fromInput(claims.email) : undefined
        if (address === undefined || address._tag === "Left" || claims.email_verified !== true) {
          return yield* new SsoError({ reason: "EmailNotVerified" })
        }
        const email = address.right
        const existing = yield* store.findUserByEmail(email)
        const userId: UserId = Option.isSome(existing) ? existing.value.id : yield* join(email)
        yield* store.linkSsoIdentity(issuer, claims.sub, userId)
        return userId
      })

    /** A new person: an account and a membership in every workspace whose domain rule matches. */
    const join = (email: Email.Email) =>
      Effect.gen(function* () {
        const rules = yield* store.rulesForDomain(Email.domainOf(email))
        if (rules.length === 0) return yield* new SsoError({ reason: "NotInvited", detail: email })
        const user = yield* store.createUser(email)
        const at = yield* Clock.currentTimeMillis
        yield* accounts.record({
          actor: "system",
          action: "user.created",
          subject: user.id,
          detail: `${email} through single sign-on`,
          at
        })
        for (const rule of rules) {
          yield* store.putMembership(user.id, rule.workspaceId, rule.role)
          yield* accounts.record({
            actor: "system",
            action: "member.added",
            subject: user.id,
            workspaceId: rule.workspaceId,
            detail: `${email} as ${rule.role}, by the rule for @${rule.domain}`,
            at
          })
        }
        return user.id
      })

    const begin = Effect.gen(function* () {
      const c = yield* configuration
      const attempt: SsoAttempt = {
        state: client.randomState(),
        nonce: client.randomNonce(),
        codeVerifier: Redacted.make(client.randomPKCECodeVerifier())
      }
      const challenge = yield* Effect.promise(() =>
        client.calculatePKCECodeChallenge(Redacted.value(attempt.codeVerifier))
      )
      const authorizationUrl = client.buildAuthorizationUrl(c, {
        redirect_uri: config.redirectUri,
        scope: "openid email",
        code_challenge: challenge,
        code_challenge_method: "S256",
        state: attempt.state,
        nonce: attempt.nonce
      })
      return { authorizationUrl, attempt }
    })

    const complete = (callbackUrl: URL, attempt: SsoAttempt) =>
      Effect.gen(function* () {
        const c = yield* configuration
        const tokens = yield* Effect.tryPromise({
          try: () =>
            client.authorizationCodeGrant(c, callbackUrl, {
              pkceCodeVerifier: Redacted.value(attempt.codeVerifier),
              expectedState: attempt.state,
              expectedNonce: attempt.nonce,
              idTokenExpected: true
            }),
          catch: (cause) => new SsoError({ reason: "CallbackRejected", detail: describe(cause) })
        })
        const idToken = tokens.claims()
        if (idToken === undefined) return yield* new SsoError({ reason: "CallbackRejected", detail: "no ID token" })
        // Providers that follow OpenID Connect Core §5.4 strictly put `email` in the UserInfo response only.
        const claims =
          idToken.email === undefined
            ? {
                ...idToken,
                ...(yield* Effect.tryPromise({
                  try: () => client.fetchUserInfo(c, tokens.access_token, idToken.sub),
                  catch: (cause) => new SsoError({ reason: "CallbackRejected", detail: describe(cause) })
                }))
              }
            : idToken
        const userId = yield* admit(c.serverMetadata().issuer, claims)
        return yield* accounts.signInVerified(userId, `single sign-on (${c.serverMetadata().issuer})`)
      })

    return { begin, complete }
  })
