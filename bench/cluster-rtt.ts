/**
 * The relay's own round trip, without a process started on the machine: `n` timed `listSessions` calls (after a
 * warm-up) over one gRPC client. Through the node holding the machine it is one relay hop; through another node it
 * is the forwarding overhead (node → peer port → owning node) on top of it, so the two differ by what forwarding
 * adds. Bundled by `bench/cluster.mjs`, run as `node cluster-rtt.mjs <server> <api key> <machine> <n>`; prints
 * `{ "samples": [ms, …] }`.
 */
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

const [server, apiKey, machine, n] = process.argv.slice(2)
if (server === undefined || apiKey === undefined || machine === undefined || n === undefined) {
  process.stderr.write("usage: cluster-rtt <server> <api key> <machine> <n>\n")
  process.exit(2)
}

const program = Effect.gen(function* () {
  const client = yield* RelayClientGrpc.make({ server, apiKey: Redacted.make(apiKey) })
  for (let i = 0; i < 20; i++) yield* client.listSessions(machine)
  const samples: Array<number> = []
  for (let i = 0; i < Number(n); i++) {
    const t0 = performance.now()
    yield* client.listSessions(machine)
    samples.push(performance.now() - t0)
  }
  return samples
})

Effect.runPromise(Effect.scoped(program)).then(
  (samples) => {
    process.stdout.write(`${JSON.stringify({ samples })}\n`)
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`cluster-rtt: ${String(error)}\n`)
    process.exit(1)
  }
)
