/**
 * The OAuth session in `~/.cmdop/token.json` (what `cmdop login` writes): the access and refresh tokens, when the
 * access token expires, the relay (its web issuer and gRPC address), the user and the workspace active at login.
 * The file is 0600, replaced atomically and changed under its lock (`token.json.lock`), like the workspace file.
 * `layer` serves it to the credential resolver and refreshes the access token (refresh tokens rotate, RFC 6749
 * §6, through `oauth4webapi`) when less than `REFRESH_MARGIN` is left; a refresh that fails leaves the session as
 * it is, so the relay's answer ("run cmdop login again") reaches the person.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { OAuthSession, type Session } from "@cmdop/domain/OAuthSession"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as oauth from "oauth4webapi"
import * as path from "node:path"
import * as AtomicFile from "./AtomicFile.js"
import { CmdopPaths } from "./CmdopPaths.js"
import * as FileLock from "./FileLock.js"

/** Refresh when less than this is left of the access token's life. */
export const REFRESH_MARGIN = Duration.minutes(5)

/** The OAuth client id of the CLI (a public client: no secret). */
export const CLIENT_ID = "cmdop-cli"

/** `token.json`, as written (snake_case, like the workspace file). */
export const TokenFile = Schema.Struct({
  issuer: Schema.String,
  token_endpoint: Schema.String,
  revocation_endpoint: Schema.optional(Schema.String),
  server: Schema.String,
  access_token: Schema.String,
  refresh_token: Schema.String,
  expires_at: Schema.Number,
  user: Schema.optional(Schema.String),
  workspace: Schema.optional(Schema.String)
})
export type TokenFile = typeof TokenFile.Type

const TokenFileJson = Schema.parseJson(TokenFile, { space: 2 })

export class TokenFileError extends Data.TaggedError("TokenFileError")<{ readonly message: string }> {}

/** Reads `file`; none when it does not exist. A file that is not a token file is an error naming it. */
export const read = (file: string): Effect.Effect<Option.Option<TokenFile>, TokenFileError, FileSystem.FileSystem> =>
  AtomicFile.readIfExists(file).pipe(
    Effect.mapError((e) => new TokenFileError({ message: `cannot read ${file}: ${e.message}` })),
    Effect.flatMap((text) =>
      text === undefined
        ? Effect.succeed(Option.none())
        : Schema.decodeUnknown(TokenFileJson)(text).pipe(
            Effect.map(Option.some),
            Effect.mapError(
              () => new TokenFileError({ message: `${file} is not a cmdop login; run "cmdop login" again` })
            )
          )
    )
  )

/** Runs `body` holding the file's lock (other cmdop processes wait their turn). */
export const locked = <A, R>(
  file: string,
  body: Effect.Effect<A, TokenFileError, R>
): Effect.Effect<A, TokenFileError, R | FileSystem.FileSystem> => {
  const lock = Effect.zipRight(AtomicFile.ensurePrivateDir(path.dirname(file)), FileLock.acquire(file + ".lock")).pipe(
    Effect.mapError(
      (e) =>
        new TokenFileError({
          message:
            e instanceof FileLock.LockTimeout
              ? `${file} is locked by pid ${e.holder}`
              : `cannot lock ${file}: ${e.message}`
        })
    )
  )
  return Effect.scoped(Effect.zipRight(lock, body))
}

/** Replaces the file atomically (0600). Call it under `locked`. */
export const write = (file: string, token: TokenFile) =>
  Effect.flatMap(Schema.encode(TokenFileJson)(token).pipe(Effect.orDie), (text) =>
    AtomicFile.write(file, text + "\n").pipe(
      Effect.mapError((e) => new TokenFileError({ message: `cannot write ${file}: ${e.message}` }))
    )
  )

/** Deletes the file (no error when it is gone already). */
export const remove = (file: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.remove(file, { force: true })).pipe(
    Effect.mapError((e) => new TokenFileError({ message: `cannot delete ${file}: ${e.message}` }))
  )

