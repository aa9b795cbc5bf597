/**
 * The answers a terminal types by itself when output asks it something: cursor position reports (`ESC [ r ; c R`),
 * device attributes (`ESC [ ? … c`, `ESC [ > … c`), mode reports (`ESC [ ? … $ y`), status (`ESC [ 0 n`) and colour
 * or title reports (`ESC ] … BEL|ST`). Replayed output (a reattach shows the screen's recent bytes again) asks
 * those questions a second time; the answers must not reach the remote shell, where they would be typed as junk
 * such as `2R`. `strip` removes them from a chunk of keystrokes.
 */

const REPLY = new RegExp(
  [
    "\\x1b\\[\\d+;\\d+R", // cursor position report
    "\\x1b\\[[?>=][\\d;]*c", // primary / secondary / tertiary device attributes
    "\\x1b\\[\\?[\\d;]*\\$y", // DEC private mode report
    "\\x1b\\[\\d*n", // device status report
    "\\x1bP[\\s\\S]*?\\x1b\\\\", // DCS replies (XTVERSION, DECRQSS)
    "\\x1b\\][\\s\\S]*?(?:\\x07|\\x1b\\\\)" // OSC replies (colours, title)
  ].join("|"),
  "g"
)

/** The keystrokes of `chunk` without the terminal's own replies (bytes are kept as they are otherwise). */
export const strip = (chunk: Uint8Array): Uint8Array => {
  const text = Buffer.from(chunk).toString("latin1")
  const kept = text.replace(REPLY, "")
  return kept.length === text.length ? chunk : new Uint8Array(Buffer.from(kept, "latin1"))
}
