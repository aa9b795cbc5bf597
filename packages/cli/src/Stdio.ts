/**
 * The process's own stdin/stdout/stderr as Effect values: writes wait for `drain` (so a slow terminal or pipe
 * slows the remote command instead of filling memory), and stdin is a pull-based stream.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/** Writes `data` to a Node writable, waiting for `drain` when its buffer is full. */
export const write = (target: NodeJS.WritableStream, data: Uint8Array): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (target.write(data)) resume(Effect.void)
    else target.once("drain", () => resume(Effect.void))
  })

export const stdout = (data: Uint8Array) => write(process.stdout, data)
export const stderr = (data: Uint8Array) => write(process.stderr, data)

/**
 * The process's stdin, when it is not a terminal (a pipe or a file); `undefined` for a TTY. A read error ends it
 * like end-of-file: the remote command sees its stdin close.
 */
export const stdinIfPiped = (): Stream.Stream<Uint8Array> | undefined =>
  process.stdin.isTTY
    ? undefined
    : NodeStream.fromReadable<Error, Uint8Array>(
        () => process.stdin,
        (error) => (error instanceof Error ? error : new Error(String(error))),
        { chunkSize: 64 * 1024 }
      ).pipe(Stream.catchAll(() => Stream.empty))
