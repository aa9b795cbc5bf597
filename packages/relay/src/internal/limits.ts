/**
 * The relay's resource bounds: what one request may carry, what one agent may claim, how long a stream may stay
 * silent before its first message, and how many streams and terminal sessions one principal may hold at once.
 * Every bound is checked before the work it guards is done, and a refusal names the limit (see
 * `docs/security.md`, "Limits", for what each one protects).
 */
import { RelayError } from "@cmdop/domain/RelayError"
import * as Effect from "effect/Effect"
import * as ScopedAcquire from "@cmdop/grpc/ScopedAcquire"
import type * as Scope from "effect/Scope"

/**
 * Bytes one exec request may carry in argv, env and cwd together. A session's opening message travels to the
 * agent inside the machine's one stream; keeping it far below the 32 MiB transport limit means no request can
 * make that message too large for the stream (which would drop every session of the machine).
 */
export const MAX_REQUEST_BYTES = 256 * 1024

/**
 * The largest gRPC message the relay reads (clients' and agents'). Legitimate messages are far smaller (stdin and
 * output travel in chunks of at most 256 KiB); anything bigger is refused by the transport before it is decoded,
 * so a huge Hello or request costs the relay no parsing.
 */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024

/** Bytes of one attach request's command (and its other text fields) together. */
export const MAX_ATTACH_BYTES = 64 * 1024

/** PTY sessions an agent's `Hello` may list; more is refused (each one costs the relay a replay ring). */
export const MAX_HELLO_SESSIONS = 1024

/** Characters of an agent-reported session's owner and command the relay keeps. */
export const MAX_LABEL = 1024

/** How long an exec or attach stream may stay open without its first message. */
export const FIRST_MESSAGE_TIMEOUT = "10 seconds"

/** Exec and attach streams (gRPC and browser) one principal — a workspace key or a share link — may hold at once. */
export const MAX_STREAMS_PER_PRINCIPAL = 64

/** Live PTY sessions one principal may own on one machine; joining an existing one is not counted. */
export const MAX_PTYS_PER_PRINCIPAL = 16

/** Share links one workspace may be minting at once (one: minting is serial per workspace); more wait their turn (`guestAccess.ts`). */
export const MAX_CONCURRENT_MINTS = 1

/**
 * The longest rest after a mint before the same workspace's next one (the rest is as long as the mint took; a mint
 * takes a few ms): a burst of mints gets about half of the relay's event loop (`guestAccess.ts`).
 */
export const MAX_MINT_REST_MS = 20

/**
 * Why the relay cut an agent that sent more output than its flow-control window allows. The agent is told (its
 * stream ends with `RESOURCE_EXHAUSTED` and this reason) and logs it, so the machine's owner can see why.
 */
export const WINDOW_OVERRUN =
  "the agent sent more output than its flow-control window allows; the relay closed its connection (upgrade or repair the agent)"

/**
 * Why the relay cut an agent that sent heartbeats faster than `heartbeatRate.ts` allows (its stream ends with
 * `RESOURCE_EXHAUSTED` and this reason, as for `WINDOW_OVERRUN`).
 */
export const HEARTBEAT_FLOOD =
  "the agent sent heartbeats faster than one a second; the relay closed its connection (upgrade or repair the agent)"

/** Largest WebSocket frame the browser terminal accepts (keystrokes and control frames are tiny). */
export const MAX_WS_FRAME = 1024 * 1024

const utf8 = new TextEncoder()
const bytes = (s: string) => utf8.encode(s).byteLength

/** What an exec request carries in argv, env and cwd, in UTF-8 bytes. */
export const execRequestBytes = (request: {
  readonly argv: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly cwd?: string | undefined
}): number => {
  let total = bytes(request.cwd ?? "")
  for (const arg of request.argv) total += bytes(arg)
  for (const [k, v] of Object.entries(request.env ?? {})) total += bytes(k) + bytes(v)
  return total
}

/** The refusal a caller sees when a bound is hit: one line naming the limit, with a hint. */
export const exhausted = (server: string, detail: string) =>
  new RelayError({ reason: "ResourceExhausted", server, detail })

const kib = (n: number) => `${Math.round(n / 1024)} KiB`

/** Fails when an exec request carries more than `MAX_REQUEST_BYTES`. */
export const checkExecRequest = (server: string, request: Parameters<typeof execRequestBytes>[0]) => {
  const size = execRequestBytes(request)
  return size > MAX_REQUEST_BYTES
    ? Effect.fail(
        exhausted(
          server,
          `the command line and environment are ${kib(size)}, over the relay's limit of ${kib(MAX_REQUEST_BYTES)}; pass large data on stdin instead`
        )
      )
    : Effect.void
}

/** Fails when an attach request's command carries more than `MAX_ATTACH_BYTES`. */
export const checkAttachRequest = (
  server: string,
  request: { readonly command?: ReadonlyArray<string> | undefined; readonly term?: string | undefined }
) => {
  const size = (request.command ?? []).reduce((n, arg) => n + bytes(arg), bytes(request.term ?? ""))
  return size > MAX_ATTACH_BYTES
    ? Effect.fail(
        exhausted(server, `the session's command is ${kib(size)}, over the relay's limit of ${kib(MAX_ATTACH_BYTES)}`)
      )
    : Effect.void
}

/**
 * Counts what each principal holds at once (open streams). `hold` takes one slot for the life of the scope, or
 * fails with a `ResourceExhausted` refusal naming the cap when the principal already holds `max`.
 */
export class PrincipalGauge {
  private readonly held = new Map<string, number>()

  constructor(
    readonly max: number,
    private readonly what: string
  ) {}

  count(key: string): number {
    return this.held.get(key) ?? 0
  }

  /** `key` identifies the principal (workspace and principal); `label` names it in the refusal. */
  hold(server: string, key: string, label: string): Effect.Effect<void, RelayError, Scope.Scope> {
    return ScopedAcquire.acquireRelease(
      Effect.suspend(() => {
        const n = this.count(key)
        if (n >= this.max)
          return Effect.fail(
            exhausted(
              server,
              `${label} already has ${n} ${this.what} open, the relay's limit; close some and try again`
            )
          )
        this.held.set(key, n + 1)
        return Effect.void
      }),
      () => this.release(key)
    )
  }

  private release(key: string): Effect.Effect<void> {
    return Effect.sync(() => {
      const n = this.count(key) - 1
      if (n <= 0) this.held.delete(key)
      else this.held.set(key, n)
    })
  }
}
