/**
 * A `Console` that records what a program prints, split into stdout (log/info/debug) and stderr (error/warn), so
 * CLI tests run the real command tree and read its output. Raw bytes a program writes to its stdout or stderr
 * (`writeStdout` / `writeStderr`) land in the same two records, in order.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as util from "node:util"

export interface Captured {
  readonly console: Console.Console
  readonly stdout: () => string
  readonly stderr: () => string
  /** Appends raw bytes to stdout (UTF-8, decoded across chunk boundaries). */
  readonly writeStdout: (data: Uint8Array) => void
  /** Appends raw bytes to stderr (UTF-8, decoded across chunk boundaries). */
  readonly writeStderr: (data: Uint8Array) => void
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
  const outDecoder = new TextDecoder()
  const errDecoder = new TextDecoder()
  return {
    console,
    stdout: () => out.join("") + outDecoder.decode(),
    stderr: () => err.join("") + errDecoder.decode(),
    writeStdout: (data) => void out.push(outDecoder.decode(data, { stream: true })),
    writeStderr: (data) => void err.push(errDecoder.decode(data, { stream: true }))
  }
}
