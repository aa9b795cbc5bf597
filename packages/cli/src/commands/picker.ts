/**
 * `cmdop connect` with no host in a terminal: a fuzzy picker over the workspace's machines (online first, the
 * ones you attached to recently on top), then a confirm line with name, hostname, state and last heartbeat. Both
 * are @effect/cli prompts on the `Terminal` service, so tests drive them with a scripted terminal.
 */
import { formatAge } from "@cmdop/domain/Age"
import type { Machine } from "@cmdop/domain/Machine"
import * as Prompt from "@effect/cli/Prompt"
import * as Terminal from "@effect/platform/Terminal"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError } from "../CliError.js"
import type * as GlobalOptions from "../GlobalOptions.js"
import * as Recent from "../Recent.js"
import * as Output from "../Output.js"
import * as attach from "./attach.js"

/** Subsequence match score (lower is better), or undefined when `query` does not match. */
export const fuzzyScore = (query: string, text: string): number | undefined => {
  const q = query.toLowerCase()
  const t = text.toLowerCase()
  if (q === "") return 0
  const direct = t.indexOf(q)
  if (direct !== -1) return direct
  let at = -1
  let gaps = 0
  for (const ch of q) {
    const next = t.indexOf(ch, at + 1)
    if (next === -1) return undefined
    gaps += next - at - 1
    at = next
  }
  return 100 + gaps
}

/** Orders machines for the picker: matches first by score, then online, then recently used, then by name. */
export const rank = (
  machines: ReadonlyArray<Machine>,
  query: string,
  recent: ReadonlyArray<string>
): ReadonlyArray<Machine> =>
  machines
    .map((m) => ({
      m,
      score: Math.min(fuzzyScore(query, m.hostname) ?? Infinity, fuzzyScore(query, m.name) ?? Infinity)
    }))
    .filter((x) => x.score !== Infinity)
    .sort((a, b) => {
      const ra = recent.indexOf(a.m.id)
      const rb = recent.indexOf(b.m.id)
      return (
        a.score - b.score ||
        Number(b.m.online) - Number(a.m.online) ||
        (ra === -1 ? Infinity : ra) - (rb === -1 ? Infinity : rb) ||
        a.m.hostname.localeCompare(b.m.hostname)
      )
    })
    .map((x) => x.m)

const describe = (m: Machine, now: number) =>
  Output.printable(
    `${m.name} (${m.hostname}, ${m.online ? "online" : "offline"}, last heartbeat ${
      m.lastHeartbeatAt === undefined ? "never" : `${formatAge(now - m.lastHeartbeatAt)} ago`
    })`
  )

/** The prompt loop's actions (@effect/cli defines the type, not the constructors). */
const Action = Data.taggedEnum<Prompt.Prompt.ActionDefinition>()

interface PickState {
  readonly query: string
  readonly index: number
}

const visible = (machines: ReadonlyArray<Machine>, recent: ReadonlyArray<string>, query: string) =>
  rank(machines, query, recent).slice(0, 10)

/** How many lines a frame takes: the query line and the list (or its "no match" line). */
const frameLines = (machines: ReadonlyArray<Machine>, recent: ReadonlyArray<string>, state: PickState) =>
  1 + Math.max(1, visible(machines, recent, state.query).length)

