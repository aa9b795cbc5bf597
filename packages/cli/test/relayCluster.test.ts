/**
 * The cluster flags of `relay serve`: off unless asked for, derived defaults, and one clear usage error (exit 2)
 * naming the flag and the fix for each bad combination.
 */
import { clusterFlags, type ClusterArgs } from "@cmdop/cli/commands/relayCluster"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as os from "node:os"

const none: ClusterArgs = {
  nodeId: Option.none(),
  peerAddress: Option.none(),
  peerPort: Option.none(),
  advertiseAddress: Option.none(),
  clusterSecret: Option.none()
}
const secret = Option.some(Redacted.make("0123456789abcdef0123"))
const serve = { db: true, host: "10.1.2.3", grpcPort: 50051 }

const refused = (args: ClusterArgs, options = serve) =>
  Effect.map(Effect.flip(clusterFlags(args, options)), (e) => {
    assert.strictEqual(e.exitCode, 2)
    return e.message
  })

describe("relay serve cluster flags", () => {
  it.effect("no cluster flag: single-node, as before", () =>
    Effect.gen(function* () {
      assert.isTrue(Option.isNone(yield* clusterFlags(none, { ...serve, db: false })))
    })
  )

  it.effect("defaults: host name as node id, grpc port + 1, the listen interface (or host name) as peer address", () =>
    Effect.gen(function* () {
      const flags = Option.getOrThrow(yield* clusterFlags({ ...none, clusterSecret: secret }, serve))
      assert.strictEqual(flags.nodeId, os.hostname().split(".")[0])
      assert.strictEqual(flags.peerPort, 50052)
      assert.strictEqual(flags.peerAddress, "10.1.2.3:50052")
      const any = Option.getOrThrow(
        yield* clusterFlags(
          { ...none, nodeId: Option.some("n2"), clusterSecret: secret },
          { ...serve, host: "0.0.0.0" }
        )
      )
      assert.strictEqual(any.peerAddress, `${os.hostname()}:50052`)
      const explicit = Option.getOrThrow(
        yield* clusterFlags(
          {
            nodeId: Option.some("n3"),
            peerAddress: Option.some("[fd00::3]:7000"),
            peerPort: Option.some(7000),
            advertiseAddress: Option.some("relay-3.example.com:443"),
            clusterSecret: secret
          },
          serve
        )
      )
      assert.deepStrictEqual(
        [explicit.nodeId, explicit.peerAddress, explicit.peerPort, explicit.clientAddress],
        ["n3", "[fd00::3]:7000", 7000, "relay-3.example.com:443"]
      )
      assert.isUndefined(flags.clientAddress)
    })
  )

  it.effect("each bad combination is one usage error that says what to do", () =>
    Effect.gen(function* () {
      assert.include(yield* refused({ ...none, nodeId: Option.some("n1") }, { ...serve, db: false }), "needs --db")
      assert.include(yield* refused({ ...none, nodeId: Option.some("n1") }), "CMDOP_CLUSTER_SECRET")
      assert.include(
        yield* refused({ ...none, clusterSecret: Option.some(Redacted.make("short")) }),
        "--cluster-secret is too short"
      )
      assert.include(
        yield* refused({ ...none, nodeId: Option.some("no spaces"), clusterSecret: secret }),
        "invalid --node-id"
      )
      assert.include(
        yield* refused({ ...none, clusterSecret: secret, peerPort: Option.some(70000) }),
        "invalid --peer-port"
      )
      assert.include(
        yield* refused({ ...none, clusterSecret: secret, peerAddress: Option.some("nohostport") }),
        "invalid --peer-address"
      )
      assert.include(
        yield* refused({ ...none, clusterSecret: secret, advertiseAddress: Option.some("relay-2.example.com") }),
        "invalid --advertise-address"
      )
      assert.include(yield* refused({ ...none, peerPort: Option.some(7000) }, { ...serve, db: false }), "cluster mode")
      assert.include(
        yield* refused({ ...none, advertiseAddress: Option.some("relay-2:50051") }, { ...serve, db: false }),
        "--advertise-address are for cluster mode"
      )
      // The secret never shows in a message.
      const message = yield* refused({ ...none, clusterSecret: Option.some(Redacted.make("hunter2")) })
      assert.notInclude(message, "hunter2")
    })
  )
})
