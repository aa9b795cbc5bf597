/**
 * `RelayStore` contract: Signing keys of share tokens, and share links with their audit trail.
 */
import { type MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { randomBytes } from "node:crypto"
import { RelayStore } from "../service.js"
import type { ShareLinkPage } from "../shareLinkPage.js"
import { type ContractTest, failure, freshName, registration, some, suffix } from "./support.js"

const signingKeysAddCurrentRetireList = Effect.gen(function* () {
  const store = yield* RelayStore
  // Later than anything earlier tests created, so these keys are the newest.
  yield* TestClock.adjust("1000 days")
  const k1 = {
    kid: `k1-${suffix()}`,
    algorithm: "HS256",
    material: Redacted.make(randomBytes(32).toString("hex"))
  }
  const k2 = {
    kid: `k2-${suffix()}`,
    algorithm: "HS256",
    material: Redacted.make(randomBytes(32).toString("hex"))
  }

  const added1 = yield* store.addSigningKey(k1)
  assert.strictEqual(added1.kid, k1.kid)
  assert.strictEqual(Redacted.value(added1.material), Redacted.value(k1.material))
  assert.isUndefined(added1.retiredAt)
  assert.strictEqual(some(yield* store.currentSigningKey).kid, k1.kid)

  yield* TestClock.adjust("1 second")
  const added2 = yield* store.addSigningKey(k2)
  assert.isTrue(added2.createdAt > added1.createdAt)
  const current = some(yield* store.currentSigningKey)
  assert.strictEqual(current.kid, k2.kid)
  assert.strictEqual(Redacted.value(current.material), Redacted.value(k2.material))

  const duplicate = yield* failure(store.addSigningKey({ ...k1, material: Redacted.make("other") }), "SigningKeyExists")
  assert.notInclude(duplicate.message, Redacted.value(k1.material))
  assert.strictEqual(
    Redacted.value((yield* store.listSigningKeys).find((k) => k.kid === k1.kid)!.material),
    Redacted.value(k1.material)
  )

  yield* TestClock.adjust("1 second")
  yield* store.retireSigningKey(k2.kid)
  assert.strictEqual(some(yield* store.currentSigningKey).kid, k1.kid)
  const retired = (yield* store.listSigningKeys).find((k) => k.kid === k2.kid)
  assert.isDefined(retired?.retiredAt)
  yield* store.retireSigningKey(k2.kid)
  assert.strictEqual((yield* store.listSigningKeys).find((k) => k.kid === k2.kid)?.retiredAt, retired?.retiredAt)

  const listed = (yield* store.listSigningKeys).filter((k) => k.kid === k1.kid || k.kid === k2.kid)
  assert.deepStrictEqual(
    listed.map((k) => k.kid),
    [k1.kid, k2.kid]
  )
  yield* failure(store.retireSigningKey(`missing-${suffix()}`), "SigningKeyNotFound")
  yield* store.retireSigningKey(k1.kid)
  assert.isFalse(Option.exists(yield* store.currentSigningKey, (k) => k.kid === k1.kid || k.kid === k2.kid))
})

/** A new link for `machine`, created at `createdAt` (ms), expiring at `expiresAt` when given. */
const newLink = (
  machine: { readonly id: MachineId; readonly workspaceId: WorkspaceId; readonly hostname: string },
  createdAt: number,
  expiresAt?: number
) => ({
  id: `sl_${randomBytes(12).toString("hex")}`,
  workspaceId: machine.workspaceId,
  machineId: machine.id,
  machineHostname: machine.hostname,
  creator: "ck_live_abcd",
  createdAt,
  keyGeneration: 1,
  ...(expiresAt === undefined ? {} : { expiresAt })
})

/** Every write to an unknown link fails with `ShareLinkNotFound` (its uses are skipped and named); reading it is `None`. */
const unknownLinkFailures = Effect.gen(function* () {
  const store = yield* RelayStore
  const missing = `sl_${randomBytes(12).toString("hex")}`
  assert.isTrue(Option.isNone(yield* store.getShareLink(missing)))
  yield* failure(store.revokeShareLink(missing, 1, "x"), "ShareLinkNotFound")
  assert.deepStrictEqual(
    yield* store.recordShareUses([
      { linkId: missing, at: 1, detail: "x" },
      { linkId: missing, at: 2, detail: "y" }
    ]),
    [missing]
  )
  yield* failure(store.addShareEvent(missing, { kind: "denied", detail: "x", at: 1 }), "ShareLinkNotFound")
  yield* failure(store.markShareExpired(missing, { detail: "x", at: 1 }), "ShareLinkNotFound")
})

const shareLinksCreateGetListUse = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = (yield* store.createWorkspace(freshName("shares"))).workspace
  const other = (yield* store.createWorkspace(freshName("shares-other"))).workspace
  assert.deepStrictEqual(yield* store.getWorkspaceById(ws.id), ws)
  yield* failure(store.getWorkspaceById(WorkspaceId.make(`ws_missing_${suffix()}`)), "WorkspaceNotFound")
  const m1 = yield* store.registerMachine(registration(ws.id))
  const m2 = yield* store.registerMachine(registration(ws.id))
  const a = newLink(m1, 1_000, 3_601_000)
  const created = yield* store.createShareLink(a, "created by ck_live_abcd")
  assert.strictEqual(created.id, a.id)
  assert.strictEqual(created.machineHostname, m1.hostname)
  assert.strictEqual(created.expiresAt, 3_601_000)
  assert.strictEqual(created.useCount, 0)
  assert.isUndefined(created.revokedAt)
  assert.isUndefined(created.lastUsedAt)
  assert.strictEqual(created.keyGeneration, 1)
  assert.deepStrictEqual(
    created.events.map((e) => [e.kind, e.detail, e.at]),
    [["created", "created by ck_live_abcd", 1_000]]
  )
  assert.deepStrictEqual(some(yield* store.getShareLink(a.id)), created)
  yield* failure(store.createShareLink(a, "again"), "ShareLinkExists")

  const b = newLink(m2, 2_000)
  const forever = yield* store.createShareLink(b, "never expires")
  assert.isUndefined(forever.expiresAt)
  assert.deepStrictEqual(
    (yield* store.listShareLinks(ws.id)).links.map((l) => l.id),
    [a.id, b.id]
  )
  assert.deepStrictEqual(
    (yield* store.listShareLinks(ws.id, m2.id)).links.map((l) => l.id),
    [b.id]
  )
  assert.deepStrictEqual(yield* store.listShareLinks(other.id), { links: [] })

  // Uses come in batches: counted per link, in order (ties in time keep it), an unknown link's skipped and named.
  const unknown = `sl_${randomBytes(12).toString("hex")}`
  assert.deepStrictEqual(yield* store.recordShareUses([{ linkId: a.id, at: 5_000, detail: "exec uptime" }]), [])
  assert.deepStrictEqual(
    yield* store.recordShareUses([
      { linkId: b.id, at: 5_500, detail: "exec id" },
      { linkId: a.id, at: 6_000, detail: "attach" },
      { linkId: unknown, at: 6_000, detail: "exec ls" },
      { linkId: b.id, at: 5_500, detail: "exec whoami" }
    ]),
    [unknown]
  )
  assert.deepStrictEqual(yield* store.recordShareUses([]), [])
  yield* store.addShareEvent(a.id, { kind: "denied", detail: "machine offline", at: 7_000 })
  const used = some(yield* store.getShareLink(a.id))
  assert.strictEqual(used.useCount, 2)
  assert.strictEqual(used.lastUsedAt, 6_000)
  const usedB = some(yield* store.getShareLink(b.id))
  assert.strictEqual(usedB.useCount, 2)
  assert.strictEqual(usedB.lastUsedAt, 5_500)
  assert.deepStrictEqual(
    usedB.events.map((e) => [e.kind, e.detail]),
    [
      ["created", "never expires"],
      ["used", "exec id"],
      ["used", "exec whoami"]
    ]
  )
  assert.isTrue(Option.isNone(yield* store.getShareLink(unknown)))

  // `expired` once, however often (and at whatever time) it is noticed; events come back in time order.
  assert.isTrue(yield* store.markShareExpired(a.id, { detail: "expired", at: 3_601_000 }))
  assert.isFalse(yield* store.markShareExpired(a.id, { detail: "expired again", at: 3_601_000 }))
  const revoked = yield* store.revokeShareLink(a.id, 9_000_000, "revoked")
  assert.strictEqual(revoked.revokedAt, 9_000_000)
  const again = yield* store.revokeShareLink(a.id, 9_500_000, "revoked twice")
  assert.strictEqual(again.revokedAt, 9_000_000)
  assert.deepStrictEqual(
    again.events.map((e) => [e.kind, e.at]),
    [
      ["created", 1_000],
      ["used", 5_000],
      ["used", 6_000],
      ["denied", 7_000],
      ["expired", 3_601_000],
      ["revoked", 9_000_000]
    ]
  )
  assert.deepStrictEqual(
    (yield* store.listShareLinks(ws.id)).links.find((l) => l.id === a.id),
    again
  )
  // The other link's trail is its own.
  assert.deepStrictEqual(
    some(yield* store.getShareLink(b.id)).events.map((e) => e.kind),
    ["created", "used", "used"]
  )

  yield* unknownLinkFailures
})

