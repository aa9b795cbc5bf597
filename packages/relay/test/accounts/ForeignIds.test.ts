/**
 * Another workspace's ids, where the other cabinet tests do not try them: in URLs (the cabinet's query string,
 * the workspaces API's, with her login), and a share link's id in the revoke form. The cabinet always acts in the person's own
 * active workspace, so these are ignored or refused like unknown ids, and nothing of the other workspace changes.
 */
import * as Machine from "@cmdop/domain/Machine"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { browser, client, csrfOf, deviceLogin, setup } from "./relayFixture.js"

describe("another workspace's ids", () => {
  it.scoped("in URLs and in the share-link revoke form: ignored or refused; the other workspace is untouched", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const alice = yield* env.person("alice@example.com", env.acme.workspace.id, "owner")
      yield* env.person("mallory@example.com", env.gamma.workspace.id, "owner")
      yield* env.store.registerMachine({
        id: Machine.MachineId.make("0d9f1c62-4c3b-4a8e-9f1e-6b7a2c3d4e5f"),
        workspaceId: env.gamma.workspace.id,
        hostname: Machine.Hostname.make("gamma-box"),
        name: "gamma-box",
        os: "linux",
        agentVersion: "test",
        secretHash: "0".repeat(64)
      })
      const gamma = yield* client(env.running.grpcAddress, env.gamma.apiKey)
      const link = yield* gamma.createShare("gamma-box", 3600)

      // The cabinet with gamma's id in its URL shows acme's sections, never gamma's machine or link.
      for (const query of [`?workspace=${env.gamma.workspace.id}`, `?workspace=gamma`, `?machine=gamma-box`]) {
        const page = yield* alice.browser.request(`/cabinet${query}`)
        assert.strictEqual(page.status, 200)
        assert.include(page.text, "Machines in acme")
        assert.notInclude(page.text, "gamma-box")
        assert.notInclude(page.text, link.link.id)
      }
      // Cabinet actions are forms only: a GET with gamma's ids does nothing.
      const viaUrl = yield* alice.browser.request(`/cabinet/shares/revoke?id=${link.link.id}`)
      assert.strictEqual(viaUrl.status, 404)
      // The revoke form with gamma's link id: refused like an unknown link, and the link still works.
      const csrf = csrfOf((yield* alice.browser.request("/cabinet")).text)
      const revoked = yield* alice.browser.request("/cabinet/shares/revoke", { csrf, id: link.link.id })
      assert.strictEqual(revoked.status, 403)
      const { links } = yield* gamma.listShares(undefined)
      assert.deepStrictEqual(
        links.map((l) => [l.id, l.revokedAt === undefined]),
        [[link.link.id, true]]
      )
      const share = yield* browser(env.running.httpAddress).request(new URL(link.url).pathname)
      assert.strictEqual(share.status, 200)

      // The workspaces API lists her own workspaces whatever the URL says.
      const tokens = yield* deviceLogin(env.running.httpAddress, alice.browser)
      const api = yield* Effect.promise(async () => {
        const r = await fetch(
          `${env.running.httpAddress}/apix/machines/workspaces/?workspace=${env.gamma.workspace.id}&id=${env.gamma.workspace.id}`,
          { headers: { authorization: `Bearer ${tokens.access_token}` } }
        )
        return { status: r.status, body: (await r.json()) as { workspaces: Array<{ name: string }> } }
      })
      assert.strictEqual(api.status, 200)
      assert.deepStrictEqual(
        api.body.workspaces.map((w) => w.name),
        ["acme"]
      )
    })
  )
})
