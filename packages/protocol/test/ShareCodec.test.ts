import { ShareLink } from "@cmdop/domain/ShareLink"
import * as Wire from "@cmdop/protocol/generated/cmdop/connect/v1/client"
import * as ShareCodec from "@cmdop/protocol/ShareCodec"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Schemas from "./clientSchemas.js"
import { plain, viaBytes } from "./plain.js"

const bytes = viaBytes(Wire.ShareLink)

const links = Arbitrary.make(Schemas.ShareLink).map(Schemas.toShareLink)

describe("ShareCodec", () => {
  it.prop(
    "every share link round-trips through protobuf bytes, with its url and token",
    [links, FastCheck.string(), FastCheck.string()],
    ([link, url, token]) => {
      const wire = bytes(ShareCodec.toWire(link, { url, token }))
      assert.strictEqual(wire.url, url)
      assert.strictEqual(wire.token, token)
      const back = ShareCodec.fromWire(wire, link.workspaceId)
      assert.instanceOf(back, ShareLink)
      assert.deepStrictEqual(plain(back), plain(link))
    }
  )

  it("an event of an unknown kind is dropped", () => {
    const wire = ShareCodec.toWire(new ShareLink({ ...base, events: [] }))
    const back = ShareCodec.fromWire({ ...wire, events: [{ kind: "teleported", detail: "", at: 1 }] }, "ws")
    assert.deepStrictEqual(back.events, [])
  })
})

const base = {
  id: "sh_1",
  workspaceId: "ws",
  machineId: "m",
  machineHostname: "h",
  creator: "ck_live_abc",
  createdAt: 1,
  useCount: 0
}
