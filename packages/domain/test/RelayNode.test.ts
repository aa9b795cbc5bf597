/**
 * Which relay an address names (`RelayNode`), and the resolver's rule on it: a stored credential (a login's token,
 * a workspace's key) goes only to the relay it is stored for, however that relay is spelled.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as RelayNode from "@cmdop/domain/RelayNode"
import * as Workspace from "@cmdop/domain/Workspace"

describe("RelayNode.same", () => {
  it("one relay however it is spelled", () => {
    assert.isTrue(RelayNode.same("relay.example:443", "https://relay.example"))
    assert.isTrue(RelayNode.same("grpcs://Relay.Example:8443/", "relay.example:8443"))
    assert.isTrue(RelayNode.same("127.0.0.1:50051", "localhost:50051"))
    assert.isTrue(RelayNode.same("[::1]:50051", "127.0.0.1:50051"))
    assert.isTrue(RelayNode.same(" a:1 ", "a:1"))
    assert.isTrue(RelayNode.same("127.0.0.1:50051/", "127.0.0.1:50051"))
    assert.strictEqual(RelayNode.addressOf("relay.example:50051/"), "relay.example:50051")
    // A scheme in any case (RFC 3986 §3.1), and what it says about TLS.
    assert.isTrue(RelayNode.same("HTTPS://Relay.Example", "relay.example:443"))
    assert.strictEqual(RelayNode.addressOf("Grpcs://relay.example"), "relay.example:443")
    assert.isTrue(RelayNode.isTls("HTTPS://relay.example"))
    assert.isFalse(RelayNode.isTls("HTTP://relay.example"))
    assert.isTrue(RelayNode.covers("https://relay.example", "HTTPS://RELAY.EXAMPLE:443/"))
  })
  it("a cluster's list shares its credentials with each of its nodes", () => {
    assert.isTrue(RelayNode.same("a:50051,b:50051", "b:50051"))
    assert.isTrue(RelayNode.same("c:50051", "b:50051, c:50051"))
  })
  it("another port, host or list is another relay", () => {
    assert.isFalse(RelayNode.same("127.0.0.1:50051", "127.0.0.1:46999"))
    assert.isFalse(RelayNode.same("relay.example:443", "evil.example:443"))
    assert.isFalse(RelayNode.same("https://relay.example", "relay.example:50051"))
    assert.isFalse(RelayNode.same("a:1,b:1", "c:1"))
    assert.isFalse(RelayNode.same("a:1", ""))
  })
})

describe("RelayNode.covers: where a stored credential may go", () => {
  it("a credential covers a call when every node it may dial is the credential's, over TLS when stored with TLS", () => {
    // A cluster's list and any of its nodes, in any order and spelling.
    assert.isTrue(RelayNode.covers("a:50051,b:50051", "b:50051"))
    assert.isTrue(RelayNode.covers("a:50051,b:50051", "B:50051, a:50051"))
    assert.isTrue(RelayNode.covers("127.0.0.1:50051", "localhost:50051"))
    assert.isTrue(RelayNode.covers("https://relay.example", "grpcs://relay.example:443/"))
    // A plaintext relay spelled with TLS is dialed with TLS: nothing shows.
    assert.isTrue(RelayNode.covers("relay.example:443", "https://relay.example"))
    // A list that names another server besides: the first that answers is dialed, which may be that one.
    assert.deepStrictEqual(RelayNode.outside("c:50051", "b:50051, c:50051"), { entry: "b:50051", reason: "other" })
    assert.deepStrictEqual(RelayNode.outside("a:1", "a:1,evil:1"), { entry: "evil:1", reason: "other" })
    // Stored with TLS, dialed in plaintext: the token would cross the network in the clear.
    assert.deepStrictEqual(RelayNode.outside("https://relay.example", "relay.example:443"), {
      entry: "relay.example:443",
      reason: "plaintext"
    })
    assert.deepStrictEqual(RelayNode.outside("https://relay.example:8443", "http://relay.example:8443"), {
      entry: "http://relay.example:8443",
      reason: "plaintext"
    })
    assert.isFalse(RelayNode.covers("a:1", ""))
    assert.isFalse(RelayNode.covers("a:1", " , "))
  })
})

const TOKEN = "cmdop_0123456789abcdef0123"
const KEY = "ck_test_" + "k".repeat(32)
const login = Option.some({ accessToken: Redacted.make(TOKEN), server: "127.0.0.1:46051" })
const ws = (name: string, fields: Partial<Workspace.Workspace> = {}): Workspace.Workspace => ({
  name: Workspace.WorkspaceName.make(name),
  ...fields
})

describe("a stored credential goes only to its own relay", () => {
  it.effect("a login's token is not sent to a workspace's other relay: the call fails before it is made", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        CredentialResolver.resolveWith({
          overrides: {},
          env: {},
          file: { active: Workspace.WorkspaceName.make("w2"), workspaces: [ws("w2", { server: "127.0.0.1:46999" })] },
          oauth: login
        })
      )
      assert.strictEqual(error._tag, "CredentialError")
      assert.strictEqual(
        error.message,
        "your login is not sent to this relay: it is for the relay 127.0.0.1:46051, and this call goes to 127.0.0.1:46999 (the workspace's server); sign in there with \"cmdop login --server 127.0.0.1:46999\", or pass that relay's key with --api-key"
      )
      assert.notInclude(error.message, TOKEN)
    })
  )
  it.effect("nor to --server or CMDOP_SERVER", () =>
    Effect.gen(function* () {
      for (const [overrides, env, said] of [
        [{ server: "evil.example:50051" }, {}, "(--server)"],
        [{}, { CMDOP_SERVER: "evil.example:50051" }, "(CMDOP_SERVER)"]
      ] as const) {
        const error = yield* Effect.flip(
          CredentialResolver.resolveWith({ overrides, env, file: Workspace.empty, oauth: login })
        )
        assert.include(error.message, `this call goes to evil.example:50051 ${said}`)
      }
    })
  )
  it.effect("nor to a list that names another server besides its relay, nor in plaintext to a TLS relay", () =>
    Effect.gen(function* () {
      const listed = yield* Effect.flip(
        CredentialResolver.resolveWith({
          overrides: { server: "127.0.0.1:46999,127.0.0.1:46051" },
          env: {},
          file: Workspace.empty,
          oauth: login
        })
      )
      assert.strictEqual(
        listed.message,
        "your login is not sent to this relay: it is for the relay 127.0.0.1:46051, and this call goes to 127.0.0.1:46999,127.0.0.1:46051 (--server), whose node 127.0.0.1:46999 is not that relay's (a list's first node that answers gets the call); list only that relay's nodes, or sign in there with \"cmdop login --server 127.0.0.1:46999,127.0.0.1:46051\", or pass that relay's key with --api-key"
      )
      // A workspace's key, stored for a TLS relay, asked to go there in plaintext (the alias names itself).
      const file: Workspace.WorkspaceFile = {
        active: Workspace.WorkspaceName.make("acme"),
        workspaces: [ws("acme", { server: "https://relay.acme", api_key: Redacted.make(KEY) })]
      }
      const plain = yield* Effect.flip(
        CredentialResolver.resolveWith({
          overrides: {},
          env: { CMDOP_GRPC_SERVER: "relay.acme:443" },
          file,
          oauth: Option.none()
        })
      )
      assert.strictEqual(
        plain.message,
        'the key of workspace "acme" is not sent to this relay: it is for the relay https://relay.acme over TLS, and this call goes to relay.acme:443 (CMDOP_GRPC_SERVER) in plaintext, which shows it to the network; use https://relay.acme:443 instead'
      )
      assert.notInclude(plain.message, KEY)
      // A login for a cluster's whole list goes to any of its nodes.
      const cluster = yield* CredentialResolver.resolveWith({
        overrides: { server: "localhost:46052" },
        env: {},
        file: Workspace.empty,
        oauth: Option.some({ accessToken: Redacted.make(TOKEN), server: "127.0.0.1:46051,127.0.0.1:46052" })
      })
      assert.strictEqual(cluster.source, "oauth")
    })
  )
  it.effect("a login goes to its relay however it is spelled, and to a workspace stored for it", () =>
    Effect.gen(function* () {
      const viaFlag = yield* CredentialResolver.resolveWith({
        overrides: { server: "localhost:46051" },
        env: {},
        file: Workspace.empty,
        oauth: login
      })
      assert.strictEqual(viaFlag.source, "oauth")
      const synced = yield* CredentialResolver.resolveWith({
        overrides: {},
        env: {},
        file: { active: Workspace.WorkspaceName.make("team"), workspaces: [ws("team", { server: "127.0.0.1:46051" })] },
        oauth: login
      })
      assert.strictEqual(synced.source, "oauth")
    })
  )
  it.effect("a workspace's key is not sent to a --server of another relay; --api-key goes where the call goes", () =>
    Effect.gen(function* () {
      const file: Workspace.WorkspaceFile = {
        active: Workspace.WorkspaceName.make("acme"),
        workspaces: [ws("acme", { server: "relay.acme:50051", api_key: Redacted.make(KEY) })]
      }
      const error = yield* Effect.flip(
        CredentialResolver.resolveWith({ overrides: { server: "other:50051" }, env: {}, file, oauth: Option.none() })
      )
      assert.strictEqual(
        error.message,
        'the key of workspace "acme" is not sent to this relay: it is for the relay relay.acme:50051, and this call goes to other:50051 (--server); pass that relay\'s own key with --api-key, or leave out --server to reach relay.acme:50051'
      )
      const given = yield* CredentialResolver.resolveWith({
        overrides: { server: "other:50051", apiKey: Redacted.make(KEY) },
        env: {},
        file,
        oauth: Option.none()
      })
      assert.strictEqual(given.source, "flag")
      // A workspace stored without a relay keeps its key for whichever relay the call names.
      const unbound = yield* CredentialResolver.resolveWith({
        overrides: { server: "other:50051" },
        env: {},
        file: { active: Workspace.WorkspaceName.make("k"), workspaces: [ws("k", { api_key: Redacted.make(KEY) })] },
        oauth: Option.none()
      })
      assert.strictEqual(unbound.source, "workspace")
    })
  )
})
