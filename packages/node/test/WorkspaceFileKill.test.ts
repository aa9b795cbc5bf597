/**
 * The workspace file under fire: rounds of 20 concurrent writer processes (each doing what `cmdop connect workspace
 * add` does: a fresh `WorkspaceStoreLive` and one update), with the lock holder `kill -9`'d at a random point of
 * each round and, every other round, a random writer killed as well. Every success a writer reported must be in
 * the file afterwards, the file must parse, the next command must not be blocked, and no temp file (they hold API
 * keys) may be left.
 *
 * Writer processes are started once and given one `add` per round (a killed one is replaced by a fresh process,
 * started ahead of time), so the run pays for ~50 Node start-ups rather than 420 and stays short on a busy 2-core
 * machine.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Workspace from "@cmdop/domain/Workspace"
import * as WorkspaceStoreLive from "@cmdop/node/WorkspaceStoreLive"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Bundle from "./fixtures/bundle.js"
import * as Processes from "./fixtures/processes.js"

const ROUNDS = 20
const WRITERS = 20

/** The pid the current lock holder wrote into the lock file, if any. */
const holderPid = (lock: string): number | undefined => {
  try {
    const pid = Number.parseInt(fs.readFileSync(lock, "utf8"), 10)
    return Number.isInteger(pid) ? pid : undefined
  } catch {
    return undefined
  }
}

/** One round's writers and what each has said so far. */
interface Round {
  readonly writers: ReadonlyArray<Processes.Writer>
  /** Indices of writers in the order they said `locked` (their update function runs under the lock). */
  readonly locked: Array<number>
  readonly answered: Array<boolean>
}

/** Sends each writer its `add`; resolves each with its answer (`ok …`, `fail …`, or undefined when it died). */
const startRound = (writers: ReadonlyArray<Processes.Writer>, names: ReadonlyArray<string>) => {
  const round: Round = { writers, locked: [], answered: writers.map(() => false) }
  const answers = writers.map(async (w, i) => {
    for (;;) {
      const line = await w.nextLine()
      if (line === `locked ${names[i]}`) round.locked.push(i)
      else {
        round.answered[i] = true
        return line
      }
    }
  })
  writers.forEach((w, i) => w.send(`add ${names[i]}`))
  return { round, answers: Promise.all(answers) }
}

/**
 * Kills, with SIGKILL, the `nth` distinct lock holder of the round, or the next one still working when that one
 * has already answered; `undefined` when every writer answered first. A holder is seen either in the lock file
 * (the pid it wrote right after locking) or by its `locked` line, and killed 0–3 ms later: at a random point of
 * its critical section (reading, writing the temp file, renaming) or just after it.
 */
const killNthHolder = (lock: string, round: Round, nth: number) =>
  Effect.gen(function* () {
    const seen = new Set<number>()
    let cursor = 0
    while (round.answered.some((a) => !a)) {
      const pid = holderPid(lock)
      const holders = [...round.locked.slice(cursor), ...round.writers.flatMap((w, i) => (w.pid === pid ? [i] : []))]
      cursor = round.locked.length
      for (const i of holders) {
        seen.add(round.writers[i]!.pid)
        if (seen.size < nth || round.answered[i]) continue
        yield* Effect.sleep(yield* Random.nextIntBetween(0, 4))
        round.writers[i]!.child.kill("SIGKILL")
        return round.writers[i]!.pid
      }
      yield* Effect.sleep(1)
    }
    return undefined
  })

/** Kills a random writer at a random time of the round (while it waits, holds the lock, writes or answers). */
const killAnyWriter = (round: Round) =>
  Effect.gen(function* () {
    yield* Effect.sleep(yield* Random.nextIntBetween(0, 200))
    const waiting = round.writers.filter((w, i) => !round.answered[i] && !w.exited())
    if (waiting.length === 0) return undefined
    const writer = waiting[yield* Random.nextIntBetween(0, waiting.length)]!
    writer.child.kill("SIGKILL")
    return writer.pid
  })

/** A writer process that has said `ready`; every one started is in `all`, so the test kills them all at the end. */
const ready = (script: string, file: string, all: Array<Processes.Writer>) =>
  Effect.gen(function* () {
    const writer = Processes.start(script, ["serve", file])
    all.push(writer)
    const line = yield* Processes.nextLine(writer)
    if (line !== "ready") assert.fail(`writer did not start: ${(yield* Processes.ended(writer)).stderr}`)
    return writer
  })

