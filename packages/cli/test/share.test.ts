/**
 * Share links end to end, in both worlds (`World.ts`): the owner mints a link with the CLI, a guest with an empty
 * HOME uses only the token, revocation ends the guest's running command at once, and rotating the workspace key
 * kills the remaining links. The share page over real HTTP is checked in the live world.
 */
import { assert, describe, it } from "@effect/vitest"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as Effect from "effect/Effect"
import { sharedLive, worldsSharingRelay } from "./World.js"

// One relay for the file (no test stops it; each names its workspace apart).
const shared = sharedLive()

interface SharedLink {
  readonly id: string
  readonly machine_hostname: string
  readonly expires_at: string | null
  readonly events: ReadonlyArray<{ readonly kind: string; readonly detail: string }>
}

for (const [worldName, makeWorld] of worldsSharingRelay(shared))
  describe(`share links end to end, ${worldName}`, () => {
    it.scopedLive(
      "signing keys rotate on the relay host: old links work until their key is retired",
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const key = yield* w.create("acme")
          yield* w.agent(key, "box")
          const mint = () =>
            Effect.map(w.cli(key, ["share", "box", "--json"]), (r) => JSON.parse(r.stdout).token as string)
          const use = (token: string) =>
            w.bare(["connect", "--api-key", token, "--server", w.server, "exec", "box", "--", "true"])
          const before = yield* mint()
          const rotated = yield* w.admin(["signing-key", "rotate", "--json"])
          assert.strictEqual(rotated.code, 0, rotated.stderr)
          const { current, previous } = JSON.parse(rotated.stdout)
          assert.notStrictEqual(current, previous)
          const after = yield* mint()
          assert.strictEqual((yield* use(before)).code, 0)
          assert.strictEqual((yield* use(after)).code, 0)
          const retired = yield* w.admin(["signing-key", "retire", previous])
          assert.strictEqual(retired.code, 0, retired.stderr)
          const old = yield* use(before)
          assert.strictEqual(old.code, 255)
          assert.include(old.stderr, "retired")
          // `share list` shows the link under the retired key as not active.
          const listed = JSON.parse((yield* w.cli(key, ["share", "list", "--json"])).stdout).links as Array<{
            status: string
          }>
          assert.deepStrictEqual(
            listed.map((l) => l.status),
            ["key retired", "active"]
          )
          assert.strictEqual((yield* use(after)).code, 0)
        }),
      60_000
    )

    it.scopedLive(
      "mint, guest exec, other machine refused, revoke kills a running guest exec, key rotation kills the rest",
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const key = yield* w.create("acme-guests")
          yield* w.agent(key, "prod-1")
          yield* w.agent(key, "prod-2")

          const minted = yield* w.cli(key, ["share", "prod-1", "--ttl", "90m", "--json"])
          assert.strictEqual(minted.code, 0, minted.stderr)
          const link = JSON.parse(minted.stdout)
          assert.deepStrictEqual(Object.keys(link).sort(), [
            "expires_at",
            "gate_configured",
            "id",
            "machine_id",
            "token",
            "url"
          ])
          // The id a script revokes it by, and the machine's gate with the warning on stderr, as without --json.
          const listed = JSON.parse((yield* w.cli(key, ["share", "list", "--json"])).stdout).links as Array<{
            readonly id: string
          }>
          assert.isTrue(
            listed.some((l) => l.id === link.id),
            JSON.stringify(listed)
          )
          // (A real agent without a permissions file says false; the in-memory world's agents say nothing: null.)
          assert.include([false, null], link.gate_configured)
          assert.strictEqual(minted.stderr.includes("prod-1 has no gate configured"), link.gate_configured === false)
          assert.match(link.token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/)
          assert.strictEqual(link.url, `${w.shareBase}/s/${link.token}`)
          // 90m rounds up to 2 h.
          const hours = (Date.parse(link.expires_at) - Date.now()) / 3_600_000
          assert.isTrue(hours > 1.98 && hours <= 2.0, `expires in ${hours} h`)

          const human = yield* w.cli(key, ["share", "prod-2", "--ttl", "0"])
          assert.include(human.stdout, "expires: never")
          assert.include(human.stderr, "like a password")
          assert.include(human.stderr, "never expires")

          // The guest: an empty HOME, only the token and the relay address.
          const guest = (args: ReadonlyArray<string>) =>
            w.bare(["connect", "--api-key", link.token, "--server", w.server, ...args])
          const hello = yield* guest(["exec", "prod-1", "--", "echo", "hi from guest"])
          assert.strictEqual(hello.stdout, "hi from guest\n", hello.stderr)
          const list = yield* guest(["--list", "--json"])
          assert.deepStrictEqual(
            JSON.parse(list.stdout).machines.map((m: { hostname: string }) => m.hostname),
            ["prod-1"]
          )
          const other = yield* guest(["exec", "prod-2", "--", "true"])
          assert.strictEqual(other.code, 255)
          assert.include(other.stderr, "share link is for machine prod-1, not prod-2")
          const mint = yield* guest(["share", "prod-1"])
          assert.strictEqual(mint.code, 255)
          assert.include(mint.stderr, "a share link cannot mint share links")
          const listShares = yield* guest(["share", "list"])
          assert.strictEqual(listShares.code, 255)
          const who = JSON.parse((yield* guest(["whoami", "--json"])).stdout)
          assert.strictEqual(who.relay.principal_kind, "guest")

          // Revoke while the guest runs `sleep 60`: the guest's command ends at once, not when the sleep would.
          const running = yield* Effect.fork(guest(["exec", "prod-1", "--", "sleep", "60"]))
          // The relay records the link's use just before it registers the session: poll for it, never sleep.
          const id = yield* eventually(
            "the guest's sleep to be running",
            Effect.map(w.cli(key, ["share", "list", "--json"]), (r) => {
              const link = (JSON.parse(r.stdout).links as Array<SharedLink>).find(
                (l) => l.machine_hostname === "prod-1" && l.expires_at !== null
              )
              return link?.events.some((e) => e.kind === "used" && e.detail === "exec sleep") ? link.id : undefined
            }),
            { timeout: "30 seconds", interval: "50 millis" }
          )
          const revokedAt = Date.now()
          const revoked = yield* w.cli(key, ["share", "revoke", id])
          assert.strictEqual(revoked.code, 0, revoked.stderr)
          // The answer is true: the guest's one running command was ended.
          assert.include(revoked.stdout, `revoked share link ${id} for prod-1; ended 1 guest session on the machine`)
          const ended = yield* running.await.pipe(Effect.flatten)
          // Far below the 60 s the command would run otherwise; generous for a loaded machine's process starts.
          assert.isBelow(Date.now() - revokedAt, 20_000)
          assert.strictEqual(ended.code, 255)
          assert.include(ended.stderr, "revoked")
          const after = yield* guest(["exec", "prod-1", "--", "true"])
          assert.strictEqual(after.code, 255)
          assert.include(after.stderr, "was revoked")

          // The audit trail: created, used, denied, revoked.
          const audit = JSON.parse((yield* w.cli(key, ["share", "list", "prod-1", "--json"])).stdout).links[0]
          const kinds = audit.events.map((e: { kind: string }) => e.kind)
          for (const kind of ["created", "used", "revoked", "denied"]) assert.include(kinds, kind)
          assert.strictEqual(audit.status, "revoked")
          // Revoking again is not a silent success.
          const again = yield* w.cli(key, ["share", "revoke", id])
          assert.strictEqual(again.code, 0, again.stderr)
          assert.include(again.stdout, `share link ${id} for prod-1 was already revoked at `)

          // Rotating the workspace key kills every link minted under the old key.
          const second = JSON.parse((yield* w.cli(key, ["share", "prod-2", "--json"])).stdout)
          const guest2 = (args: ReadonlyArray<string>) =>
            w.bare(["connect", "--api-key", second.token, "--server", w.server, ...args])
          assert.strictEqual((yield* guest2(["exec", "prod-2", "--", "true"])).code, 0)
          const rotated = yield* w.admin(["key", "rotate", "acme-guests"])
          assert.strictEqual(rotated.code, 0, rotated.stderr)
          const dead = yield* guest2(["exec", "prod-2", "--", "true"])
          assert.strictEqual(dead.code, 255)
          assert.include(dead.stderr, "workspace key was rotated")
        }),
      120_000
    )
  })

describe("the share page over real HTTP", () => {
  it.scopedLive(
    "a valid link opens the page (200), garbage is refused (401), a revoked link is gone (410)",
    () =>
      Effect.gen(function* () {
        const w = yield* shared
        const key = yield* w.create("acme-page")
        yield* w.agent(key, "prod-1")
        const link = JSON.parse((yield* w.cli(key, ["share", "prod-1", "--json"])).stdout)
        const page = yield* Effect.promise(() => fetch(link.url))
        assert.strictEqual(page.status, 200)
        assert.include(yield* Effect.promise(() => page.text()), "prod-1")
        const garbage = yield* Effect.promise(() => fetch(`http://127.0.0.1:${w.httpPort}/s/not-a-token`))
        assert.strictEqual(garbage.status, 401)
        const id = JSON.parse((yield* w.cli(key, ["share", "list", "--json"])).stdout).links[0].id
        assert.strictEqual((yield* w.cli(key, ["share", "revoke", id])).code, 0)
        const gone = yield* Effect.promise(() => fetch(link.url))
        assert.strictEqual(gone.status, 410)
      }),
    60_000
  )
})
