/**
 * The relay under attack (issue 9): each test reproduces one way a principal tried to exhaust what every
 * workspace shares, against one real relay process on 127.0.0.1, and asserts the bound — the relay's RSS stays
 * under `RSS_CEILING_MIB`, the victim workspace's exec p99 stays within `latencyBound` of its idle p99 measured
 * just before, and the attacker gets a clear refusal. Counts are scaled down from the reports where a
 * cap makes the rest redundant (2,000 idle sockets per port instead of 20,000: the per-source cap is 256 on
 * HTTP and 1,024 on gRPC, so every socket past those is already refused). Figures are logged as `[abuse] …`.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import type { SharePage } from "@cmdop/domain/ShareLink"
import * as TerminalClient from "@cmdop/relay/web/TerminalClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { eventually, eventuallySync } from "@cmdop/test-helpers/Eventually"
import { cpuMs, p99Bound, rssMiB, SAMPLES, stage, type Stage, summary, withPeakRss } from "./harness.js"
import type { AgentMessage } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as RawAgent from "./rawAgent.js"
import * as RawClient from "./rawClient.js"
import * as RawHttp from "./rawHttp.js"

/** The relay's resident memory never goes above this during any attack (it idles at ~100–150 MiB). */
const RSS_CEILING_MIB = 400

/**
 * Links minted in the flood before listing: the 2,000 (four full pages of 500, forty default pages). The
 * relay's RSS stays under the ceiling: it used to climb ~100 KiB a link outside the JS heap (2,000 took it from
 * ~120 to ~350–470 MiB) because the SQLite client leaked one native connection per transaction; the store now
 * keeps fixed connections (`store/sqliteConnections.ts` in the relay) and 2,000 mints peak at ~230 MiB.
 * `ABUSE_LINK_FLOOD=<n>` overrides the count (to profile memory with `ABUSE_CPU_PROF`).
 */
const LINK_FLOOD = Number(process.env["ABUSE_LINK_FLOOD"] ?? 2000)

const here = fileURLToPath(new URL(".", import.meta.url))
const replayer = fileURLToPath(new URL("replayer.mjs", import.meta.url))
const flooder = fileURLToPath(new URL("flooder.mjs", import.meta.url))

class StageTag extends Context.Tag("abuse/Stage")<StageTag, Stage>() {}

const report = (what: string, figures: Record<string, unknown>) =>
  Effect.sync(() => console.log(`[abuse] ${what}: ${JSON.stringify(figures)}`))

/**
 * Measures the victim's exec latency idle (just before) and while `attack` runs in the background, with the same
 * number of samples; checks the RSS ceiling and the latency bound, and returns what the attack returned.
 */
const underAttack = <A, E>(name: string, attack: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const s = yield* StageTag
    const idle = summary(yield* s.probe(SAMPLES))
    const cpuBefore = cpuMs(s.pid)
    const startedAt = performance.now()
    const { peakMiB, value } = yield* withPeakRss(
      s.pid,
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(attack)
        const loaded = summary(yield* s.probe(SAMPLES))
        return { loaded, result: yield* Fiber.join(fiber) }
      })
    )
    const relayCpu = Math.round(((cpuMs(s.pid) - cpuBefore) / (performance.now() - startedAt)) * 100)
    yield* report(name, {
      idleP99Ms: idle.p99,
      idleMedianMs: idle.median,
      attackP99Ms: value.loaded.p99,
      attackMedianMs: value.loaded.median,
      samples: SAMPLES,
      isolated: s.isolated,
      peakRssMiB: peakMiB,
      relayCpuPercent: relayCpu
    })
    // Without isolation the same bound applies, and every figure says so (see `NO_ISOLATION` in the harness).
    if (s.isolated === "none")
      yield* report(`${name}: latency measured WITHOUT isolation`, { bound: p99Bound(idle.p99) })
    assert.isBelow(peakMiB, RSS_CEILING_MIB, `${name}: relay RSS`)
    assert.isAtMost(
      value.loaded.p99,
      p99Bound(idle.p99),
      `${name}: victim exec p99 (idle ${idle.p99} ms${s.isolated === "none" ? ", measured without isolation" : ""})`
    )
    return value.result
  })

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