/** Moves from the end of a frame of `lines` lines back to its start and erases it. */
const erase = (lines: number) => `\r${lines > 1 ? `\x1b[${lines - 1}A` : ""}\x1b[J`

/**
 * The machine picker as a prompt: type to filter (fuzzy), arrows to move, Enter to choose, Esc to cancel
 * (`undefined`); Ctrl-C or Ctrl-D quit the prompt (`QuitException`). The terminal's raw mode and key listener
 * are released however the prompt ends, interruption included.
 */
export const pickPrompt = (
  machines: ReadonlyArray<Machine>,
  recent: ReadonlyArray<string>,
  now: number
): Prompt.Prompt<Machine | undefined> =>
  Prompt.custom<PickState, Machine | undefined>(
    { query: "", index: 0 },
    {
      render: (state, action) => {
        if (action._tag === "Beep") return Effect.succeed("\x07")
        if (action._tag === "Submit")
          return Effect.succeed(
            `pick a machine: ${action.value === undefined ? "(cancelled)" : action.value.hostname}\r\n`
          )
        const list = visible(machines, recent, state.query)
        const lines = [
          `pick a machine: ${state.query}`,
          ...list.map((m, i) => `${i === state.index ? "> " : "  "}${describe(m, now)}`)
        ]
        if (list.length === 0) lines.push("  (no match)")
        return Effect.succeed(lines.join("\r\n"))
      },
      process: (input, state) => {
        const list = visible(machines, recent, state.query)
        const next = (query: string, index: number) => {
          const count = visible(machines, recent, query).length
          return Effect.succeed(Action.NextFrame({ state: { query, index: Math.max(0, Math.min(index, count - 1)) } }))
        }
        switch (input.key.name) {
          case "return":
          case "enter":
            return Effect.succeed(
              list[state.index] === undefined ? Action.Beep() : Action.Submit({ value: list[state.index] })
            )
          case "escape":
            return Effect.succeed(Action.Submit({ value: undefined }))
          case "up":
            return next(state.query, state.index - 1)
          case "down":
            return next(state.query, state.index + 1)
          case "backspace":
            return next(state.query.slice(0, -1), state.index)
        }
        const typed = Option.getOrElse(input.input, () => "")
        if (!input.key.ctrl && !input.key.meta && /^[\x20-\x7e]+$/.test(typed)) return next(state.query + typed, 0)
        return Effect.succeed(Action.Beep())
      },
      clear: (state) => Effect.succeed(erase(frameLines(machines, recent, state)))
    }
  )

/** Moves from the end of `text` (as the terminal wrapped it) back to its start and erases it. */
const eraseWrapped = (text: string) =>
  Effect.map(
    Effect.flatMap(Terminal.Terminal, (t) => t.columns),
    (columns) => erase(Math.max(1, Math.ceil(text.length / Math.max(1, columns))))
  )

/**
 * "connect to …? [Y/n]": Enter or `y` means yes (with `defaultYes: false`, "[y/N]": Enter means no), `n` or Esc no, and the line ends with the answer given; Ctrl-C
 * or Ctrl-D quit the prompt (`QuitException`).
 */
export const confirmPrompt = (
  question: string,
  options: { readonly defaultYes?: boolean } = {}
): Prompt.Prompt<boolean> => {
  const yes = options.defaultYes ?? true
  const line = `${question} ${yes ? "[Y/n]" : "[y/N]"} `
  return Prompt.custom<void, boolean>(undefined, {
    render: (_, action) =>
      Effect.succeed(
        action._tag === "Beep" ? "\x07" : action._tag === "Submit" ? `${line}${action.value ? "yes" : "no"}\r\n` : line
      ),
    process: (input) => {
      const typed = Option.getOrElse(input.input, () => "").toLowerCase()
      if (input.key.name === "return" || input.key.name === "enter")
        return Effect.succeed(Action.Submit({ value: yes }))
      if (typed === "y") return Effect.succeed(Action.Submit({ value: true }))
      if (input.key.name === "escape" || typed === "n") return Effect.succeed(Action.Submit({ value: false }))
      return Effect.succeed(Action.Beep())
    },
    clear: () => eraseWrapped(line)
  })
}

/** A quit prompt (Ctrl-C, Ctrl-D) is a cancel. */
const orCancelled = <A>(prompt: Prompt.Prompt<A>) =>
  Effect.catchTag(prompt, "QuitException", () => Effect.succeed(undefined))

export const pickAndAttach = (g: GlobalOptions.Globals, options: attach.AttachOptions = {}) =>
  Effect.gen(function* () {
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    const { machines, now } = yield* Remote.withClient(g, (client) => client.listMachines())
    if (machines.length === 0)
      return yield* new CliError({
        message: 'no machines in this workspace yet; on a machine, run "cmdop agent register" then "cmdop agent start"'
      })
    const recent = yield* Recent.load
    const chosen = yield* orCancelled(pickPrompt(machines, recent, now))
    if (chosen === undefined) return yield* new CliError({ message: "cancelled", exitCode: 130 })
    if ((yield* orCancelled(confirmPrompt(`connect to ${describe(chosen, now)}?`))) !== true)
      return yield* new CliError({ message: "cancelled", exitCode: 130 })
    return yield* attach.attach(g, chosen.id, options)
  })