/** The authorization server a token file names, as `oauth4webapi` takes it. */
export const authorizationServer = (token: TokenFile): oauth.AuthorizationServer => ({
  issuer: token.issuer,
  token_endpoint: token.token_endpoint,
  ...(token.revocation_endpoint === undefined ? {} : { revocation_endpoint: token.revocation_endpoint })
})

/** Lets `oauth4webapi` talk to an `http://` relay (loopback and test relays; production relays are https). */
export const requestOptions = (issuer: string) =>
  issuer.startsWith("http://") ? { [oauth.allowInsecureRequests]: true } : {}

/** Exchanges the refresh token for new tokens (the old refresh token is consumed). */
export const refresh = (token: TokenFile): Effect.Effect<TokenFile, TokenFileError> =>
  Effect.gen(function* () {
    const as = authorizationServer(token)
    const client: oauth.Client = { client_id: CLIENT_ID }
    const response = yield* Effect.tryPromise({
      try: async () =>
        oauth.processRefreshTokenResponse(
          as,
          client,
          await oauth.refreshTokenGrantRequest(
            as,
            client,
            oauth.None(),
            token.refresh_token,
            requestOptions(token.issuer)
          )
        ),
      catch: (e) =>
        new TokenFileError({
          message:
            e instanceof oauth.ResponseBodyError
              ? `the relay refused to refresh the login (${e.error}); run "cmdop login" again`
              : `cannot refresh the login at ${token.issuer}: ${(e as Error).message}`
        })
    })
    const now = yield* Clock.currentTimeMillis
    return {
      ...token,
      access_token: response.access_token,
      refresh_token: response.refresh_token ?? token.refresh_token,
      expires_at: now + (response.expires_in ?? 0) * 1000
    }
  })

const sessionOf = (token: TokenFile): Session => ({
  accessToken: Redacted.make(token.access_token),
  server: token.server,
  ...(token.workspace === undefined ? {} : { workspace: token.workspace }),
  ...(token.user === undefined ? {} : { user: token.user })
})

/**
 * The session in `file`, refreshed first when it is about to expire (under the lock, re-reading the file, so
 * two processes never both spend the same refresh token). No file: no session.
 */
export const current = (file: string): Effect.Effect<Option.Option<Session>, never, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const margin = Duration.toMillis(REFRESH_MARGIN)
    const first = yield* read(file)
    if (Option.isNone(first)) return Option.none()
    if (first.value.expires_at - now > margin) return Option.some(sessionOf(first.value))
    const fresh = yield* locked(
      file,
      Effect.gen(function* () {
        const again = yield* read(file)
        if (Option.isNone(again)) return Option.none<TokenFile>()
        if (again.value.expires_at - now > margin) return again
        const next = yield* refresh(again.value)
        yield* write(file, next)
        return Option.some(next)
      })
    ).pipe(Effect.catchAll((e) => Effect.as(Effect.logDebug(e.message), Option.some(first.value))))
    return Option.map(fresh, sessionOf)
  }).pipe(Effect.catchAll(() => Effect.succeed(Option.none())))

/** Refreshes the session in `file` now (under the lock); none when there is none or the relay refused. */
export const forceRefresh = (file: string): Effect.Effect<Option.Option<Session>, never, FileSystem.FileSystem> =>
  locked(
    file,
    Effect.gen(function* () {
      const stored = yield* read(file)
      if (Option.isNone(stored)) return Option.none<Session>()
      const next = yield* refresh(stored.value)
      yield* write(file, next)
      return Option.some(sessionOf(next))
    })
  ).pipe(Effect.catchAll(() => Effect.succeed(Option.none<Session>())))

/** The session in `CmdopPaths.token`, for the credential resolver (its last step). */
export const layer: Layer.Layer<OAuthSession, never, FileSystem.FileSystem | CmdopPaths> = Layer.effect(
  OAuthSession,
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* CmdopPaths
    return OAuthSession.of({
      current: current(paths.token).pipe(Effect.provideService(FileSystem.FileSystem, fs)),
      refresh: forceRefresh(paths.token).pipe(Effect.provideService(FileSystem.FileSystem, fs))
    })
  })
)
