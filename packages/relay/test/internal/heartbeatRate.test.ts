import { assert, describe, it } from "@effect/vitest"
import * as HeartbeatRate from "../../src/internal/heartbeatRate.js"
import type { Connection } from "../../src/internal/sessions.js"

/** An agent's heartbeats: a burst of 10, then one a second; faster is a flood. */
describe("heartbeatRate", () => {
  const conn = () => ({}) as Connection

  it("a burst of 10 at once, then none until time passes", () => {
    const c = conn()
    for (let i = 0; i < HeartbeatRate.BURST; i++) assert.isTrue(HeartbeatRate.allow(c, 1_000), `heartbeat ${i + 1}`)
    assert.isFalse(HeartbeatRate.allow(c, 1_000))
    assert.isTrue(HeartbeatRate.allow(c, 2_000), "one more a second later")
    assert.isFalse(HeartbeatRate.allow(c, 2_500))
  })

  it("a real agent's pace (one every few seconds, even every second) is never refused", () => {
    const c = conn()
    for (let t = 0; t < 600_000; t += 1_000) assert.isTrue(HeartbeatRate.allow(c, t))
  })

  it("each connection has its own bucket", () => {
    const a = conn()
    const b = conn()
    for (let i = 0; i < HeartbeatRate.BURST; i++) HeartbeatRate.allow(a, 0)
    assert.isFalse(HeartbeatRate.allow(a, 0))
    assert.isTrue(HeartbeatRate.allow(b, 0))
  })
})
