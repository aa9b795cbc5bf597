/**
 * The key check when the store cannot answer: a database failure (a node's store queue full in a connect storm, the
 * pool exhausted) is UNAVAILABLE on the wire, so an agent backs off and tries again; a refused key stays
 * UNAUTHENTICATED, and a store fault that is not the database's stays INTERNAL.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import { RelayError } from "@cmdop/domain/RelayError"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as Authenticator from "@cmdop/relay/Authenticator"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { RelayStoreError } from "@cmdop/relay/store/RelayStoreError"
import { ShareService } from "@cmdop/domain/ShareService"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

const server = "relay.test:50051"

/** An authenticator on the memory store whose key checks fail with `failure` while it is set. */
const withFailingStore = Effect.gen(function* () {
  const failing: { current: RelayStoreError | undefined } = { current: undefined }
  const context = yield* Layer.build(Layer.provideMerge(ShareServiceLive.layer, RelayStore.layerMemory))
  const store = Context.get(context, RelayStore.RelayStore)
  const flaky: RelayStore.RelayStore["Type"] = {
    ...store,
    authenticateKey: (key) =>
      failing.current === undefined ? store.authenticateKey(key) : Effect.fail(failing.current)
  }
  const { authenticate } = Authenticator.make(flaky, Context.get(context, ShareService), server)
  const created = yield* store.createWorkspace(WorkspaceName.make("w"))
  return { failing, authenticate, created }
})

/** gRPC status codes (grpc-js is not a dependency of the relay package). */
const UNAVAILABLE = 14
const INTERNAL = 13
const UNAUTHENTICATED = 16
const codeOf = (e: AccessError | RelayError): number => ErrorCodec.toStatus(e).code

describe("Authenticator: a key check the store cannot answer", () => {
  it.scoped("a database failure is Unavailable (retryable), not Internal; the next check goes through", () =>
    Effect.gen(function* () {
      const { failing, authenticate, created } = yield* withFailingStore
      failing.current = new RelayStoreError({
        reason: "Sql",
        subject: "authenticateKey",
        detail: "the node's database work is queued (200 waiting behind 4 running)"
      })
      const error = yield* Effect.flip(authenticate(created.apiKey))
      if (!(error instanceof RelayError)) return assert.fail(`expected a RelayError, got ${error._tag}`)
      assert.strictEqual(error.reason, "Unavailable")
      assert.include(error.detail, "200 waiting behind 4 running")
      assert.notInclude(error.message, Redacted.value(created.apiKey))
      assert.strictEqual(codeOf(error), UNAVAILABLE)

      failing.current = undefined
      const caller = yield* authenticate(created.apiKey)
      assert.strictEqual(caller.workspaceId, created.workspace.id)
    })
  )

  it.scoped("a store fault that is not the database's stays Internal; an unknown key stays Unauthenticated", () =>
    Effect.gen(function* () {
      const { failing, authenticate, created } = yield* withFailingStore
      failing.current = new RelayStoreError({ reason: "WorkspaceNotFound", subject: "w" })
      const fault = yield* Effect.flip(authenticate(created.apiKey))
      assert.deepStrictEqual([fault._tag, fault.reason], ["RelayError", "Internal"])
      assert.strictEqual(codeOf(fault), INTERNAL)

      failing.current = undefined
      const refused = yield* Effect.flip(authenticate(Redacted.make("ck_not-a-key-of-this-relay")))
      assert.instanceOf(refused, AccessError)
      assert.strictEqual(codeOf(refused), UNAUTHENTICATED)
    })
  )
})
