/**
 * The cabinet's "Connect" link (a one-hour share link minted as the person, which opens the browser terminal) is
 * only as good as the person's access and their web session: on a real relay, after the person is demoted to
 * viewer, removed, or signs out, the link's very next use is refused (every use — the browser terminal's socket,
 * a CLI guest — authenticates through the relay core as here). Another person's link goes on. (A terminal open
 * through such a link ending on the machine within the sweep: packages/testkit/test/PersonRemoved.test.ts.)
 */
import * as Machine from "@cmdop/domain/Machine"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import WebSocket from "ws"
import { client, csrfOf, setup } from "./relayFixture.js"

/** Opens the browser terminal's WebSocket with `token`: 101 when it opens (then closed), else the refusal's status. */
const terminalStatus = (httpAddress: string, token: string) =>
  Effect.async<number>((resume) => {
    const socket = new WebSocket(`${httpAddress.replace(/^http/, "ws")}/s/${token}/ws`)
    socket.on("open", () => {
      socket.close()
      resume(Effect.succeed(101))
    })
    socket.on("unexpected-response", (_request, response) => resume(Effect.succeed(response.statusCode ?? 0)))
    socket.on("error", () => undefined)
  })

describe("a cabinet Connect link ends with its person's access or web session", () => {
  it.scoped("demoted, removed, signed out: the next use is refused; another person's link goes on", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const machine = yield* env.store.registerMachine({
        id: Machine.MachineId.make("5d7b0a38-3c1e-4f0e-8e43-6a1f2b9c0d11"),
        workspaceId: env.acme.workspace.id,
        hostname: Machine.Hostname.make("box-1"),
        name: "box-1",
        os: "linux",
        agentVersion: "test",
        secretHash: "0".repeat(64)
      })
      const alice = yield* env.person("alice@example.com", env.acme.workspace.id, "owner")
      const csrfOfPerson = (p: typeof alice) => Effect.map(p.browser.request("/cabinet"), (r) => csrfOf(r.text))
      /** Connect as `p`: the link's token, checked to work as a guest. */
      const connect = (p: typeof alice) =>
        Effect.gen(function* () {
          const done = yield* p.browser.request("/cabinet/connect", {
            csrf: yield* csrfOfPerson(p),
            machine: machine.id
          })
          assert.strictEqual(done.status, 303, done.text)
          const token = /^\/s\/(\S+)$/.exec(done.location ?? "")![1]!
          const guest = yield* client(env.running.grpcAddress, token)
          assert.strictEqual((yield* guest.whoami).kind, "guest")
          return Object.assign(guest, { token })
        })
      const refusal = (guest: Effect.Effect.Success<ReturnType<typeof client>>) =>
        Effect.map(Effect.flip(guest.whoami), (e) => `${e._tag}: ${e.message}`)
      const hers = yield* connect(alice)

      const bob = yield* env.person("bob@example.com", env.acme.workspace.id, "member")
      const bobs = yield* connect(bob)
      assert.strictEqual(yield* terminalStatus(env.running.httpAddress, bobs.token), 101)
      const demoted = yield* alice.browser.request("/cabinet/members/add", {
        csrf: yield* csrfOfPerson(alice),
        email: "bob@example.com",
        role: "viewer"
      })
      assert.strictEqual(demoted.status, 303)
      assert.include(yield* refusal(bobs), "bob@example.com, who made it, is now a viewer of workspace acme")
      // The browser terminal's socket is refused too: the page's next attempt to open the terminal.
      assert.strictEqual(yield* terminalStatus(env.running.httpAddress, bobs.token), 403)

      const carol = yield* env.person("carol@example.com", env.acme.workspace.id, "member")
      const carols = yield* connect(carol)
      const removed = yield* alice.browser.request("/cabinet/members/remove", {
        csrf: yield* csrfOfPerson(alice),
        user: carol.user.id
      })
      assert.strictEqual(removed.status, 303)
      assert.include(yield* refusal(carols), "carol@example.com, who made it, is no longer a member of workspace acme")

      const dave = yield* env.person("dave@example.com", env.acme.workspace.id, "member")
      const daves = yield* connect(dave)
      const out = yield* dave.browser.request("/signout", { csrf: yield* csrfOfPerson(dave) })
      assert.strictEqual(out.status, 303)
      assert.match(yield* refusal(daves), /^AccessError: .*revoked/)

      // Alice's link, from her own session, goes on through all of it.
      assert.strictEqual((yield* hers.whoami).kind, "guest")
    })
  )
})
