/**
 * What an agent reports about a session's end, checked before it reaches a client: an exit code is 0 to 255
 * (anything else becomes 255, and the end says the agent reported an invalid code), and a signal is one of the
 * known names (without `SIG`); an unknown one is dropped. The same names are the signals a client may send.
 */

/** Signal names a relay passes on (POSIX and Linux), without the `SIG` prefix. */
export const SIGNALS: ReadonlySet<string> = new Set([
  "HUP",
  "INT",
  "QUIT",
  "ILL",
  "TRAP",
  "ABRT",
  "BUS",
  "FPE",
  "KILL",
  "USR1",
  "SEGV",
  "USR2",
  "PIPE",
  "ALRM",
  "TERM",
  "STKFLT",
  "CHLD",
  "CONT",
  "STOP",
  "TSTP",
  "TTIN",
  "TTOU",
  "URG",
  "XCPU",
  "XFSZ",
  "VTALRM",
  "PROF",
  "WINCH",
  "IO",
  "POLL",
  "PWR",
  "SYS",
  "IOT",
  "EMT",
  "INFO",
  "LOST"
])

/** A signal name as clients and agents may give it (`INT`, `SIGINT`, `int`) → the known name, else undefined. */
export const knownSignal = (name: string | undefined): string | undefined => {
  if (name === undefined) return undefined
  const upper = name.trim().toUpperCase()
  const short = upper.startsWith("SIG") ? upper.slice(3) : upper
  return SIGNALS.has(short) ? short : undefined
}

/** The exit status a client may see: a code in 0..255, a known signal or none, and a note when the code was not. */
export const sanitize = (
  exitCode: number,
  signal: string | undefined
): { readonly exitCode: number; readonly signal?: string; readonly invalid?: string } => {
  const known = knownSignal(signal)
  const valid = Number.isInteger(exitCode) && exitCode >= 0 && exitCode <= 255
  return {
    exitCode: valid ? exitCode : 255,
    ...(known === undefined ? {} : { signal: known }),
    ...(valid ? {} : { invalid: `the machine's agent reported an invalid exit code (${exitCode})` })
  }
}
