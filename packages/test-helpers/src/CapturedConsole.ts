/**
 * A `Console` that records what a program prints, split into stdout (log/info/debug) and stderr (error/warn), so
 * CLI tests run the real command tree and read its output.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as util from "node:util"

export interface Captured {
  readonly console: Console.Console
  readonly stdout: () => string
  readonly stderr: () => string
}

export const make = (): Captured => {
  const out: Array<string> = []
  const err: Array<string> = []
  const fmt = (args: ReadonlyArray<unknown>) => util.format(...args) + "\n"
  const toOut = (...args: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(fmt(args)))
  const toErr = (...args: ReadonlyArray<unknown>) => Effect.sync(() => void err.push(fmt(args)))
  const unsafe = {
    ...globalThis.console,
    log: (...args: ReadonlyArray<unknown>) => void out.push(fmt(args)),
    info: (...args: ReadonlyArray<unknown>) => void out.push(fmt(args)),
    debug: (...args: ReadonlyArray<unknown>) => void out.push(fmt(args)),
    error: (...args: ReadonlyArray<unknown>) => void err.push(fmt(args)),
    warn: (...args: ReadonlyArray<unknown>) => void err.push(fmt(args))
  } as unknown as Console.UnsafeConsole
  const console: Console.Console = {
    [Console.TypeId]: Console.TypeId,
    assert: () => Effect.void,
    clear: Effect.void,
    count: () => Effect.void,
    countReset: () => Effect.void,
    debug: toOut,
    dir: (item) => toOut(util.inspect(item)),
    dirxml: toOut,
    error: toErr,
    group: () => Effect.void,
    groupEnd: Effect.void,
    info: toOut,
    log: toOut,
    table: (data) => toOut(util.inspect(data)),
    time: () => Effect.void,
    timeEnd: () => Effect.void,
    timeLog: () => Effect.void,
    trace: toErr,
    warn: toErr,
    unsafe
  }
  return { console, stdout: () => out.join(""), stderr: () => err.join("") }
}
