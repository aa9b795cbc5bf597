/**
 * Cluster mode with real processes: two `cmdop relay serve` nodes on one real PostgreSQL (a fresh schema per
 * run), an agent daemon connected to node 2, a guest on node 2. Listings on either node show the same machine
 * state (from the shared routing table); a share link revoked through node 1, and a workspace key rotated by the
 * admin command on the host, end the guest's live session on node 2 within a second (through LISTEN/NOTIFY, not
 * the 5-second sweeps), and the rotation ends a key holder's command there too; a node started with a live node's
 * id is refused; a node stopped cleanly gives up its machines at once.
 */
import { eventually } from "@cmdop/test-helpers/Eventually"
import { freePort } from "@cmdop/test-helpers/FreePort"
import { freshPgSchema } from "@cmdop/test-helpers/Postgres"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"

const SECRET = randomBytes(24).toString("hex")

/** A relay node: its own HOME, ports, and node id. */
const node = (url: string, nodeId: string) =>
  Effect.gen(function* () {
    const home = yield* TempHome.make(`cmdop-cluster-${nodeId}-`)
    const [grpc, http, peer] = [yield* freePort, yield* freePort, yield* freePort]
    const daemon = yield* Processes.daemon(
      home,
      [
        "relay",
        "serve",
        "--db",
        url,
        "--node-id",
        nodeId,
        "--grpc-port",
        String(grpc),
        "--http-port",
        String(http),
        "--peer-port",
        String(peer)
      ],
      /relay serving/,
      { env: { CMDOP_CLUSTER_SECRET: SECRET }, timeoutMs: 60_000 }
    )
    return { server: `127.0.0.1:${grpc}`, http: `http://127.0.0.1:${http}`, daemon }
  })

const metric = (http: string, name: string) =>
  Effect.promise(async () => {
    const text = await (await fetch(`${http}/metrics`)).text()
    const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    return line === undefined ? undefined : Number(line.split(" ").at(-1))
  })

