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
})
