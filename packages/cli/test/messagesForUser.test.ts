/**
 * `Messages.forUser`: the CLI's last word on an error. A gRPC server that has none of the relay's services (a
 * cluster node's peer port given as --server) answers UNIMPLEMENTED; that is said as a wrong port first, not as
 * "versions differ?" alone.
 */
import { RelayError } from "@cmdop/domain/RelayError"
import { assert, describe, it } from "@effect/vitest"
import * as Messages from "../src/Messages.js"

describe("Messages.forUser", () => {
  it("UNIMPLEMENTED from the server: not a relay's gRPC port (a peer port?), or an older relay", () => {
    const error = new RelayError({
      reason: "Protocol",
      server: "127.0.0.1:50052",
      detail: "The server does not implement the method /cmdop.connect.v1.ClientService/ListMachines"
    })
    assert.strictEqual(
      Messages.forUser(error.message),
      "relay 127.0.0.1:50052 does not serve /cmdop.connect.v1.ClientService/ListMachines: it is not a relay's gRPC port (a cluster node's peer port? the gRPC port is 50051 unless set), or a relay older than this CLI: check --server"
    )
    // Other protocol errors keep their words.
    const other = new RelayError({ reason: "Protocol", server: "r:1", detail: "no machine in the answer" })
    assert.strictEqual(Messages.forUser(other.message), other.message)
  })

  it("a TLS certificate this machine does not trust: the advice fits the cause", () => {
    const said = (detail: string) =>
      Messages.forUser(
        new RelayError({ reason: "Unavailable", server: "127.0.0.1:47401", detail, unreachable: true }).message
      )
    const before = process.env.CMDOP_TLS_CA
    try {
      delete process.env.CMDOP_TLS_CA
      assert.match(said("14 UNAVAILABLE: unable to verify the first certificate"), /: set CMDOP_TLS_CA to the PEM file/)
      const expired = said("14 UNAVAILABLE: No connection established. Last error: certificate has expired")
      assert.match(expired, /\(certificate has expired\): renew it on the relay/)
      assert.notInclude(expired, "set CMDOP_TLS_CA")
      const name = said(
        "14 UNAVAILABLE: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list"
      )
      assert.match(name, /: it does not name 127\.0\.0\.1; use a name it lists in --server/)
      assert.notInclude(name, "set CMDOP_TLS_CA")
      process.env.CMDOP_TLS_CA = "other.pem"
      assert.match(
        said("14 UNAVAILABLE: unable to verify the first certificate"),
        /: CMDOP_TLS_CA=other\.pem is not the CA that signed it; /
      )
    } finally {
      if (before === undefined) delete process.env.CMDOP_TLS_CA
      else process.env.CMDOP_TLS_CA = before
    }
  })
})