describe("relay cluster mode, two nodes on one PostgreSQL", () => {
  it.scopedLive(
    "same listing on every node; a revocation anywhere ends a guest's session on another node within 1 s",
    () =>
      Effect.gen(function* () {
        const { url } = yield* freshPgSchema("cmdop_cluster_e2e")
        const n1 = yield* node(url, "n1")
        const n2 = yield* node(url, "n2")
        const host = yield* TempHome.make("cmdop-cluster-admin-")
        const admin = (args: ReadonlyArray<string>) => Processes.run(host, ["relay", ...args, "--db", url])
        const created = yield* admin(["workspace", "create", "acme", "--json"])
        assert.strictEqual(created.code, 0, created.stderr)
        const key = JSON.parse(created.stdout).api_key as string

        // Both nodes see each other.
        const health = yield* Effect.promise(async () => (await fetch(`${n1.http}/healthz`)).json())
        assert.strictEqual(health.status, "ok")
        yield* eventually(
          "node 1 to see node 2 as a peer",
          Effect.promise(async () => {
            const h = (await (await fetch(`${n1.http}/healthz`)).json()) as { peers: Array<{ nodeId: string }> }
            return h.peers.some((p) => p.nodeId === "n2") ? true : undefined
          }),
          { timeout: "20 seconds", interval: "200 millis" }
        )

        // An agent on node 2.
        const agentHome = yield* TempHome.make("cmdop-cluster-agent-")
        const reg = yield* Processes.run(agentHome, [
          "agent",
          "register",
          "--hostname",
          "box",
          "-k",
          key,
          "-s",
          n2.server
        ])
        assert.strictEqual(reg.code, 0, reg.stderr)
        yield* Processes.daemon(
          agentHome,
          ["agent", "start", "--foreground", "-k", key, "-s", n2.server],
          /connected to relay/
        )

        const client = yield* TempHome.make("cmdop-cluster-client-")
        const cli = (server: string, args: ReadonlyArray<string>, credential = key) =>
          Processes.run(client, ["connect", ...args], { env: { CMDOP_API_KEY: credential, CMDOP_SERVER: server } })
        const online = (server: string) =>
          Effect.map(cli(server, ["--list", "--json"]), (r) => {
            assert.strictEqual(r.code, 0, r.stderr)
            return (JSON.parse(r.stdout).machines as Array<{ hostname: string; online: boolean }>).map(
              (m) => `${m.hostname}:${m.online}`
            )
          })
        // Listing and liveness come from the shared store: node 1 holds no stream of box, and shows it online.
        assert.deepStrictEqual(yield* online(n1.server), ["box:true"])
        assert.deepStrictEqual(yield* online(n2.server), ["box:true"])
        // The agent's handshake is over: nothing is left in node 2's line of handshakes (`handshakeGate.ts`).
        assert.strictEqual(yield* metric(n2.http, "cmdop_agent_handshakes"), 0)

        /** A guest running `sleep 60` on box through node 2, live when this returns. */
        const guestSession = (token: string) =>
          Effect.gen(function* () {
            const guestHome = yield* TempHome.make("cmdop-cluster-guest-")
            const running = yield* Effect.fork(
              Processes.run(guestHome, [
                "connect",
                "--api-key",
                token,
                "--server",
                n2.server,
                "exec",
                "box",
                "--",
                "sleep",
                "60"
              ])
            )
            yield* eventually(
              "the guest's session on node 2",
              Effect.map(metric(n2.http, "cmdop_sessions_active"), (n) => (n !== undefined && n >= 1 ? n : undefined)),
              { timeout: "20 seconds", interval: "50 millis" }
            )
            return running
          })
        const mint = Effect.gen(function* () {
          const minted = yield* cli(n2.server, ["share", "box", "--json"])
          assert.strictEqual(minted.code, 0, minted.stderr)
          return JSON.parse(minted.stdout).token as string
        })

        // 1. Revoked through node 1: node 1 holds none of its sessions; node 2 ends the guest's at once.
        const token = yield* mint
        const running = yield* guestSession(token)
        const id = JSON.parse((yield* cli(n1.server, ["share", "list", "--json"])).stdout).links[0].id as string
        const revoked = yield* cli(n1.server, ["share", "revoke", id])
        assert.strictEqual(revoked.code, 0, revoked.stderr)
        const revokedAt = Date.now()
        // Node 1 asks node 2, which holds the machine, how many guest sessions it ended: the one.
        assert.include(revoked.stdout, "ended 1 guest session on the machine")
        const ended = yield* running.await.pipe(Effect.flatten)
        const revokeMs = Date.now() - revokedAt
        assert.strictEqual(ended.code, 255, ended.stdout)
        assert.include(ended.stderr, "revoked")
        assert.isBelow(revokeMs, 1000, `the guest's session ended ${revokeMs} ms after the revocation on node 1`)
        // The same in JSON (revoked again: nothing changes, and the session is not counted twice).
        const again = yield* cli(n1.server, ["share", "revoke", id, "--json"])
        assert.strictEqual(again.code, 0, again.stderr)
        const answer = JSON.parse(again.stdout)
        assert.strictEqual(answer.already_revoked, true)
        assert.strictEqual(answer.sessions_ended, 0)
        assert.isUndefined(answer.sessions_end_on_other_node)

        // 2. The workspace key rotated by the admin command on the host (no node involved): the same, via the trigger.
        const second = yield* mint
        const running2 = yield* guestSession(second)
        // And a key holder's command on node 2 (the credential sweep, without accounts, runs every 5 s only).
        const holder = yield* Effect.fork(cli(n2.server, ["exec", "box", "--", "sleep", "60"]))
        yield* eventually(
          "the key holder's session on node 2",
          Effect.map(metric(n2.http, "cmdop_sessions_active"), (n) => (n !== undefined && n >= 2 ? n : undefined)),
          { timeout: "20 seconds", interval: "50 millis" }
        )
        const rotated = yield* admin(["key", "rotate", "acme", "--json"])
        assert.strictEqual(rotated.code, 0, rotated.stderr)
        const rotatedAt = Date.now()
        const ended2 = yield* running2.await.pipe(Effect.flatten)
        const rotateMs = Date.now() - rotatedAt
        const holderEnded = yield* holder.await.pipe(Effect.flatten)
        const holderMs = Date.now() - rotatedAt
        assert.strictEqual(holderEnded.code, 255, holderEnded.stdout)
        assert.isBelow(holderMs, 1000, `the key holder's session ended ${holderMs} ms after the key rotation`)
        assert.strictEqual(ended2.code, 255, ended2.stdout)
        assert.include(ended2.stderr, "rotated")
        assert.isBelow(rotateMs, 1000, `the guest's session ended ${rotateMs} ms after the key rotation`)
        yield* Effect.logInfo(
          `cluster revocation reached node 2 in ${revokeMs} ms, key rotation in ${rotateMs} ms (guest), ${holderMs} ms (key holder)`
        )

        // A third node started by mistake with node 1's id (another peer address) is refused, and changes nothing.
        const [grpc3, http3, peer3] = [yield* freePort, yield* freePort, yield* freePort]
        const duplicate = yield* Processes.run(
          yield* TempHome.make("cmdop-cluster-dup-"),
          [
            "relay",
            "serve",
            "--db",
            url,
            "--node-id",
            "n1",
            "--grpc-port",
            String(grpc3),
            "--http-port",
            String(http3),
            "--peer-port",
            String(peer3)
          ],
          { env: { CMDOP_CLUSTER_SECRET: SECRET }, timeoutMs: 60_000 }
        )
        assert.notStrictEqual(duplicate.code, 0)
        assert.match(duplicate.stderr, /node id n1 is already in use by a live relay node at \S+:\d+/)
        assert.include(duplicate.stderr, "give every node its own --node-id")
        const stillOne = (yield* Effect.promise(async () => (await fetch(`${n2.http}/healthz`)).json())) as {
          peers: Array<{ nodeId: string; peerAddress: string }>
        }
        assert.deepStrictEqual(
          stillOne.peers.map((p) => p.nodeId),
          ["n1"]
        )
        assert.notInclude(stillOne.peers[0]!.peerAddress, `:${peer3}`)

        // 3. Node 2 stops cleanly: it gives up its lease and routes, so node 1 shows box offline at once.
        const newKey = JSON.parse(rotated.stdout).api_key as string
        yield* n2.daemon.stop("SIGTERM")
        const after = yield* cli(n1.server, ["--list", "--json"], newKey)
        assert.strictEqual(after.code, 0, after.stderr)
        assert.deepStrictEqual(
          (JSON.parse(after.stdout).machines as Array<{ hostname: string; online: boolean }>).map(
            (m) => `${m.hostname}:${m.online}`
          ),
          ["box:false"]
        )
      }),
    180_000
  )
})
