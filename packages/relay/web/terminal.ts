/**
 * The browser terminal behind a share link: an xterm.js terminal attached over a WebSocket to a PTY session on
 * the link's machine. The page (`TerminalPage`) holds a `#terminal` container whose `data-socket` names the
 * socket relative to the page; the frame protocol is described in `src/web/TerminalSocket.ts`.
 *
 * The page's tab remembers its session (sessionStorage) so a reload joins the same shell and replays its screen.
 * Every way the connection ends is shown twice: in the terminal and in the `#status` banner.
 */
import { FitAddon } from "@xterm/addon-fit"
import { Terminal } from "@xterm/xterm"
import "@xterm/xterm/css/xterm.css"
import "./terminal.css"

type ControlFrame =
  | {
      readonly type: "attached"
      readonly machine: { readonly id: string; readonly hostname: string; readonly name: string }
      readonly sessionId: string
      readonly created: boolean
    }
  | { readonly type: "ended"; readonly reason: string; readonly exitCode: number; readonly message: string }
  | { readonly type: "error"; readonly message: string }

type State = "connecting" | "connected" | "ended" | "error" | "closed"

const RESIZE_DEBOUNCE_MS = 100

const container = document.getElementById("terminal")!
const status = document.getElementById("status")!
const statusText = document.getElementById("status-text")!
const reconnect = document.getElementById("reconnect") as HTMLButtonElement | null
const sessionKey = `cmdop-session:${location.pathname}`

/** Updates the banner; a connected terminal has none. */
const show = (state: State, text: string) => {
  document.body.dataset.state = state
  status.dataset.state = state
  statusText.textContent = text
  status.hidden = state === "connected"
  if (reconnect) reconnect.hidden = state !== "closed" && state !== "error"
}

// Expiry shown in the reader's own time zone (the page carries it in UTC).
for (const time of Array.from(document.querySelectorAll<HTMLTimeElement>("time[datetime]"))) {
  const at = new Date(time.dateTime)
  if (!Number.isNaN(at.getTime())) time.textContent = at.toLocaleString()
}

const terminal = new Terminal({
  cursorBlink: true,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
  fontSize: 14,
  scrollback: 5000,
  theme: { background: "#0f1115", foreground: "#e6e6e6", cursor: "#e6e6e6" }
})
const fit = new FitAddon()
terminal.loadAddon(fit)
terminal.open(container)
fit.fit()
terminal.focus()

const socketUrl = new URL(container.dataset.socket ?? "ws", location.href)
socketUrl.protocol = location.protocol === "https:" ? "wss:" : "ws:"
socketUrl.search = location.search

const socket = new WebSocket(socketUrl)
socket.binaryType = "arraybuffer"
const encoder = new TextEncoder()
let finished = false

const send = (frame: string | Uint8Array) => {
  if (socket.readyState === WebSocket.OPEN && !finished) socket.send(frame)
}

const finish = (state: State, banner: string, line: string) => {
  if (finished) return
  finished = true
  terminal.options.disableStdin = true
  terminal.options.cursorBlink = false
  // The message on a line of its own, in yellow (ended) or red, and no cursor: nothing more can be typed.
  terminal.write(`\r\n\x1b[0m\x1b[1;${state === "ended" ? "33" : "31"}m[${line}]\x1b[0m\r\n\x1b[?25l`)
  show(state, banner)
}

show("connecting", "Connecting…")

socket.addEventListener("open", () => {
  const sessionId = sessionStorage.getItem(sessionKey)
  send(
    JSON.stringify({
      type: "start",
      cols: terminal.cols,
      rows: terminal.rows,
      ...(sessionId === null ? {} : { sessionId })
    })
  )
})

socket.addEventListener("message", (event: MessageEvent<ArrayBuffer | string>) => {
  if (typeof event.data !== "string") {
    terminal.write(new Uint8Array(event.data))
    return
  }
  let frame: ControlFrame
  try {
    frame = JSON.parse(event.data) as ControlFrame
  } catch {
    return
  }
  switch (frame.type) {
    case "attached":
      sessionStorage.setItem(sessionKey, frame.sessionId)
      document.title = `${frame.machine.hostname} — cmdop`
      show("connected", `Connected to ${frame.machine.hostname}`)
      return
    case "ended":
      sessionStorage.removeItem(sessionKey)
      finish("ended", `Session ended: ${frame.message}`, `session ended: ${frame.message}`)
      return
    case "error":
      finish("error", `Error: ${frame.message}`, `error: ${frame.message}`)
      return
  }
})

socket.addEventListener("close", (event) => {
  const why = event.reason === "" ? `code ${event.code}` : event.reason
  finish("closed", `Connection closed (${why})`, `connection closed (${why})`)
})

terminal.onData((data) => send(encoder.encode(data)))
terminal.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)))
terminal.onResize(({ cols, rows }) => send(JSON.stringify({ type: "resize", cols, rows })))

// The window decides the size: refit after it settles, and the terminal reports the new size if it changed.
let pending: ReturnType<typeof setTimeout> | undefined
const refit = () => {
  clearTimeout(pending)
  pending = setTimeout(() => fit.fit(), RESIZE_DEBOUNCE_MS)
}
window.addEventListener("resize", refit)
if (typeof ResizeObserver === "function") new ResizeObserver(refit).observe(container)

reconnect?.addEventListener("click", () => location.reload())
