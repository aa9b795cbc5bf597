import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as RelayNode from "@cmdop/domain/RelayNode"
import * as Secret from "@cmdop/domain/Secret"
import * as Workspace from "@cmdop/domain/Workspace"
import * as Arbitraries from "@cmdop/domain/testing/Arbitraries"
import * as codec from "../src/internal/workspaceCodec.js"

describe("store file codec", () => {
  it.effect.prop("any store file round-trips through JSON", [Arbitraries.workspaceFile], ([file]) =>
    Effect.gen(function* () {
      const text = codec.encode(file)
      const back = yield* codec.decode("test.json", text)
      assert.strictEqual(codec.encode(back), text)
      // Secrets come back as Redacted values with the same content.
      back.workspaces.forEach((w, i) => {
        const original = file.workspaces[i]!
        assert.strictEqual(w.api_key && Redacted.value(w.api_key), original.api_key && Redacted.value(original.api_key))
      })
    })
  )

  it.effect("a Redacted key prints as <redacted>, never its value", () =>
    Effect.sync(() => {
      const w = Schema.decodeUnknownSync(Workspace.Workspace)({ name: "a", api_key: "ck_live_" + "s".repeat(32) })
      assert.notInclude(String(w.api_key), "ssss")
      assert.notInclude(JSON.stringify(w), "ssss")
    })
  )
})

describe("masking", () => {
  it.prop("never reveals more than the first 8 and last 4 characters", [Arbitraries.secretString], ([secret]) => {
    const masked = Secret.maskString(secret)
    if (secret.length <= 16) {
      assert.strictEqual(masked, "****")
    } else {
      assert.strictEqual(masked, `${secret.slice(0, 8)}…${secret.slice(-4)}`)
      // The hidden middle never appears.
      const middle = secret.slice(8, -4)
      if (middle.length >= 4) assert.notInclude(masked.slice(8, -4), middle)
    }
  })

  it("masks the spec's example", () => {
    assert.strictEqual(Secret.maskString("ck_live_abcdefghijklmnopqrstuvwxyz123456"), "ck_live_…3456")
    assert.strictEqual(Secret.maskString("short_key_16char"), "****")
  })
})

