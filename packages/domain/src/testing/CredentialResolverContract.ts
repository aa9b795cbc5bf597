/**
 * The contract every `CredentialResolver` world passes: the whole precedence chain for the key (flag → env →
 * `--workspace`/`CMDOP_WORKSPACE` → active workspace → OAuth session → an error with a hint) and for the server
 * (flag → env → the chosen workspace → the OAuth session → the default). Call it once per world with a factory
 * that builds a resolver over a given store file, environment and OAuth session.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { CredentialError } from "../CredentialError.js"
import { CredentialResolver, DEFAULT_SERVER, type Environment, type Overrides } from "../CredentialResolver.js"
import type { Session } from "../OAuthSession.js"
import { WorkspaceError } from "../WorkspaceError.js"

/** What a resolver world is built over. */
export interface Setup {
  /** The workspace store's file text (`ssh_workspaces.json`); `undefined`: no file. */
  readonly workspaces: string | undefined
  /** The environment the resolver sees (exactly these `CMDOP_*` variables, nothing else). */
  readonly env: Environment
  /** The OAuth session, if one is logged in. */
  readonly oauth: Session | undefined
}

export type ResolverFactory = (setup: Setup) => Layer.Layer<CredentialResolver, unknown>

const KEY_FLAG = "ck_live_flagFLAGflag0000000000000000000001"
const KEY_ENV = "ck_live_envENVenv00000000000000000000000002"
const KEY_PROD = "ck_live_prodPRODprod0000000000000000000003"
const KEY_DEV = "ck_test_devDEVdev00000000000000000000000004"
const TOKEN = "oauth-access-token-5"

const session: Session = { accessToken: Redacted.make(TOKEN), server: "oauth.relay:443" }

/** Two workspaces, `prod` active with a key and a server, `dev` with a key only, `bare` with neither. */
const stored = JSON.stringify({
  active: "prod",
  workspaces: [
    { name: "prod", api_key: KEY_PROD, server: "prod.relay:443" },
    { name: "dev", api_key: KEY_DEV },
    { name: "bare" }
  ]
})

const withActive = (active: string) => JSON.stringify({ ...JSON.parse(stored), active })

const base: Setup = { workspaces: stored, env: {}, oauth: session }

