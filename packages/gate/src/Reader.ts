/**
 * Reads an exec request into a `Plan` (what will really run). Exec without a shell is its argv; with `shell`, or
 * when the argv is itself a shell given `-c` (also behind `sudo`, `env`, `nice`, …), the script is parsed with
 * mvdan/sh and every simple command in it becomes a unit. The parser is loaded once, by `warmUp`.
 */
import type { Plan } from "./Plan.js"
import type { GateRequest } from "./Request.js"
import * as Effect from "effect/Effect"
import { isLoaded, load } from "./internal/mvdan.js"
import {
  ParserNotLoaded,
  PlanBuilder,
  ShellSyntaxError,
  isSafeVariable,
  readCommand,
  readScriptInto
} from "./internal/shellReader.js"

/**
 * Loads the shell parser (about 60 ms and 4-16 MiB, once per process; nothing once loaded). Decisions that need
 * to read shell code are denied ("parser not loaded") until it completes; `PolicyStore` awaits it before each
 * decision, so an agent that has not been asked anything yet has not loaded it.
 */
export const warmUp: Effect.Effect<void> = Effect.suspend(() =>
  isLoaded() ? Effect.void : Effect.asVoid(Effect.promise(() => load()))
)

/** Reads an exec request. Shell and attach sessions have no command to read and give an empty plan. */
export const read = (request: GateRequest): Plan => {
  const out = new PlanBuilder()
  if (request.mode !== "exec") return { units: [], floor: [] }
  for (const name of Object.keys(request.env ?? {}))
    if (!isSafeVariable(name)) out.hidden(`${name}=…`, `the caller sets ${name}, which can change what runs`)
  const argv = request.argv ?? []
  if (argv.length === 0 || (argv.length === 1 && argv[0] === ""))
    return { units: out.units, floor: [], error: "empty command" }
  try {
    if (request.shell === true) readScriptInto(argv.join(" "), 0, out)
    else
      readCommand(
        argv.map((text) => ({ text, known: true, glob: false })),
        0,
        out
      )
  } catch (error) {
    if (error instanceof ShellSyntaxError)
      return { units: out.units, floor: out.floor, error: `the shell line does not parse: ${error.message}` }
    if (error instanceof ParserNotLoaded) return { units: out.units, floor: out.floor, error: error.message }
    return { units: out.units, floor: out.floor, error: `the gate could not read the command: ${String(error)}` }
  }
  if (out.units.length === 0 && out.floor.length === 0)
    return { units: [], floor: [], error: "the shell line runs no command" }
  return { units: out.units, floor: out.floor }
}
