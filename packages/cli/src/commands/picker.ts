/**
 * `cmdop connect` with no host in a terminal: a fuzzy picker over the workspace's machines (online first, the
 * ones you attached to recently on top), then a confirm line with name, hostname, state and last heartbeat.
 */
import { formatAge } from "@cmdop/domain/Age"
import type { Machine } from "@cmdop/domain/Machine"
import * as Effect from "effect/Effect"
import { CliError } from "../CliError.js"
import type * as GlobalOptions from "../GlobalOptions.js"
import * as Recent from "../Recent.js"
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
  `${m.name} (${m.hostname}, ${m.online ? "online" : "offline"}, last heartbeat ${
    m.lastHeartbeatAt === undefined ? "never" : `${formatAge(now - m.lastHeartbeatAt)} ago`
  })`

/** Runs the picker UI on the terminal; resolves with the chosen machine, or undefined when cancelled. */
const pick = (machines: ReadonlyArray<Machine>, recent: ReadonlyArray<string>, now: number) =>
  Effect.async<Machine | undefined>((resume) => {
    const out = process.stderr
    let query = ""
    let index = 0
    let drawn = 0
    const draw = () => {
      const list = rank(machines, query, recent).slice(0, 10)
      index = Math.min(index, Math.max(0, list.length - 1))
      let text = drawn > 0 ? `\x1b[${drawn}A\x1b[J` : ""
      text += `pick a machine: ${query}\r\n`
      list.forEach((m, i) => {
        text += `${i === index ? "> " : "  "}${describe(m, now)}\r\n`
      })
      if (list.length === 0) text += "  (no match)\r\n"
      drawn = Math.max(1, list.length) + 1
      out.write(text)
      return list
    }
    let list = draw()
    const finish = (m: Machine | undefined) => {
      process.stdin.off("data", onData)
      process.stdin.setRawMode(false)
      process.stdin.pause()
      resume(Effect.succeed(m))
    }
    const onData = (buf: Buffer) => {
      const s = buf.toString("utf8")
      if (s === "\r" || s === "\n") return finish(list[index])
      if (s === "\x1b" || s === "\x03") return finish(undefined)
      if (s === "\x1b[A") index = Math.max(0, index - 1)
      else if (s === "\x1b[B") index = index + 1
      else if (s === "\x7f" || s === "\b") query = query.slice(0, -1)
      else if (/^[\x20-\x7e]+$/.test(s)) {
        query += s
        index = 0
      }
      list = draw()
    }
    process.stdin.setRawMode(true)
    process.stdin.resume()
    process.stdin.on("data", onData)
    return Effect.sync(() => finish(undefined))
  })

const confirm = (question: string) =>
  Effect.async<boolean>((resume) => {
    process.stderr.write(`${question} [Y/n] `)
    process.stdin.setRawMode(true)
    process.stdin.resume()
    process.stdin.once("data", (buf) => {
      process.stdin.setRawMode(false)
      process.stdin.pause()
      const answer = buf.toString("utf8").toLowerCase()
      process.stderr.write(answer === "\r" || answer === "y" ? "yes\r\n" : "no\r\n")
      resume(Effect.succeed(answer === "\r" || answer === "\n" || answer === "y"))
    })
  })

export const pickAndAttach = (g: GlobalOptions.Globals) =>
  Effect.gen(function* () {
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    const { machines, now } = yield* Remote.withClient(g, (client) => client.listMachines())
    if (machines.length === 0)
      return yield* new CliError({
        message: 'no machines in this workspace yet; on a machine, run "cmdop agent register" then "cmdop agent start"'
      })
    const recent = yield* Recent.load
    const chosen = yield* pick(machines, recent, now)
    if (chosen === undefined) return yield* new CliError({ message: "cancelled", exitCode: 130 })
    if (!(yield* confirm(`connect to ${describe(chosen, now)}?`)))
      return yield* new CliError({ message: "cancelled", exitCode: 130 })
    return yield* attach.attach(g, chosen.id, undefined)
  })
