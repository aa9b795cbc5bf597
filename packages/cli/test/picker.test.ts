/**
 * The machine picker and its confirm line, driven through a scripted `Terminal`: what the user types goes in as
 * key presses, what the prompt shows is recorded.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Terminal from "@effect/platform/Terminal"
import { Machine, MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import { confirmPrompt, pickPrompt } from "../src/commands/picker.js"

const press = (name: string, input?: string, ctrl = false): Terminal.UserInput => ({
  input: Option.fromNullable(input),
  key: { name, ctrl, meta: false, shift: false }
})
const type = (text: string) => [...text].map((c) => press(c, c))
const ENTER = press("return", "\r")
const ESC = press("escape", "\x1b")
const DOWN = press("down")

/**
 * A terminal that hands the prompt `keys` and then ends its input, as the real one does on Ctrl-C. `released`
 * completes when the prompt gives the terminal back (its input scope closes).
 */
const scripted = (keys: ReadonlyArray<Terminal.UserInput>) =>
  Effect.gen(function* () {
    const shown: Array<string> = []
    const released = yield* Deferred.make<void>()
    const terminal = Terminal.Terminal.of({
      columns: Effect.succeed(100),
      rows: Effect.succeed(30),
      isTTY: Effect.succeed(true),
      readInput: Effect.gen(function* () {
        yield* Effect.addFinalizer(() => Deferred.succeed(released, undefined))
        const mailbox = yield* Mailbox.make<Terminal.UserInput>()
        yield* mailbox.offerAll(keys)
        if (keys.length > 0) yield* mailbox.end
        return mailbox
      }),
      readLine: Effect.succeed(""),
      display: (text) => Effect.sync(() => void shown.push(text))
    })
    return { terminal, released, shown: () => shown.join("") }
  })

const machine = (n: number, hostname: string, online: boolean) =>
  Machine.make({
    id: MachineId.make(`00000000-0000-4000-8000-00000000000${n}`),
    workspaceId: WorkspaceId.make("ws_1"),
    hostname,
    name: hostname,
    os: "linux",
    agentVersion: "test",
    online,
    lastHeartbeatAt: 0
  })
const machines = [machine(1, "alpha-web", true), machine(2, "beta-db", true), machine(3, "gamma-old", false)]

const run = <A>(prompt: Effect.Effect<A, Terminal.QuitException, Terminal.Terminal>, keys: Array<Terminal.UserInput>) =>
  Effect.gen(function* () {
    const t = yield* scripted(keys)
    const result = yield* Effect.either(Effect.provideService(prompt, Terminal.Terminal, t.terminal))
    return { result, shown: t.shown() }
  })

describe("the machine picker", () => {
  it.effect("typing filters fuzzily and Enter picks the first match", () =>
    Effect.gen(function* () {
      const { result, shown } = yield* run(pickPrompt(machines, [], 60_000), [...type("bdb"), ENTER])
      assert.deepStrictEqual(result, Either.right(machines[1]))
      assert.include(shown, "pick a machine: bdb")
      assert.include(shown, "> beta-db (beta-db, online, last heartbeat 1m ago)")
      assert.include(shown, "pick a machine: beta-db\r\n")
    })
  )

  it.effect("online machines come first, recent ones on top; arrows move the selection", () =>
    Effect.gen(function* () {
      const recent = [machines[1]!.id]
      const first = yield* run(pickPrompt(machines, recent, 0), [ENTER])
      assert.strictEqual(first.result._tag === "Right" && first.result.right?.hostname, "beta-db")
      const second = yield* run(pickPrompt(machines, recent, 0), [DOWN, ENTER])
      assert.strictEqual(second.result._tag === "Right" && second.result.right?.hostname, "alpha-web")
      const last = yield* run(pickPrompt(machines, recent, 0), [DOWN, DOWN, DOWN, DOWN, ENTER])
      assert.strictEqual(last.result._tag === "Right" && last.result.right?.hostname, "gamma-old")
    })
  )

  it.effect("no match: Enter beeps and chooses nothing; Esc cancels", () =>
    Effect.gen(function* () {
      const { result, shown } = yield* run(pickPrompt(machines, [], 0), [...type("zzz"), ENTER, ESC])
      assert.deepStrictEqual(result, Either.right(undefined))
      assert.include(shown, "(no match)")
      assert.include(shown, "\x07")
      assert.include(shown, "pick a machine: (cancelled)")
    })
  )

  it.effect("Ctrl-C quits the prompt", () =>
    Effect.gen(function* () {
      const { result } = yield* run(pickPrompt(machines, [], 0), [press("c", "\x03", true)])
      assert.isTrue(result._tag === "Left" && result.left._tag === "QuitException")
    })
  )

  it.effect("interrupting the picker gives the terminal back", () =>
    Effect.gen(function* () {
      const t = yield* scripted([])
      const fiber = yield* Effect.fork(
        Effect.provideService(pickPrompt(machines, [], 0), Terminal.Terminal, t.terminal)
      )
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(t.released)
      assert.include(t.shown(), "pick a machine: ")
    })
  )
})

describe("the confirm line", () => {
  it.effect("Enter means yes, and it says yes", () =>
    Effect.gen(function* () {
      const { result, shown } = yield* run(confirmPrompt("connect to beta-db?"), [ENTER])
      assert.deepStrictEqual(result, Either.right(true))
      assert.include(shown, "connect to beta-db? [Y/n] yes\r\n")
      assert.notInclude(shown, "no")
    })
  )

  it.effect("n means no, and it says no; y means yes", () =>
    Effect.gen(function* () {
      const no = yield* run(confirmPrompt("connect to beta-db?"), [press("n", "n")])
      assert.deepStrictEqual(no.result, Either.right(false))
      assert.include(no.shown, "connect to beta-db? [Y/n] no\r\n")
      const yes = yield* run(confirmPrompt("connect to beta-db?"), [press("y", "y")])
      assert.deepStrictEqual(yes.result, Either.right(true))
    })
  )

  it.effect("anything else beeps and keeps asking; Esc means no", () =>
    Effect.gen(function* () {
      const { result, shown } = yield* run(confirmPrompt("connect?"), [press("x", "x"), ESC])
      assert.deepStrictEqual(result, Either.right(false))
      assert.include(shown, "\x07")
      assert.include(shown, "connect? [Y/n] no\r\n")
    })
  )

  it.effect("interrupting the confirm line gives the terminal back", () =>
    Effect.gen(function* () {
      const t = yield* scripted([])
      const fiber = yield* Effect.fork(Effect.provideService(confirmPrompt("connect?"), Terminal.Terminal, t.terminal))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(t.released)
    })
  )
})
