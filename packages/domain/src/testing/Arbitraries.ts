/**
 * fast-check arbitraries for the domain's schemas, exported so embedding teams can write their own property
 * suites over valid values (every generated value decodes).
 */
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import * as Option from "effect/Option"
import * as Workspace from "../Workspace.js"
import type { Environment, Overrides } from "../CredentialResolver.js"
import type { Session } from "../OAuthSession.js"

/** Any valid workspace name. */
export const workspaceName: FastCheck.Arbitrary<Workspace.WorkspaceName> = Arbitrary.make(Workspace.WorkspaceName)

/** A minted-format API key (`ck_live_`/`ck_test_` + 32–48 base62 characters). */
export const apiKeyString: FastCheck.Arbitrary<string> = FastCheck.tuple(
  FastCheck.constantFrom("live", "test"),
  FastCheck.stringMatching(/^[0-9A-Za-z]{32,48}$/)
).map(([kind, body]) => `ck_${kind}_${body}`)

/** A `Redacted` API key. */
export const apiKey: FastCheck.Arbitrary<Redacted.Redacted<string>> = apiKeyString.map(Redacted.make)

/** Any secret-ish string (for masking laws): printable, any length. */
export const secretString: FastCheck.Arbitrary<string> = FastCheck.string({ minLength: 0, maxLength: 80 })

/** Any valid stored workspace. */
export const workspace: FastCheck.Arbitrary<Workspace.Workspace> = Arbitrary.make(Workspace.Workspace)

/** Any valid store file (unique names; `active` absent, empty, or naming one of them). */
export const workspaceFile: FastCheck.Arbitrary<Workspace.WorkspaceFile> = FastCheck.uniqueArray(workspace, {
  selector: (w) => w.name,
  maxLength: 6
}).chain((workspaces) =>
  FastCheck.oneof(
    FastCheck.constant<Workspace.WorkspaceFile>({ workspaces }),
    FastCheck.constant<Workspace.WorkspaceFile>({ active: "", workspaces }),
    ...(workspaces.length
      ? [FastCheck.constantFrom(...workspaces).map((w): Workspace.WorkspaceFile => ({ active: w.name, workspaces }))]
      : [])
  )
)

/** Every combination of credential sources the resolver can see. */
export const credentialInputs: FastCheck.Arbitrary<{
  readonly overrides: Overrides
  readonly env: Environment
  readonly file: Workspace.WorkspaceFile
  readonly oauth: Option.Option<Session>
}> = FastCheck.record({
  flagKey: FastCheck.option(apiKeyString, { nil: undefined }),
  envKey: FastCheck.option(apiKeyString, { nil: undefined }),
  flagServer: FastCheck.option(FastCheck.constantFrom("flag.example:1", "10.0.0.1:50051", "https://ws.example:4"), {
    nil: undefined
  }),
  envServer: FastCheck.option(FastCheck.constantFrom("env.example:2"), { nil: undefined }),
  envGrpcServer: FastCheck.option(FastCheck.constantFrom("grpc-env.example:3"), { nil: undefined }),
  names: FastCheck.uniqueArray(workspaceName, { maxLength: 4 }),
  keys: FastCheck.array(FastCheck.option(apiKeyString, { nil: undefined }), { minLength: 4, maxLength: 4 }),
  // Some spell the login's relay another way, so a stored credential meets its own relay as well as another one.
  servers: FastCheck.array(FastCheck.constantFrom("", "ws.example:4", "OAUTH.example:5"), {
    minLength: 4,
    maxLength: 4
  }),
  activeIndex: FastCheck.option(FastCheck.nat(4), { nil: undefined }),
  namedIndex: FastCheck.option(FastCheck.nat(4), { nil: undefined }),
  namedVia: FastCheck.constantFrom("flag", "env"),
  oauth: FastCheck.option(
    FastCheck.record({
      token: FastCheck.constant("cmdop_0123456789abcdef0123"),
      server: FastCheck.constantFrom("oauth.example:5", "ws.example:4,oauth.example:5")
    }),
    { nil: undefined }
  )
}).map((r) => {
  const workspaces = r.names.map((name, i): Workspace.Workspace => ({
    name,
    ...(r.keys[i] ? { api_key: Redacted.make(r.keys[i]!) } : {}),
    ...(r.servers[i] ? { server: r.servers[i]! } : {})
  }))
  const pick = (i: number | undefined) => (i === undefined ? undefined : workspaces[i]?.name)
  const named = pick(r.namedIndex)
  const active = pick(r.activeIndex)
  return {
    overrides: {
      apiKey: r.flagKey === undefined ? undefined : Redacted.make(r.flagKey),
      server: r.flagServer,
      workspace: r.namedVia === "flag" ? named : undefined
    },
    env: {
      CMDOP_API_KEY: r.envKey,
      CMDOP_SERVER: r.envServer,
      CMDOP_GRPC_SERVER: r.envGrpcServer,
      CMDOP_WORKSPACE: r.namedVia === "env" ? named : undefined
    },
    file: { ...(active ? { active } : {}), workspaces },
    oauth: r.oauth ? Option.some({ accessToken: Redacted.make(r.oauth.token), server: r.oauth.server }) : Option.none()
  }
})