/**
 * Pages: every link exactly once across the pages, in listing order (creation time, then id, ties included), each
 * page with the events of its own links, and `next` only while more follow; a machine's pages hold its links only.
 */
const shareLinksPaged = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = (yield* store.createWorkspace(freshName("pages"))).workspace
  const other = (yield* store.createWorkspace(freshName("pages-other"))).workspace
  const m1 = yield* store.registerMachine(registration(ws.id))
  const m2 = yield* store.registerMachine(registration(ws.id))
  const elsewhere = yield* store.registerMachine(registration(other.id))
  yield* store.createShareLink(newLink(elsewhere, 1_500), "another workspace's")
  // Seven links, three created in the same millisecond (ordered by id), created out of order.
  const created: Array<{ readonly id: string; readonly createdAt: number; readonly machineId: string }> = []
  for (const [machine, at] of [
    [m1, 3_000],
    [m2, 1_000],
    [m1, 2_000],
    [m2, 2_000],
    [m1, 2_000],
    [m1, 5_000],
    [m2, 4_000]
  ] as const) {
    const link = yield* store.createShareLink(newLink(machine, at), `at ${at}`)
    yield* store.addShareEvent(link.id, { kind: "used", detail: `use of ${link.id}`, at: at + 1 })
    created.push(link)
  }
  const order = [...created].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

  const readAll = (machineId: MachineId | undefined, limit: number) =>
    Effect.gen(function* () {
      const pages: Array<ReadonlyArray<string>> = []
      let after: { readonly createdAt: number; readonly id: string } | undefined = undefined
      for (;;) {
        const page: ShareLinkPage = yield* store.listShareLinks(ws.id, machineId, {
          limit,
          ...(after === undefined ? {} : { after })
        })
        assert.isAtMost(page.links.length, limit)
        for (const link of page.links)
          assert.deepStrictEqual(
            link.events.map((e) => e.detail),
            [`at ${link.createdAt}`, `use of ${link.id}`]
          )
        pages.push(page.links.map((l) => l.id))
        if (page.next === undefined) return pages
        const last = page.links.at(-1)!
        assert.deepStrictEqual(page.next, { createdAt: last.createdAt, id: last.id })
        after = page.next
      }
    })

  const byThree = yield* readAll(undefined, 3)
  assert.deepStrictEqual(
    byThree.map((p) => p.length),
    [3, 3, 1]
  )
  assert.deepStrictEqual(
    byThree.flat(),
    order.map((l) => l.id)
  )
  // Exactly a page's worth: no empty page after it, no `next` on the last.
  assert.deepStrictEqual(yield* readAll(undefined, 7), [order.map((l) => l.id)])
  assert.deepStrictEqual(
    (yield* readAll(m2.id, 2)).flat(),
    order.filter((l) => l.machineId === m2.id).map((l) => l.id)
  )
  // Past the last link: an empty page without `next`.
  const last = order.at(-1)!
  assert.deepStrictEqual(yield* store.listShareLinks(ws.id, undefined, { limit: 5, after: last }), { links: [] })
  assert.deepStrictEqual(yield* store.listShareLinks(other.id, m1.id, { limit: 5 }), { links: [] })
})

/** The tests of this part, as (title, test) pairs. */
export const tests: ReadonlyArray<ContractTest> = [
  ["signing keys: add, current, retire, list", signingKeysAddCurrentRetireList],
  ["share links: create, get, list, use, events, revoke, expiry once", shareLinksCreateGetListUse],
  ["share links: listed a page at a time, in order, per workspace and machine", shareLinksPaged]
]