// Real time and real sockets throughout: the layer's tests run without the test services (no TestClock).
layer(Layer.scoped(StageTag, stage), { timeout: "60 seconds", excludeTestServices: true })("abuse", (it) => {
  // What a bulk transfer leaves behind: the buffers it passed through were malloc'd, and without a trim glibc kept
  // 45–80 MiB of them resident for good once they were freed (the relay's idle heap is never collected either).
  // The relay collects the burst's last buffers and gives its heap back once the burst is over (HeapTrim). First,
  // on the fresh relay: after the attacks its heap has grown, and a transfer would fit in it. The bound is the
  // issue's (within 50 MiB of idle after 1 GiB) for half as much: a fresh relay's first bulk transfer leaves 10–30
  // MiB that are not garbage (code compiled for the data path, V8's grown heap); 24 MiB failed on 106 → 133 MiB.
  // Without the trim the relay stayed 60 MiB up, and /metrics below proves the trim gave memory back.
  it.effect("a 512 MiB transfer leaves the relay's memory as it found it, within 40 MiB, seconds after", () =>
    Effect.gen(function* () {
      const s = yield* StageTag
      const before = rssMiB(s.pid)
      let bytes = 0
      const argv = ["head", "-c", String(512 * 1024 * 1024), "/dev/zero"]
      yield* Stream.runForEach(s.victim.exec({ machine: "victim-box", argv, timeoutMs: 120_000 }), (event) =>
        Effect.sync(() => {
          if (event._tag === "Stdout") bytes += event.data.byteLength
        })
      )
      assert.strictEqual(bytes, 512 * 1024 * 1024)
      const atEnd = rssMiB(s.pid)
      const startedWaiting = performance.now()
      const settled = yield* eventuallySync(
        `the relay's RSS back within 40 MiB of ${before} MiB (${atEnd} MiB at the transfer's end)`,
        () => {
          const now = rssMiB(s.pid)
          return now <= before + 40 ? now : undefined
        },
        { timeout: "15 seconds", interval: "250 millis" }
      )
      yield* report("512 MiB transfer", {
        beforeMiB: before,
        atEndMiB: atEnd,
        settledMiB: settled,
        settledAfterMs: Math.round(performance.now() - startedWaiting)
      })
      // Operators see it in /metrics.
      const metrics = yield* promise(async () => (await fetch(`${s.http}/metrics`)).text())
      const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics)?.[1])
      assert.isAtLeast(counter("cmdop_heap_trims_total"), 1, metrics)
      assert.isAbove(counter("cmdop_heap_trim_released_bytes_total"), 16 * 1024 * 1024, metrics)
      assert.isAbove(counter("process_resident_memory_bytes"), 0, metrics)
    })
  )

  it.effect("strangers on /s/<token>/ws are refused before any upgrade; a guest's 2 MiB frame is cut", () =>
    Effect.gen(function* () {
      const s = yield* StageTag
      const forged = `eyJhbGciOiJFUzI1NiJ9.${"A".repeat(400)}.${"B".repeat(86)}`
      // Ten strangers, each from its own address (127.0.0.10–19): each stays within its budget of refusals, so
      // every one is refused by the token check itself (one address replaying is the test after next).
      const strangers = Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
        (i) => RawHttp.upgrade(`${s.http}/s/${forged}/ws`, `127.0.0.${10 + i}`),
        { concurrency: 10 }
      )
      // Ten strangers, again and again for as long as the victim is measured.
      const refusals = yield* underAttack(
        "10 WebSocket strangers",
        Effect.map(Effect.all(Array.from({ length: 10 }, () => strangers)), (rounds) => rounds.flat())
      )
      assert.strictEqual(refusals.length, 100)
      assert.isTrue(refusals.every((r) => r.status === 401 && r.body.includes("share link")))
      const key = yield* TerminalClient.upgradeRefusal(`${s.http}/s/${s.victimKey}/ws?machine=victim-box`)
      assert.strictEqual(key.status, 401, "a workspace key does not open the terminal")
      // A guest with a real link gets a terminal, but a frame over 1 MiB closes it (1009).
      const link = yield* s.victim.createShare("victim-box", 600)
      const page = yield* TerminalClient.connect(`${s.http.replace("http:", "ws:")}/s/${link.token}/ws`)
      yield* page.type(new Uint8Array(2 * 1024 * 1024))
      assert.strictEqual((yield* page.closed).code, 1009)
    }).pipe(Effect.scoped)
  )

  // One retry, for this attack only: it is the one whose cost lands on the CPU the suite shares (4,000 connects,
  // 1,024 HTTP/2 sessions set up), and on CI the neighbouring test files' own bursts landed in its attack window
  // and not in its idle one (idle p99 17 ms, attack 45 against 39; medians equal). The bound is unchanged and both
  // attempts log their figures: a relay that really regressed fails twice. Accepts are already one per turn of the
  // relay's loop (libuv), so there is no burst to spread out on the relay's side.
  it.effect(
    "2,000 idle sockets per port from one source leave health checks and agents' calls working",
    () =>
      Effect.gen(function* () {
        const s = yield* StageTag
        const [httpHost, httpPort] = s.http.replace("http://", "").split(":")
        const [grpcHost, grpcPort] = s.grpc.split(":")
        // The attacker is its own process; its sockets come from other loopback addresses than the victim's calls.
        const flood = Effect.acquireRelease(
          Effect.sync(() => {
            const child = spawn(process.execPath, [
              flooder,
              "2000",
              `${httpHost}:${httpPort}@127.0.0.2`,
              `${grpcHost}:${grpcPort}@127.0.0.3`
            ])
            const latest = { line: "" }
            let buffered = ""
            child.stdout.on("data", (d: Buffer) => {
              buffered += d.toString()
              const lines = buffered.split("\n")
              buffered = lines.pop() ?? ""
              if (lines.length > 0) latest.line = lines[lines.length - 1]!
            })
            return { child, latest }
          }),
          ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
        )
        type Counts = ReadonlyArray<{ readonly open: number; readonly settled: number }>
        const attack = Effect.gen(function* () {
          const { latest } = yield* flood
          // Most sockets have connected (or failed: the kernel's full accept queue makes some retry their SYN for
          // many seconds), and the relay holds no more than the per-source caps of them.
          const [onHttp, onGrpc] = yield* eventuallySync(
            "the relay to refuse sockets over the per-source caps",
            () => {
              const counts = latest.line === "" ? undefined : (JSON.parse(latest.line) as Counts)
              return counts !== undefined &&
                counts[0]!.settled >= 1500 &&
                counts[1]!.settled >= 1500 &&
                counts[0]!.open <= 256 &&
                counts[1]!.open <= 1024
                ? counts
                : undefined
            },
            { timeout: "30 seconds", interval: "100 millis" }
          )
          const health = yield* promise(() => fetch(`${s.http}/healthz`))
          return { held: [onHttp!.open, onGrpc!.open], health: health.status }
        }).pipe(Effect.scoped)
        const { held, health } = yield* underAttack("2,000 idle sockets per port", attack)
        yield* report("idle sockets held open by the relay [http, grpc]", { held })
        assert.strictEqual(health, 200)
        assert.isAtMost(held[0]!, 256)
        assert.isAtMost(held[1]!, 1024)
      }).pipe(Effect.scoped),
    { retry: 1 }
  )

  it.effect("a guest's 20 MiB exec request is refused alone; the machine's stream and sessions live on", () =>
    Effect.gen(function* () {
      const s = yield* StageTag
      const link = yield* s.victim.createShare("victim-box", 600)
      const guest = yield* s.clientWith(link.token)
      const execWith = (bytes: number) =>
        Effect.flip(Stream.runDrain(guest.exec({ machine: "victim-box", argv: ["echo", "x".repeat(bytes)] })))
      const [huge, large] = yield* underAttack(
        "a 20 MiB and a 1 MiB exec request from a guest",
        Effect.all([execWith(20 * 1024 * 1024), execWith(1024 * 1024)])
      )
      // 20 MiB: refused by the transport's 4 MiB message limit before the relay decodes it.
      assert.strictEqual(huge._tag, "RelayError")
      assert.strictEqual(huge._tag === "RelayError" && huge.reason, "ResourceExhausted")
      assert.include(huge.message, "larger than max")
      // 1 MiB: decoded, and refused by the relay's 256 KiB cap on argv + env before anything reaches the agent.
      assert.strictEqual(large._tag, "RelayError")
      assert.include(large.message, "over the relay's limit of 256 KiB")
      // The machine never dropped: its exec works at once, and its agent was not replaced.
      const machines = yield* s.victim.listMachines()
      assert.isTrue(machines.machines.find((m) => m.hostname === "victim-box")?.online)
      const out = yield* Stream.runCollect(s.victim.exec({ machine: "victim-box", argv: ["echo", "still here"] }))
      const stdout = [...out].flatMap((e) => (e._tag === "Stdout" ? [Buffer.from(e.data).toString()] : [])).join("")
      assert.strictEqual(stdout, "still here\n")
    }).pipe(Effect.scoped)
  )

  it.effect(
    "an agent that ignores its flow-control window is cut and told why; its client is told the machine dropped",
    () =>
      Effect.gen(function* () {
        const s = yield* StageTag
        const agent = yield* RawAgent.connect(s.grpc, s.attackerKey, RawAgent.hello("greedy-box"))
        yield* eventuallySync("Welcome", () => (agent.received.length > 0 ? true : undefined))
        const client = yield* RawClient.channel(s.grpc)
        // The client starts a command and then stops reading: nothing is acknowledged from here on.
        const run = RawClient.exec(client, s.attackerKey, {
          kind: {
            $case: "start",
            value: { machine: "greedy-box", argv: ["cat"], shell: false, timeoutMs: 0, stdin: false, env: {}, cwd: "" }
          }
        })
        const open = yield* eventuallySync("SessionOpen", () =>
          agent.received.find((m) => m.kind?.$case === "open")?.kind?.$case === "open"
            ? agent.received.find((m) => m.kind?.$case === "open")
            : undefined
        )
        run.call.pause()
        const sessionId = open.kind?.$case === "open" ? open.kind.value.sessionId : ""
        const chunk = Buffer.alloc(256 * 1024, 120)
        const attack = Effect.gen(function* () {
          // Up to 256 MiB regardless of acknowledgements (the window is 1 MiB), until the relay cuts the stream.
          let offset = 0
          let cut = false
          void agent.ended.then(() => (cut = true))
          for (let i = 0; i < 1024 && !cut; i++) {
            const more = agent.write({
              kind: { $case: "output", value: { sessionId, pipe: 1, data: chunk, offset } }
            })
            offset += chunk.byteLength
            if (!more) yield* promise(() => Promise.race([agent.drained(), agent.ended]))
          }
          return { sent: offset, status: yield* promise(() => agent.ended) }
        })
        const { sent, status } = yield* underAttack("an agent ignoring its window", attack)
        run.call.resume()
        const told = yield* promise(() => run.ended)
        yield* report("window overrun", { sentMiB: Math.round(sent / 1024 / 1024), agentStatus: status.code })
        assert.isBelow(sent, 256 * 1024 * 1024, "the relay cut the agent before it sent everything")
        assert.strictEqual(told.code, grpc.status.UNAVAILABLE)
        assert.include(told.details, "greedy-box disconnected during the session")
        // The agent is told why it was cut (a real agent logs this and shows it as its status's last error).
        assert.strictEqual(status.code, grpc.status.RESOURCE_EXHAUSTED)
        assert.include(status.details, "more output than its flow-control window allows")
      }).pipe(Effect.scoped)
  )

  it.effect("an agent that floods heartbeats is cut and told why; the relay stays responsive", () =>
    Effect.gen(function* () {
      const s = yield* StageTag
      const agent = yield* RawAgent.connect(s.grpc, s.attackerKey, RawAgent.hello("chatty-box"))
      yield* eventuallySync("Welcome", () => (agent.received.length > 0 ? true : undefined))
      // A real agent sends one every `heartbeatSeconds` (whole seconds); this one sends up to 20,000 as fast as it
      // can, each costing the relay a credential check and an answer, until the relay cuts it.
      const beat: AgentMessage = { kind: { $case: "heartbeat", value: { at: Date.now() } } }
      const attack = Effect.gen(function* () {
        let sent = 0
        let cut = false
        void agent.ended.then(() => (cut = true))
        while (!cut && sent < 20_000) {
          sent++
          if (!agent.write(beat)) yield* promise(() => Promise.race([agent.drained(), agent.ended]))
          else if (sent % 1_000 === 0) yield* Effect.yieldNow()
        }
        const notCut = new Promise<{ code: number; details: string }>((resolve) =>
          setTimeout(
            () => resolve({ code: -1, details: "the relay did not cut the agent within 20 s" }),
            20_000
          ).unref()
        )
        return { sent, status: yield* promise(() => Promise.race([agent.ended, notCut])) }
      })
      const { sent, status } = yield* underAttack("an agent flooding heartbeats", attack)
      yield* report("heartbeat flood", { sent, agentStatus: status.code })
      assert.strictEqual(status.code, grpc.status.RESOURCE_EXHAUSTED)
      assert.include(status.details, "heartbeats faster than one a second")
    }).pipe(Effect.scoped)
  )

  // One retry, as for the idle sockets: the 14 MiB still crosses the relay's HTTP/2 session before grpc-js refuses
  // it, and under the whole suite on 2 cores the victim's p99 sat at the bound once (CI, 2026-11-27: idle 16 ms,
  // attack 38 against 37; this test alone, three runs: idle 21–29 ms, attack 17–26 against 47–63). The bound is
  // unchanged and both attempts log their figures: a relay that really regressed fails twice.
  it.effect(
    "a Hello listing 200,000 sessions is refused with RESOURCE_EXHAUSTED",
    () =>
      Effect.gen(function* () {
        const s = yield* StageTag
        const hello = RawAgent.encode(RawAgent.hello("hoarder-box", 200_000))
        const status = yield* underAttack(
          `a Hello with 200,000 sessions (${Math.round(hello.byteLength / 1024 / 1024)} MiB)`,
          Effect.flatMap(RawAgent.connect(s.grpc, s.attackerKey, hello), (agent) => promise(() => agent.ended)).pipe(
            Effect.scoped
          )
        )
        // Over the 4 MiB message limit: refused by the transport before it is decoded.
        assert.strictEqual(status.code, grpc.status.RESOURCE_EXHAUSTED)
        assert.include(status.details, "larger than max")
        // Small enough to decode, but listing more sessions than the cap: refused by the relay with the numbers.
        const many = yield* Effect.flatMap(
          RawAgent.connect(s.grpc, s.attackerKey, RawAgent.hello("hoarder-box", 2_000)),
          (agent) => promise(() => agent.ended)
        ).pipe(Effect.scoped)
        assert.strictEqual(many.code, grpc.status.RESOURCE_EXHAUSTED)
        assert.include(many.details, "2000 live sessions, over the relay's limit of 1024")
      }).pipe(Effect.scoped),
    { retry: 1 }
  )

  // One retry, as for the idle sockets: under the whole suite on this 2-core box, slow that evening, the victim's
  // p99 passed the bound once in five runs (fresh-clone CI, 2026-11-27: idle 21 ms, attack 55 against 47; this
  // test alone, three runs: idle 25–29 ms, attack 21–26). A retry mints a link of its own; the source's throttle
  // only makes fewer replays read. The bound is unchanged and both attempts log their figures: a relay that really
  // regressed fails twice.
  it.effect(
    "1,100 replays of a revoked link from one address: rate-limited unread, audited once, others unaffected",
    () =>
      Effect.gen(function* () {
        const s = yield* StageTag
        const link = yield* s.victim.createShare("victim-box", 600)
        yield* s.victim.revokeShare(link.link.id)
        // The attacker is its own process on its own address, at the reported rate: 1,100 in 10 s (one every 9 ms,
        // up to 20 in flight).
        const replay = yield* underAttack(
          "1,100 replays of a revoked token",
          Effect.async<{ codes: Record<string, number>; details: Record<string, string>; seconds: number }, Error>(
            (resume) => {
              const child = spawn(process.execPath, [replayer, s.grpc, link.token, "1100", "9", "127.0.0.2"], {
                cwd: here
              })
              let out = ""
              child.stdout.on("data", (d) => (out += d))
              child.on("close", (code) =>
                code === 0
                  ? resume(Effect.succeed(JSON.parse(out)))
                  : resume(Effect.fail(new Error(`replayer: ${code}`)))
              )
              return Effect.sync(() => child.kill("SIGKILL"))
            }
          )
        )
        const unauthenticated = replay.codes[String(grpc.status.UNAUTHENTICATED)] ?? 0
        const limited = replay.codes[String(grpc.status.RESOURCE_EXHAUSTED)] ?? 0
        const listed = (yield* s.victim.listShares("victim-box", { limit: 500 })).links.find(
          (l) => l.id === link.link.id
        )!
        const denied = listed.events.filter((e) => e.kind === "denied").length
        yield* report("revoked-token replays", {
          unauthenticated,
          rateLimited: limited,
          seconds: replay.seconds,
          deniedRows: denied
        })
        // Every call refused; past the source's burst (30, then 5 a second) unread, with the reason.
        assert.strictEqual(unauthenticated + limited, 1100, JSON.stringify(replay.codes))
        assert.include(replay.details[String(grpc.status.UNAUTHENTICATED)], "revoked")
        assert.include(
          replay.details[String(grpc.status.RESOURCE_EXHAUSTED)],
          "too many refused credentials from 127.0.0.2"
        )
        assert.isAtMost(unauthenticated, 30 + Math.ceil(replay.seconds * 5) + 5)
        assert.isAtMost(denied, 1, "one audit row per link per minute")
        assert.isAtMost(replay.seconds, 15)
        // Another address (the victim's own calls above ran from 127.0.0.1 throughout) and another workspace are
        // heard at once: the attacker's own key, from the test's address.
        assert.strictEqual((yield* s.attacker.whoami).workspaceName, "attacker")
      }).pipe(Effect.scoped),
    { retry: 1 }
  )

  it.effect(
    "a revoked link replayed on /s/<token>/ws and /s/<token> from one address: rate-limited unread, others unaffected",
    () =>
      Effect.gen(function* () {
        const s = yield* StageTag
        const link = yield* s.victim.createShare("victim-box", 600)
        yield* s.victim.revokeShare(link.link.id)
        // 240 attempts from 127.0.0.5, alternating the terminal's upgrade and the page, one every 9 ms (the gRPC
        // replay's rate), up to 10 in flight: the source's budget is 30 refusals, then 5 a second.
        const REPLAYS = 240
        const started = performance.now()
        const answers = yield* underAttack(
          `${REPLAYS} replays of a revoked link on the browser paths`,
          Effect.forEach(
            Array.from({ length: REPLAYS }, (_, i) => i),
            (i) =>
              Effect.zipRight(
                Effect.sleep(Math.max(0, started + i * 9 - performance.now())),
                i % 2 === 0
                  ? RawHttp.upgrade(`${s.http}/s/${link.token}/ws`, "127.0.0.5")
                  : RawHttp.get(`${s.http}/s/${link.token}`, "127.0.0.5")
              ),
            { concurrency: 10 }
          )
        )
        const seconds = (performance.now() - started) / 1000
        const read = answers.filter((a) => a.status === 401 || a.status === 410)
        const limited = answers.filter((a) => a.status === 429)
        yield* report("revoked-link replays on /s/<token>/ws and /s/<token>", {
          refusedAfterReading: read.length,
          rateLimited: limited.length,
          seconds: Math.round(seconds * 10) / 10
        })
        assert.strictEqual(read.length + limited.length, REPLAYS, JSON.stringify(answers.map((a) => a.status)))
        // Read: the revoked link's own refusal (401 on the socket, 410 "revoked" on the page).
        assert.isTrue(
          read.every((a) => a.body.includes("revoked")),
          read[0]?.body
        )
        // Past the burst, unread, with the reason and when to come back.
        assert.isAtMost(read.length, 30 + Math.ceil(seconds * 5) + 5)
        assert.isAbove(limited.length, REPLAYS / 2)
        assert.isTrue(limited.every((a) => a.body.includes("too many refused credentials from 127.0.0.5")))
        assert.isTrue(limited.filter((a) => a.body.startsWith("<!doctype")).every((a) => a.retryAfter !== undefined))
        // Other addresses are served throughout: the victim's calls from 127.0.0.1 (measured above), and a valid
        // link's page from 127.0.0.6. (The replaying address earns its budget back at 5 a second once it stops.)
        const valid = yield* s.victim.createShare("victim-box", 600)
        const page = yield* RawHttp.get(`${s.http}/s/${valid.token}`, "127.0.0.6")
        assert.strictEqual(page.status, 200)
      }).pipe(Effect.scoped)
  )

  // One retry, as for the idle sockets: on this 2-core box the flood's own cost sits near the bound (quiet CI:
  // idle p99 26 ms, attack 66 against 57, the relay at 108% CPU; other runs 46 against 59). The bound is unchanged,
  // both attempts log their figures, and what a mint costs the relay is the open work behind it.
  it.effect(
    "2,000 links minted in a burst: share list stays one bounded page, every link reachable by cursor",
    () =>
      Effect.gen(function* () {
        const s = yield* StageTag
        // A machine of its own per attempt, so a retry counts only its own links.
        const box = `flood-box-${Math.random().toString(36).slice(2, 8)}`
        const agent = yield* RawAgent.connect(s.grpc, s.attackerKey, RawAgent.hello(box))
        yield* eventuallySync("Welcome", () => (agent.received.length > 0 ? true : undefined))
        const minted = yield* underAttack(
          `${LINK_FLOOD} share links minted, 16 at a time`,
          Effect.forEach(Array.from({ length: LINK_FLOOD }), () => s.attacker.createShare(box, 3600), {
            concurrency: 16
          })
        )
        assert.strictEqual(minted.length, LINK_FLOOD)
        // The CLI lists one page (the relay's default, 50) and says how to go on; the answer stays small and fast.
        const started = performance.now()
        const json = yield* s.cli(s.attackerKey, ["share", "list", box, "--json"])
        const listMs = Math.round(performance.now() - started)
        assert.strictEqual(json.code, 0, json.stderr)
        const page = JSON.parse(json.stdout) as { links: Array<{ id: string }>; next: string | null }
        assert.strictEqual(page.links.length, 50)
        assert.isString(page.next)
        assert.isBelow(json.stdout.length, 128 * 1024)
        const human = yield* s.cli(s.attackerKey, ["share", "list", box, "--limit", "20"])
        assert.strictEqual(human.code, 0, human.stderr)
        const lines = human.stdout.trim().split("\n")
        assert.strictEqual(lines.length, 22, "a header, 20 links and the more: line")
        assert.match(lines.at(-1)!, new RegExp(`^more: cmdop connect share list ${box} --limit 20 --after \\S+$`))
        // Every link is reachable, once, a page at a time.
        const seen = new Set<string>()
        let after: string | undefined = undefined
        let pages = 0
        do {
          const next: SharePage = yield* s.attacker.listShares(box, {
            limit: 500,
            ...(after === undefined ? {} : { after })
          })
          next.links.forEach((l) => seen.add(l.id))
          after = next.next
          pages += 1
        } while (after !== undefined)
        yield* report("share list after a flood of links", { listMs, jsonBytes: json.stdout.length, pages })
        assert.strictEqual(pages, Math.ceil(LINK_FLOOD / 500))
        assert.isTrue(minted.every((m) => seen.has(m.link.id)))
        assert.strictEqual(seen.size, LINK_FLOOD)
      }).pipe(Effect.scoped),
    // Minting at most half the time (a rest after each mint), 2,000 links take ~30 s here.
    { retry: 1, timeout: 120_000 }
  )

  it.effect("streams that never send their first message are closed; the 65th stream of a principal is refused", () =>
    Effect.gen(function* () {
      const s = yield* StageTag
      const client = yield* RawClient.channel(s.grpc)
      const silent = yield* underAttack(
        "64 silent exec streams",
        Effect.gen(function* () {
          // From the streams' opening (not before the victim's idle figures, which take seconds of their own).
          const opened = performance.now()
          const streams = Array.from({ length: 64 }, () => RawClient.exec(client, s.attackerKey))
          // The slots are taken as each stream is authenticated: wait until one more is refused.
          const extra = yield* eventually(
            "the 65th stream to be refused",
            promise(async () => {
              const probe = RawClient.exec(client, s.attackerKey)
              const status = await Promise.race([probe.ended, new Promise<undefined>((r) => setTimeout(r, 200))])
              probe.call.cancel()
              return status?.code === grpc.status.RESOURCE_EXHAUSTED ? status : undefined
            }),
            { timeout: "5 seconds" }
          )
          return { streams, extra, opened }
        })
      )
      assert.include(silent.extra.details, "64 exec and terminal streams open, the relay's limit")
      const ends = yield* promise(() => Promise.all(silent.streams.map((x) => x.ended)))
      const after = Math.max(...silent.streams.map((x) => x.endedAt ?? 0)) - silent.opened
      yield* report("first-message timeout", { streams: ends.length, closedAfterMs: Math.round(after) })
      assert.isTrue(ends.every((e) => e.code === grpc.status.INVALID_ARGUMENT && e.details.includes("no ExecStart")))
      assert.isBelow(after, 15_000)
      assert.isBelow(rssMiB(s.pid), RSS_CEILING_MIB)
    }).pipe(Effect.scoped)
  )
})

describe("abuse suite bounds", () => {
  it("2× the idle p99, plus a floor of a few ms for timer resolution and stray pauses", () => {
    assert.deepStrictEqual([p99Bound(3), p99Bound(100)], [16, 210])
  })
})
