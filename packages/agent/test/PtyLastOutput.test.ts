/**
 * node-pty reports a shell's exit once the terminal's socket closed, but gives up on the socket 200 ms after the exit
 * and destroys it. On a loaded machine that timer can come due before the poll that would have read the shell's last
 * output, and the output was lost (`echo bye; exit 3` ended with no `bye`). Our patch of node-pty
 * (`patches/@lydell__node-pty@1.1.0.patch`) reads what the terminal still holds before destroying the socket.
 *
 * The patch also keeps the terminal's other end (the slave) open in the agent until the shell exits, as sshd does:
 * once the last holder of the slave closed it, the kernel could answer the next read with EIO or end-of-file before
 * the shell's last output was read (`echo bye-6; exit 3` lost `bye-6` about once in 300 shells on a loaded box; none
 * in 1,600 with the slave held). On the shell's exit the patch reads what is there, then lets go of the slave.
 *
 * The first test stands in for the late poll by keeping libuv from reading the terminal at all (its read is stopped and
 * never restarted), so the output is still in the kernel when the timer comes due.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodePty from "@lydell/node-pty"
import * as fs from "node:fs"

interface PtyInternals {
  readonly _socket: { readonly _handle: { readStart: () => number; readStop: () => number } }
}

const runUnread = (script: string) =>
  new Promise<{ readonly exitCode: number; readonly output: string }>((resolve) => {
    const child = NodePty.spawn("/bin/sh", ["-c", script], { encoding: null, cols: 80, rows: 24 })
    const handle = (child as unknown as PtyInternals)._socket._handle
    handle.readStart = () => 0
    handle.readStop()
    const chunks: Array<Buffer> = []
    child.onData((data) => chunks.push(Buffer.from(data as unknown as Buffer)))
    child.onExit(({ exitCode }) => resolve({ exitCode, output: Buffer.concat(chunks).toString("latin1") }))
  })

describe("a shell's last output", () => {
  it("reaches the reader even when node-pty's socket timer comes first", async () => {
    const { exitCode, output } = await runUnread("echo last-line; exit 3")
    expect(exitCode).toBe(3)
    expect(output).toContain("last-line\r\n")
  })

  it("comes from a terminal whose other end the agent holds until the shell exits", async () => {
    const child = NodePty.spawn("/bin/sh", ["-c", "read line; echo got-$line; exit 5"], { encoding: null })
    const slave = (child as unknown as { readonly _pty: string })._pty
    const holders = () =>
      fs.readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`) === slave
        } catch {
          return false
        }
      }).length
    expect(holders()).toBe(1)
    const chunks: Array<Buffer> = []
    child.onData((data) => chunks.push(Buffer.from(data as unknown as Buffer)))
    const exit = await new Promise<number>((resolve) => {
      child.onExit(({ exitCode }) => resolve(exitCode))
      child.write("x\n")
    })
    expect(exit).toBe(5)
    expect(Buffer.concat(chunks).toString("latin1")).toContain("got-x\r\n")
    expect(holders()).toBe(0)
  })
})