describe("credential resolver", () => {
  it.effect.prop(
    "picks the highest-priority present source, for key and server",
    [Arbitraries.credentialInputs],
    ([inputs]) =>
      Effect.gen(function* () {
        const result = yield* Effect.either(CredentialResolver.resolveWith(inputs))
        const { env, file, oauth, overrides } = inputs
        const named = overrides.workspace ?? env.CMDOP_WORKSPACE
        const chosen = named ? Workspace.find(file, named) : Workspace.find(file, Workspace.activeName(file) ?? "")
        const expectedKey = overrides.apiKey
          ? ["flag", Redacted.value(overrides.apiKey)]
          : env.CMDOP_API_KEY
            ? ["env", env.CMDOP_API_KEY]
            : chosen?.api_key
              ? ["workspace", Redacted.value(chosen.api_key)]
              : Option.isSome(oauth)
                ? ["oauth", Redacted.value(oauth.value.accessToken)]
                : undefined
        if (expectedKey === undefined) {
          assert.isTrue(result._tag === "Left")
          if (result._tag === "Left") assert.strictEqual(result.left._tag, "CredentialError")
          return
        }
        const expectedServer =
          overrides.server ??
          env.CMDOP_SERVER ??
          env.CMDOP_GRPC_SERVER ??
          (chosen?.server ? chosen.server : undefined) ??
          (Option.isSome(oauth) ? oauth.value.server : undefined) ??
          CredentialResolver.DEFAULT_SERVER
        // A stored credential is never sent to another relay than its own.
        const boundTo =
          expectedKey[0] === "oauth" && Option.isSome(oauth)
            ? oauth.value.server
            : expectedKey[0] === "workspace" && chosen?.server
              ? chosen.server
              : undefined
        if (boundTo !== undefined && !RelayNode.covers(boundTo, expectedServer)) {
          assert.isTrue(result._tag === "Left")
          if (result._tag === "Left") assert.strictEqual(result.left._tag, "CredentialError")
          if (result._tag === "Left" && result.left._tag === "CredentialError")
            assert.strictEqual(result.left.reason, "OtherRelay")
          return
        }
        assert.isTrue(result._tag === "Right")
        if (result._tag !== "Right") return
        assert.strictEqual(result.right.source, expectedKey[0])
        assert.strictEqual(Redacted.value(result.right.apiKey), expectedKey[1])
        assert.strictEqual(result.right.server, expectedServer)
        assert.strictEqual(result.right.workspace, chosen?.name)
      })
  )

  it.effect("an unknown --workspace is an error listing known names, never a fall-through", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        CredentialResolver.resolveWith({
          overrides: { workspace: "nope" },
          env: { CMDOP_API_KEY: "ck_test_" + "k".repeat(32) },
          file: {
            active: Workspace.WorkspaceName.make("a"),
            workspaces: [{ name: Workspace.WorkspaceName.make("a") }]
          },
          oauth: Option.none()
        })
      )
      assert.strictEqual(error._tag, "WorkspaceError")
      assert.include(error.message, "known: a")
    })
  )

  it.effect("no source at all says how to fix it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        CredentialResolver.resolveWith({ overrides: {}, env: {}, file: Workspace.empty, oauth: Option.none() })
      )
      assert.strictEqual(
        error.message,
        'no credential: run "cmdop login", "cmdop connect key set <key>", or pass --api-key'
      )
    })
  )

  it.effect("a key with whitespace is malformed and names where it came from", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        CredentialResolver.resolveWith({
          overrides: {},
          env: { CMDOP_API_KEY: "ck_test_abc def" },
          file: Workspace.empty,
          oauth: Option.none()
        })
      )
      assert.include(error.message, "CMDOP_API_KEY")
      assert.include(error.message, "whitespace")
    })
  )
})

describe("workspace operations", () => {
  it.effect.prop(
    "use of an unknown name fails and changes nothing",
    [Arbitraries.workspaceFile, Arbitraries.workspaceName],
    ([file, name]) =>
      Effect.gen(function* () {
        const result = yield* Effect.either(Workspace.use(file, name))
        if (Workspace.find(file, name)) assert.strictEqual(result._tag === "Right" && result.right.active, name)
        else assert.isTrue(result._tag === "Left")
      })
  )

  it.effect("removing the active workspace leaves none active", () =>
    Effect.gen(function* () {
      const a = Workspace.WorkspaceName.make("a")
      const next = yield* Workspace.remove({ active: a, workspaces: [{ name: a }] }, "a")
      assert.strictEqual(Workspace.activeName(next), undefined)
      assert.strictEqual(next.workspaces.length, 0)
    })
  )

  it.effect("setKey with create adds the workspace, active when none is", () =>
    Effect.gen(function* () {
      const key = Redacted.make("ck_test_" + "z".repeat(32))
      const next = yield* Workspace.setKey(Workspace.empty, Workspace.WorkspaceName.make("ci"), key, { create: true })
      assert.strictEqual(Workspace.activeName(next), "ci")
      const missing = yield* Effect.either(
        Workspace.setKey(Workspace.empty, Workspace.WorkspaceName.make("ci"), key, { create: false })
      )
      assert.isTrue(missing._tag === "Left")
    })
  )
})

describe("arbitraries", () => {
  it("generated files always decode", () => {
    FastCheck.assert(
      FastCheck.property(Arbitraries.workspaceFile, (file) => {
        Schema.decodeUnknownSync(Workspace.WorkspaceFile)(Schema.encodeSync(Workspace.WorkspaceFile)(file))
      }),
      { numRuns: 200 }
    )
  })
})
