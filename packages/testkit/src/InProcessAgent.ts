/**
 * An agent attached to a `RelayCore` in the same process: the real session engine (`AgentEngine`) on one side, the
 * real relay core on the other, and queues in between instead of gRPC. Commands run on the `ProcessRunner` in the
 * context: `ProcessRunner.layer` for real processes, `ProcessRunnerMemory.layer` for a world with none.
 */
import * as AgentEngine from "@cmdop/agent/AgentEngine"
import * as PtySessions from "@cmdop/agent/PtySessions"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { RelayCore } from "@cmdop/relay/RelayCore"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { randomBytes, randomUUID } from "node:crypto"

export interface Options {
  readonly hostname: string
  readonly name?: string
  readonly window?: number
  /** Default 10 s. A test that moves the TestClock by hours sets it longer: each wakeup is a step of the clock. */
  readonly heartbeatInterval?: Duration.DurationInput
  /** The machine's gate (`Gate.ts`); none: every session is admitted. */
  readonly gate?: AgentEngine.Options["gate"]
}

/** A fresh machine identity for `hostname`. */
export const identity = (options: Options): AgentLink.MachineIdentity => ({
  machineId: randomUUID(),
  machineSecret: Redacted.make(randomBytes(32).toString("base64url")),
  hostname: options.hostname,
  name: options.name ?? options.hostname,
  os: `${process.platform}`,
  agentVersion: "test"
})

/**
 * Connects an agent with `credential` and serves its sessions until the returned fiber is interrupted (or the
 * scope closes). Resolves once the relay has welcomed it. Its exec sessions run on the context's `ProcessRunner`.
 */
export const attach = (credential: string, who: AgentLink.MachineIdentity, options: Options) =>
  Effect.gen(function* () {
    const core = yield* RelayCore
    const caller = yield* core.authenticate(Redacted.make(credential))
    // Both sides speak the domain's agent link: queues in between, no codec.
    const toRelay = yield* Queue.unbounded<AgentLink.AgentMessage>()
    yield* Queue.offer(toRelay, {
      _tag: "Hello",
      identity: who,
      window: options.window ?? 1 << 20,
      ptySessions: []
    })
    const fromRelay = yield* Stream.toPull(core.connectAgent(caller, Stream.fromQueue(toRelay)))
    const first = yield* fromRelay
    const welcome = [...first][0]
    if (welcome?._tag !== "Welcome") return yield* Effect.dieMessage("expected Welcome")
    const rest = Stream.concat(Stream.fromIterable([...first].slice(1)), Stream.fromPull(Effect.succeed(fromRelay)))
    const ptySessions = yield* PtySessions.make()
    const fiber = yield* AgentEngine.serve(
      { incoming: rest, send: (m) => Queue.offer(toRelay, m) },
      {
        window: welcome.window,
        heartbeatInterval: options.heartbeatInterval ?? "10 seconds",
        relaySilenceTimeout: "1 hour",
        ptySessions,
        ...(options.gate === undefined ? {} : { gate: options.gate })
      }
    ).pipe(Effect.forkScoped)
    // Stopping ends the engine and the agent's side of the stream, so the relay sees the connection close.
    return { fiber, machineId: who.machineId, stop: Effect.zipRight(Fiber.interrupt(fiber), Queue.shutdown(toRelay)) }
  })
