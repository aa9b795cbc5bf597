/**
 * What a server answers is its text, not ours: a relay (or any server a --server names) that puts terminal escape
 * sequences in its error message gets them shown as `\xHH` on the error line, never written raw to the terminal
 * (which would clear the screen, recolour it, write the clipboard, or print a fake line).
 */
import { assert, describe, it } from "@effect/vitest"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as http2 from "node:http2"
import { cli } from "./support.js"

const KEY = "ck_live_AAAAaaaa1111bbbb2222cccc3333dddd"

describe("a relay's error text", () => {
  it.scopedLive("reaches the error line with its control characters escaped", () =>
    Effect.gen(function* () {
      const server = http2.createServer()
      server.on("stream", (stream) => {
        stream.respond(
          {
            ":status": 200,
            "content-type": "application/grpc",
            "grpc-status": "16",
            // ESC[2J (clear the screen), ESC]52 (write the clipboard), then a line that looks like ours.
            // (gRPC percent-encodes what is not printable ASCII.)
            "grpc-message": "bad key%1B[2J%1B]52;c;ZWNobyBoaQ==%07%0Dcmdop: all good"
          },
          { endStream: true }
        )
      })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          server.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () => Effect.sync(() => server.close())
      )
      const address = `127.0.0.1:${(server.address() as { port: number }).port}`
      const home = yield* TempHome.make()
      for (const args of [
        ["connect", "--list", "-k", KEY, "-s", address],
        ["connect", "whoami", "-k", KEY, "-s", address]
      ]) {
        const r = yield* cli(home, args)
        assert.strictEqual(r.code, 255, r.stderr)
        assert.include(r.stderr, "bad key\\x1b[2J\\x1b]52;c;ZWNobyBoaQ==\\x07", args.join(" "))
        assert.notMatch(r.stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, args.join(" "))
        assert.strictEqual(r.stderr.split("\n").length, 2, r.stderr)
      }
    })
  )
})
