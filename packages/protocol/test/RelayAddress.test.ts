/**
 * Relay addresses as users write them: one node however it is spelled (`https://h:p`, `grpcs://h:p`, `h:p`), and a
 * cluster's hint (bare `host:port`) spelled the way the agent reached the node that sent it.
 */
import * as RelayAddress from "@cmdop/protocol/RelayAddress"
import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"

const hostPort = FastCheck.tuple(
  FastCheck.oneof(
    FastCheck.domain(),
    FastCheck.ipV4(),
    FastCheck.ipV6().map((ip) => `[${ip}]`)
  ),
  FastCheck.integer({ min: 1, max: 65_535 })
).map(([host, port]) => `${host}:${port}`)

describe("RelayAddress", () => {
  it("nodeKey: the spellings of one node are one key; other ports or hosts are others", () => {
    const key = RelayAddress.nodeKey
    assert.strictEqual(key("https://127.0.0.1:51401"), "127.0.0.1:51401")
    assert.strictEqual(key("127.0.0.1:51401"), "127.0.0.1:51401")
    assert.strictEqual(key("grpcs://Relay-1.Example.com:50051/"), "relay-1.example.com:50051")
    assert.strictEqual(key("https://relay-1.example.com"), key("relay-1.example.com:443"))
    assert.strictEqual(key(" http://relay-1 "), "relay-1:80")
    assert.notStrictEqual(key("https://relay-1:50051"), key("relay-1:50052"))
    // The scheme in any case: HTTPS:// is TLS, as https:// is.
    assert.deepStrictEqual(RelayAddress.parse("HTTPS://Relay-1:50051"), { address: "Relay-1:50051", tls: {} })
    assert.deepStrictEqual(RelayAddress.parse("HTTP://relay-1"), { address: "relay-1:80" })
    assert.strictEqual(RelayAddress.spelledLike("10.0.0.2:50051", "HTTPS://10.0.0.1:50051"), "https://10.0.0.2:50051")
  })

  it.prop("nodeKey: any scheme in front of host:port names the same node", [hostPort], ([address]) => {
    for (const scheme of ["https://", "grpcs://", "http://", "grpc://"])
      assert.strictEqual(RelayAddress.nodeKey(`${scheme}${address}`), RelayAddress.nodeKey(address))
  })

  it("spelledLike: a hint takes the TLS scheme of the address it came from, and stays plaintext otherwise", () => {
    const like = RelayAddress.spelledLike
    assert.strictEqual(like("10.0.0.2:50051", "https://10.0.0.1:50051"), "https://10.0.0.2:50051")
    assert.strictEqual(like("10.0.0.2:50051", "grpcs://relay-1"), "grpcs://10.0.0.2:50051")
    assert.strictEqual(like("10.0.0.2:50051", "10.0.0.1:50051"), "10.0.0.2:50051")
    assert.strictEqual(like("10.0.0.2:50051", "http://10.0.0.1:50051"), "10.0.0.2:50051")
    // A hint with a scheme of its own keeps it.
    assert.strictEqual(like("https://relay-2:443", "10.0.0.1:50051"), "https://relay-2:443")
    assert.strictEqual(like("grpc://relay-2:50051", "https://relay-1"), "grpc://relay-2:50051")
  })

  it.prop(
    "spelledLike: the hint is dialed with TLS exactly when the address it came from is",
    [hostPort, hostPort],
    ([hint, reached]) => {
      for (const [spelled, tls] of [
        [`https://${reached}`, true],
        [`grpcs://${reached}`, true],
        [reached, false],
        [`http://${reached}`, false]
      ] as const) {
        const target = RelayAddress.parse(RelayAddress.spelledLike(hint, spelled), "CA")
        assert.strictEqual(target.tls !== undefined, tls)
        if (tls) assert.deepStrictEqual(target.tls, { caPem: "CA" })
        assert.strictEqual(target.address, hint)
      }
    }
  )
})