export const credentialResolverContract = (label: string, factory: ResolverFactory) =>
  describe(`CredentialResolver contract: ${label}`, () => {
    const resolve = (setup: Partial<Setup>, overrides: Overrides = {}) =>
      Effect.flatMap(CredentialResolver, (r) => r.resolve(overrides)).pipe(
        Effect.provide(factory({ ...base, ...setup }))
      )
    const key = (r: { readonly apiKey: Redacted.Redacted<string> }) => Redacted.value(r.apiKey)

    it.scopedLive("--api-key and --server win over everything else", () =>
      Effect.gen(function* () {
        const r = yield* resolve(
          { env: { CMDOP_API_KEY: KEY_ENV, CMDOP_SERVER: "env.relay:1", CMDOP_WORKSPACE: "dev" } },
          { apiKey: Redacted.make(KEY_FLAG), server: "flag.relay:2", workspace: "dev" }
        )
        assert.strictEqual(key(r), KEY_FLAG)
        assert.strictEqual(r.source, "flag")
        assert.strictEqual(r.server, "flag.relay:2")
        assert.strictEqual(r.serverSource, "flag")
        assert.strictEqual(r.workspace, "dev")
      })
    )

    it.scopedLive("CMDOP_API_KEY and CMDOP_SERVER come next; CMDOP_GRPC_SERVER is the server's alias", () =>
      Effect.gen(function* () {
        const env = yield* resolve({ env: { CMDOP_API_KEY: KEY_ENV, CMDOP_SERVER: "env.relay:1" } })
        assert.deepStrictEqual(
          [key(env), env.source, env.server, env.serverSource],
          [KEY_ENV, "env", "env.relay:1", "env"]
        )
        assert.strictEqual(env.workspace, "prod")
        const alias = yield* resolve({ env: { CMDOP_API_KEY: KEY_ENV, CMDOP_GRPC_SERVER: "grpc.relay:3" } })
        assert.deepStrictEqual(
          [key(alias), alias.source, alias.server, alias.serverSource],
          [KEY_ENV, "env", "grpc.relay:3", "env"]
        )
        // The active workspace's stored key is for its own relay: never sent to the one the environment names.
        const elsewhere = yield* Effect.flip(resolve({ env: { CMDOP_GRPC_SERVER: "grpc.relay:3" } }))
        assert.instanceOf(elsewhere, CredentialError)
        assert.strictEqual((elsewhere as CredentialError).reason, "OtherRelay")
        assert.notInclude(elsewhere.message, KEY_PROD)
        const both = yield* resolve({
          env: { CMDOP_API_KEY: KEY_ENV, CMDOP_SERVER: "env.relay:1", CMDOP_GRPC_SERVER: "grpc.relay:3" }
        })
        assert.strictEqual(both.server, "env.relay:1")
      })
    )

    it.scopedLive("empty variables count as unset", () =>
      Effect.gen(function* () {
        const r = yield* resolve({ env: { CMDOP_API_KEY: "", CMDOP_SERVER: " ", CMDOP_WORKSPACE: "" } })
        assert.deepStrictEqual(
          [key(r), r.source, r.server, r.workspace],
          [KEY_PROD, "workspace", "prod.relay:443", "prod"]
        )
      })
    )

    it.scopedLive("--workspace and CMDOP_WORKSPACE pick a stored workspace over the active one; the flag wins", () =>
      Effect.gen(function* () {
        const named = yield* resolve({}, { workspace: "dev" })
        assert.deepStrictEqual([key(named), named.source, named.workspace], [KEY_DEV, "workspace", "dev"])
        // dev names no server: the OAuth session's relay, never the active workspace's; without a session, the default.
        assert.deepStrictEqual([named.server, named.serverSource], ["oauth.relay:443", "oauth"])
        const noSession = yield* resolve({ oauth: undefined }, { workspace: "dev" })
        assert.deepStrictEqual([noSession.server, noSession.serverSource], [DEFAULT_SERVER, "default"])
        const fromEnv = yield* resolve({ env: { CMDOP_WORKSPACE: "dev" } })
        assert.deepStrictEqual([key(fromEnv), fromEnv.workspace], [KEY_DEV, "dev"])
        const flagWins = yield* resolve({ env: { CMDOP_WORKSPACE: "dev" } }, { workspace: "prod" })
        assert.deepStrictEqual(
          [key(flagWins), flagWins.workspace, flagWins.server],
          [KEY_PROD, "prod", "prod.relay:443"]
        )
      })
    )

    it.scopedLive("an unknown workspace name is an error listing the known names, never a fall-through", () =>
      Effect.gen(function* () {
        for (const setup of [
          { overrides: { workspace: "nope" }, env: {} },
          { overrides: {}, env: { CMDOP_WORKSPACE: "nope" } },
          // Not even a key given as a flag lets a mistyped workspace name pass.
          { overrides: { workspace: "nope", apiKey: Redacted.make(KEY_FLAG) }, env: {} }
        ]) {
          const error = yield* Effect.flip(resolve({ env: setup.env }, setup.overrides))
          assert.instanceOf(error, WorkspaceError)
          assert.strictEqual(error.message.split("\n").length, 1)
          assert.include(error.message, 'workspace "nope" does not exist (known: prod, dev, bare)')
        }
      })
    )

    it.scopedLive("under a login, an unknown workspace name says that workspace sync stores the person's", () =>
      Effect.gen(function* () {
        const signedIn = yield* Effect.flip(resolve({ workspaces: undefined }, { workspace: "acme" }))
        assert.instanceOf(signedIn, WorkspaceError)
        assert.include(signedIn.message, 'workspace "acme" does not exist (none are stored)')
        assert.include(signedIn.message, '"cmdop connect workspace sync"')
        const signedOut = yield* Effect.flip(
          resolve({ workspaces: undefined, oauth: undefined }, { workspace: "acme" })
        )
        assert.instanceOf(signedOut, WorkspaceError)
        assert.notInclude(signedOut.message, "sync")
      })
    )

    it.scopedLive("the active workspace gives key and server when nothing is named", () =>
      Effect.gen(function* () {
        const r = yield* resolve({})
        assert.deepStrictEqual(
          [key(r), r.source, r.workspace, r.server, r.serverSource],
          [KEY_PROD, "workspace", "prod", "prod.relay:443", "workspace"]
        )
      })
    )

    it.scopedLive(
      "a chosen workspace without a key falls through to the OAuth session, which goes only to its own relay",
      () =>
        Effect.gen(function* () {
          const bare = yield* resolve({ workspaces: withActive("bare") })
          assert.deepStrictEqual([key(bare), bare.source, bare.workspace], [TOKEN, "oauth", "bare"])
          assert.deepStrictEqual([bare.server, bare.serverSource], ["oauth.relay:443", "oauth"])
          const synced = JSON.stringify({
            active: "team",
            workspaces: [{ name: "team", server: "https://oauth.relay" }]
          })
          const own = yield* resolve({ workspaces: synced })
          assert.deepStrictEqual([key(own), own.source], [TOKEN, "oauth"])
          assert.deepStrictEqual([own.server, own.serverSource], ["https://oauth.relay", "workspace"])
          // A workspace of another relay with no key of its own: the login's token is not sent there.
          const keyless = JSON.stringify({
            active: "edge",
            workspaces: [{ name: "edge", server: "edge.relay:9" }]
          })
          const error = yield* Effect.flip(resolve({ workspaces: keyless }))
          assert.instanceOf(error, CredentialError)
          assert.include(error.message, "your login is not sent to this relay: it is for the relay oauth.relay:443")
          assert.include(error.message, 'cmdop login --server edge.relay:9"')
          assert.notInclude(error.message, TOKEN)
        })
    )

    it.scopedLive("with no store at all the OAuth session gives key and server", () =>
      Effect.gen(function* () {
        const r = yield* resolve({ workspaces: undefined })
        assert.deepStrictEqual(
          [key(r), r.source, r.workspace, r.server, r.serverSource],
          [TOKEN, "oauth", undefined, "oauth.relay:443", "oauth"]
        )
      })
    )

    it.scopedLive("an active name whose workspace was removed means no workspace, not an error", () =>
      Effect.gen(function* () {
        const r = yield* resolve({ workspaces: withActive("gone") })
        assert.deepStrictEqual([key(r), r.source, r.workspace], [TOKEN, "oauth", undefined])
      })
    )

    it.scopedLive("nothing anywhere: one line saying how to get a credential; the server defaults", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(resolve({ workspaces: undefined, oauth: undefined }))
        assert.instanceOf(error, CredentialError)
        assert.strictEqual(
          error.message,
          'no credential: run "cmdop login", "cmdop connect key set <key>", or pass --api-key'
        )
        const serverOnly = yield* resolve(
          { workspaces: undefined, oauth: undefined },
          { apiKey: Redacted.make(KEY_FLAG) }
        )
        assert.deepStrictEqual([serverOnly.server, serverOnly.serverSource], [DEFAULT_SERVER, "default"])
      })
    )

    it.scopedLive("a malformed key is refused naming where it came from", () =>
      Effect.gen(function* () {
        const fromEnv = yield* Effect.flip(resolve({ env: { CMDOP_API_KEY: "ck_live_has space" } }))
        assert.instanceOf(fromEnv, CredentialError)
        assert.include(fromEnv.message, "CMDOP_API_KEY")
        assert.include(fromEnv.message, "whitespace")
        const fromFlag = yield* Effect.flip(resolve({}, { apiKey: Redacted.make("a b") }))
        assert.instanceOf(fromFlag, CredentialError)
        assert.include(fromFlag.message, "--api-key")
      })
    )
  })