layer(Bundle.layer, { excludeTestServices: true, timeout: "60 seconds" })("the workspace file under kill -9", (it) => {
  it.scoped(
    `${ROUNDS} rounds of ${WRITERS} concurrent writers, lock holder killed each round: no reported success is lost`,
    () =>
      Effect.gen(function* () {
        const script = yield* Bundle.StoreWriter
        const home = yield* Effect.acquireRelease(
          Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cmdop-kill-"))),
          (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
        )
        const dir = path.join(home, ".cmdop")
        const file = path.join(dir, "ssh_workspaces.json")
        const lock = file + ".lock"
        const all: Array<Processes.Writer> = []
        yield* Effect.addFinalizer(() => Effect.sync(() => all.forEach((w) => w.child.kill("SIGKILL"))))
        const spawn = ready(script, file, all)
        let pool = yield* Effect.all(
          Array.from({ length: WRITERS }, () => spawn),
          { concurrency: "unbounded" }
        )
        // Replacements start while the rounds run, so no round waits for a Node start-up.
        const spares: Array<Fiber.RuntimeFiber<Processes.Writer>> = []
        const refill = Effect.suspend(() =>
          Effect.forEach(Array.from({ length: 3 - spares.length }), () =>
            Effect.tap(Effect.fork(spawn), (f) => Effect.sync(() => spares.push(f)))
          )
        )
        const replacement = Effect.flatMap(
          Effect.suspend(() => Fiber.join(spares.shift()!)),
          (w) => Effect.as(refill, w)
        )
        yield* refill
        const succeeded: Array<string> = []
        const killed: Array<number> = []
        let killedBeforeAnswering = 0
        let holdersKilled = 0
        const started = Date.now()
        for (let round = 0; round < ROUNDS; round++) {
          // Leftovers of the worst kind from a previous crash: an empty lock file, a garbage one, a dead writer's
          // temp file holding a key.
          if (round % 4 === 1) fs.writeFileSync(lock, "")
          if (round % 4 === 2) fs.writeFileSync(lock, "\u0000garbage")
          if (round % 4 === 3)
            fs.writeFileSync(path.join(dir, `.ssh_workspaces.json.${killed[killed.length - 1]}.x.tmp`), "ck_live_x")
          const names = pool.map((_, i) => `r${round}-w${i}`)
          const writers = pool
          const { answers, round: state } = startRound(writers, names)
          const nth = yield* Random.nextIntBetween(1, 12)
          const holderKill = yield* Effect.fork(killNthHolder(lock, state, nth))
          const anyKill = yield* Effect.fork(round % 2 === 0 ? killAnyWriter(state) : Effect.succeed(undefined))
          const replies = yield* Effect.promise(() => answers)
          const holderVictim = yield* Fiber.join(holderKill)
          const victims = [holderVictim, yield* Fiber.join(anyKill)].filter((p) => p !== undefined)
          killed.push(...victims)
          if (holderVictim !== undefined) holdersKilled++
          for (let i = 0; i < writers.length; i++) {
            if (replies[i] === `ok ${names[i]}`) {
              succeeded.push(names[i]!)
              continue
            }
            // Only a killed writer may fail to answer; every other one must land.
            killedBeforeAnswering++
            assert.include(victims, writers[i]!.pid, `writer ${names[i]}: ${replies[i]}`)
            const end = yield* Processes.ended(writers[i]!)
            assert.strictEqual(end.signal, "SIGKILL")
          }
          // The dead are replaced by fresh processes.
          pool = yield* Effect.forEach(writers, (w) => (victims.includes(w.pid) ? replacement : Effect.succeed(w)))
          // The next command is not blocked, and it cleans up after the dead.
          const next = startRound([pool[0]!], [`r${round}-next`])
          assert.deepStrictEqual(yield* Effect.promise(() => next.answers), [`ok r${round}-next`])
          succeeded.push(`r${round}-next`)
          assert.deepStrictEqual(fs.readdirSync(dir), ["ssh_workspaces.json"], `round ${round}`)
          assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
        }
        const elapsed = Date.now() - started
        const store = yield* WorkspaceStoreLive.make(file).pipe(Effect.provide(NodeFileSystem.layer))
        const stored = new Set(Workspace.names(yield* store.load))
        const lost = succeeded.filter((name) => !stored.has(name))
        console.info(
          `workspace file kill test: ${ROUNDS} rounds x ${WRITERS} writers, ${killed.length} killed ` +
            `(${holdersKilled} holding the lock, ${killedBeforeAnswering} before answering), ` +
            `${succeeded.length} successes counted, ${lost.length} lost, ${elapsed} ms`
        )
        assert.deepStrictEqual(lost, [])
        assert.strictEqual(holdersKilled, ROUNDS, "a lock holder was killed in every round")
        assert.strictEqual(succeeded.length + killedBeforeAnswering, ROUNDS * (WRITERS + 1))
      }),
    { timeout: 120_000 }
  )
})
