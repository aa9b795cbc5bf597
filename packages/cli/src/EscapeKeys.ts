/**
 * The keys an attached shell keeps for itself, as pure state over the bytes typed: ssh's escape sequences (`~.` at
 * the start of a line detaches, `~?` lists the escapes, `~~` sends one tilde) and an optional docker-style
 * `--detach-keys` chord (`ctrl-p,ctrl-q`; `ctrl-d` gives the old single-key detach). Every other byte — Ctrl-D
 * included — goes to the remote side in order.
 */

/** What the typed bytes mean: bytes to forward, a detach, or a request for the escape help. */
export type Action =
  { readonly _tag: "Forward"; readonly data: Uint8Array } | { readonly _tag: "Detach" } | { readonly _tag: "Help" }

const TILDE = 0x7e
const CR = 0x0d
const LF = 0x0a

/** The help `~?` prints, in ssh's words. */
export const HELP = [
  "Supported escape sequences:",
  " ~.   - detach (the session keeps running)",
  " ~?   - this message",
  " ~~   - send the escape character by typing it twice",
  "(Note that escapes are only recognized immediately after newline.)"
].join("\r\n")

/**
 * Parses a `--detach-keys` value: comma-separated keys, each `ctrl-<letter>` or one of `ctrl-@ [ \ ] ^ _`, or a
 * single printable character (docker's syntax). An empty string means no chord. Returns an error line otherwise.
 */
export const parseDetachKeys = (spec: string): Uint8Array | string => {
  if (spec.trim() === "") return new Uint8Array(0)
  const bytes: Array<number> = []
  for (const raw of spec.split(",")) {
    const key = raw.trim().toLowerCase()
    const ctrl = /^ctrl-(.)$/.exec(key)
    if (ctrl) {
      const c = ctrl[1]!
      if (c >= "a" && c <= "z") bytes.push(c.charCodeAt(0) - 0x60)
      else if ("@[\\]^_".includes(c)) bytes.push(c.charCodeAt(0) - 0x40)
      else
        return `invalid --detach-keys "${spec}": ctrl-${c} is not a control key (use ctrl-a … ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_)`
    } else if (raw.length === 1 && raw.charCodeAt(0) > 0x20 && raw.charCodeAt(0) < 0x7f) bytes.push(raw.charCodeAt(0))
    else
      return `invalid --detach-keys "${spec}": use comma-separated keys like ctrl-p,ctrl-q or ctrl-d (docker's syntax)`
  }
  return new Uint8Array(bytes)
}

export interface EscapeKeys {
  /** The meaning of the next chunk of typed bytes. */
  readonly feed: (chunk: Uint8Array) => ReadonlyArray<Action>
}

/** A fresh reader at the start of a line, with `chord` (possibly empty) as the detach keys. */
export const make = (chord: Uint8Array = new Uint8Array(0)): EscapeKeys => {
  let lineStart = true
  let tilde = false
  let held = 0 // how many bytes of the chord are held back
  return {
    feed: (chunk) => {
      const actions: Array<Action> = []
      let out: Array<number> = []
      const flush = () => {
        if (out.length > 0) actions.push({ _tag: "Forward", data: new Uint8Array(out) })
        out = []
      }
      const forward = (b: number) => {
        out.push(b)
        lineStart = b === CR || b === LF
      }
      for (const b of chunk) {
        if (chord.length > 0) {
          if (b === chord[held]) {
            held += 1
            if (held === chord.length) {
              flush()
              actions.push({ _tag: "Detach" })
              return actions
            }
            continue
          }
          // Not the chord after all: the held keys were meant for the remote side.
          for (let i = 0; i < held; i++) forward(chord[i]!)
          held = 0
          if (b === chord[0]) {
            held = 1
            continue
          }
        }
        if (tilde) {
          tilde = false
          if (b === 0x2e) {
            flush()
            actions.push({ _tag: "Detach" })
            return actions
          }
          if (b === 0x3f) {
            flush()
            actions.push({ _tag: "Help" })
            lineStart = true
            continue
          }
          if (b === TILDE) {
            forward(TILDE)
            continue
          }
          forward(TILDE)
          forward(b)
          continue
        }
        if (lineStart && b === TILDE) {
          tilde = true
          continue
        }
        forward(b)
      }
      flush()
      return actions
    }
  }
}
