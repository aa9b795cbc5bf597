/**
 * The ledger of guest sessions ended per share link: counts add up, each is taken once, and a count older than a
 * minute is not reported (a revocation's question comes right after it).
 */
import { assert, describe, it } from "@effect/vitest"
import { GuestEndLedger } from "../../src/internal/guestEndLedger.js"

describe("GuestEndLedger", () => {
  it("adds the sessions ended per link, and answers each count once", () => {
    const ledger = new GuestEndLedger()
    ledger.add("a", 1, 1_000)
    ledger.add("a", 2, 1_500)
    ledger.add("b", 1, 1_500)
    ledger.add("c", 0, 1_500)
    assert.strictEqual(ledger.take("a", 2_000), 3)
    assert.strictEqual(ledger.take("a", 2_000), 0)
    assert.strictEqual(ledger.take("b", 2_000), 1)
    assert.strictEqual(ledger.take("c", 2_000), 0)
  })

  it("does not report a count from more than a minute ago", () => {
    const ledger = new GuestEndLedger()
    ledger.add("a", 4, 0)
    assert.strictEqual(ledger.take("a", 60_000), 0)
    ledger.add("a", 1, 0)
    ledger.add("a", 1, 61_000)
    assert.strictEqual(ledger.take("a", 61_500), 1)
  })

  it("stays bounded: with 10,000 links listed, the oldest go first", () => {
    const ledger = new GuestEndLedger()
    for (let i = 0; i < 10_000; i++) ledger.add(`l${i}`, 1, 1_000)
    ledger.add("newest", 1, 2_000)
    assert.strictEqual(ledger.take("l0", 2_000), 0)
    assert.strictEqual(ledger.take("l1", 2_000), 1)
    assert.strictEqual(ledger.take("newest", 2_000), 1)
  })
})
