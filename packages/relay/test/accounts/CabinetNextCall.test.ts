/**
 * Changes an owner makes in the cabinet reach the very next gRPC call of the person they concern, on the same
 * client connection (a real relay, no waiting): demotion limits it (a viewer lists but reaches no machine),
 * removal refuses it; the person's own sign-out from the cabinet ends their cabinet at once.
 */
import * as Stream from "effect/Stream"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { client, csrfOf, deviceLogin, setup } from "./relayFixture.js"

describe("cabinet changes reach the very next call", () => {
  it.scoped("demotion and removal by an owner; sign-out by the person", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const alice = yield* env.person("alice@example.com", env.acme.workspace.id, "owner")
      const bob = yield* env.person("bob@example.com", env.acme.workspace.id, "member")
      const tokens = yield* deviceLogin(env.running.httpAddress, bob.browser)
      const rpc = yield* client(env.running.grpcAddress, tokens.access_token)
      const reach = Effect.flip(Stream.runDrain(rpc.exec({ machine: "anything", argv: ["true"] })))
      assert.strictEqual((yield* reach)._tag, "MachineError")

      const csrf = csrfOf((yield* alice.browser.request("/cabinet")).text)
      const demoted = yield* alice.browser.request("/cabinet/members/add", {
        csrf,
        email: "bob@example.com",
        role: "viewer"
      })
      assert.strictEqual(demoted.status, 303)
      const limited = yield* reach
      assert.strictEqual(limited._tag, "AccessError")
      assert.include(limited.message, "a viewer of workspace acme cannot reach machines")
      assert.deepStrictEqual((yield* rpc.listMachines()).machines, [])

      const removed = yield* alice.browser.request("/cabinet/members/remove", { csrf, user: bob.user.id })
      assert.strictEqual(removed.status, 303)
      const refused = yield* Effect.flip(rpc.whoami)
      assert.strictEqual(refused._tag, "AccessError")

      const bobCsrf = csrfOf((yield* bob.browser.request("/cabinet")).text)
      assert.strictEqual((yield* bob.browser.request("/signout", { csrf: bobCsrf })).status, 303)
      const after = yield* bob.browser.request("/cabinet")
      assert.strictEqual(after.status, 303)
      assert.strictEqual(after.location, "/signin?next=%2Fcabinet")
    })
  )
})
