/**
 * The keys of an attached shell in a real terminal (tmux), as the user types them: Ctrl-D reaches the remote
 * program (`cat` ends and its file is written), ssh's escapes detach and help, `--detach-keys ctrl-d` keeps the old
 * single-key detach, and reattaching after vim leaves the prompt clean (the local terminal's answers to replayed
 * queries never reach the remote shell).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Processes from "@cmdop/testkit/Processes"
import * as Effect from "effect/Effect"
import { live as world } from "./World.js"
import { terminal, terminalEnv, waitFor } from "./Tmux.js"

const connect = (args: string) => `${process.execPath} ${Processes.binPath} connect ${args}`

describe("keys in an attached shell (tmux)", () => {
  it.scopedLive(
    "cat > f, text, Ctrl-D: cat ends and the file is written; ~? lists escapes; ~~ types a tilde; ~. detaches",
    () =>
      Effect.gen(function* () {
        const w = yield* world
        const key = yield* w.create("acme")
        yield* w.agent(key, "vm")
        const t = yield* terminal("k1", connect("vm"), terminalEnv(w, key))
        yield* waitFor(t.screen, /attached to vm, session .* detach with ~\. at the start of a line/, "the attach")

        // $ cat > /tmp/…/f  ⏎  hello from cat ⏎  Ctrl-D
        // Typed only once cat reads the terminal (keys typed ahead while the shell's line editor has the terminal
        // in raw mode would reach cat as plain bytes).
        t.send('cd "$(mktemp -d)" && echo cat-$((5*5)) && cat > f', "Enter")
        yield* waitFor(t.screen, /^cat-25\s*$/m, "cat started")
        t.send("hello from cat", "Enter")
        yield* waitFor(t.screen, /^hello from cat\s*$/m, "the line typed into cat")
        t.send("C-d")
        t.send("echo cat-ended-$((3*3)); cat f | wc -l", "Enter")
        const afterCat = yield* waitFor(t.screen, /^cat-ended-9\s*\n\s*1\s*$/m, "cat ended and the file written")
        assert.notMatch(afterCat, /detached/)

        t.type("~?")
        yield* waitFor(t.screen, /Supported escape sequences:[\s\S]*~\.\s+- detach/, "the escape list")
        t.type("~~")
        t.send("/x; echo tilde-ok", "Enter")
        yield* waitFor(t.screen, /^tilde-ok\s*$/m, "the line typed after ~~")

        t.type("~.")
        const detached = yield* waitFor(t.screen, /detached; session \S+ keeps running/, "the detach")
        assert.match(detached, /reattach with: cmdop connect vm --session [0-9a-f-]{36}/)
      }),
    90_000
  )

  it.scopedLive(
    "--detach-keys ctrl-d gives the old single-key detach; a bad chord is a usage error",
    () =>
      Effect.gen(function* () {
        const w = yield* world
        const key = yield* w.create("acme")
        yield* w.agent(key, "vm")
        const t = yield* terminal("k2", connect("vm --detach-keys ctrl-d"), terminalEnv(w, key))
        yield* waitFor(t.screen, /detach with ~\. at the start of a line or ctrl-d/, "the attach")
        t.send("echo before-$((2*5))", "Enter")
        yield* waitFor(t.screen, /^before-10\s*$/m, "the shell")
        t.send("C-d")
        yield* waitFor(t.screen, /detached; session \S+ keeps running/, "the detach on Ctrl-D")

        const bad = yield* terminal("k3", connect("vm --detach-keys ctrl-1"), terminalEnv(w, key))
        yield* waitFor(bad.screen, /invalid --detach-keys "ctrl-1"/, "the usage error")
      }),
    90_000
  )

  it.scopedLive(
    "reattach after running and quitting vim leaves the prompt clean",
    () =>
      Effect.gen(function* () {
        const w = yield* world
        const key = yield* w.create("acme")
        yield* w.agent(key, "vm")
        const env = terminalEnv(w, key)
        const t = yield* terminal("v1", connect("vm"), env)
        const attached = yield* waitFor(t.screen, /attached to vm, session ([0-9a-f-]{36})/, "the attach")
        const sessionId = /session ([0-9a-f-]{36})/.exec(attached)![1]!
        // vim asks the terminal for the cursor position and its attributes, then quits.
        t.send("vi -u NONE -N", "Enter")
        yield* waitFor(t.screen, /^~\s*\n~\s*\n/m, "vim's empty buffer")
        t.type(":q!")
        t.send("Enter")
        yield* waitFor(t.screen, /vi -u NONE -N\s*\n.*#\s*$/m, "the prompt after vim")
        t.send("echo vim-done", "Enter")
        yield* waitFor(t.screen, /^vim-done\s*$/m, "the shell after vim")
        t.type("~.")
        yield* waitFor(t.screen, /detached; session/, "the detach")

        const again = yield* terminal("v2", connect(`vm --session ${sessionId}`), env)
        yield* waitFor(again.screen, /attached to vm, session/, "the reattach")
        yield* waitFor(again.screen, /vim-done/, "the replayed screen")
        again.send("echo clean-$((4*4))", "Enter")
        const screen = yield* waitFor(again.screen, /^clean-16\s*$/m, "the command after the reattach")
        // The shell ran exactly what was typed: no terminal answers (`2R`, `[?1;2c`, `rgb:`…) in front of it.
        const after = screen.slice(screen.lastIndexOf("vim-done"))
        assert.notMatch(after, /\d+;\d+R|\[\?[\d;]*c|\[>[\d;]*c|rgb:|command not found|not found/)
        assert.match(after, /echo clean-\$\(\(4\*4\)\)\s*\n\s*clean-16/)
      }),
    90_000
  )
})

describe("losing the agent under an attached shell (tmux)", () => {
  it.scopedLive(
    "one reconnect line, then the truth: the session is gone with the agent that ran it",
    () =>
      Effect.gen(function* () {
        const w = yield* world
        const key = yield* w.create("acme")
        const agent = yield* w.agent(key, "vm")
        const env = terminalEnv(w, key)
        const t = yield* terminal("r1", connect("vm"), env)
        yield* waitFor(t.screen, /attached to vm/, "the attach")
        t.send("echo before-$((1+1))", "Enter")
        yield* waitFor(t.screen, /^before-2\s*$/m, "the shell")

        yield* agent.stop
        yield* waitFor(t.screen, /connection lost; reconnecting/, "the reconnect line")
        yield* Processes.daemon(
          agent.home,
          ["agent", "start", "--foreground", "-k", key, "-s", w.server],
          /connected to relay/
        )
        const end = yield* waitFor(t.screen, /no longer exists on vm|session ended/, "the end", 40_000)
        assert.strictEqual(end.match(/connection lost; reconnecting/g)?.length, 1, end)
        assert.notMatch(end, /session \S+ keeps running/)
        assert.match(end, /nothing of it keeps running — open a new one with: cmdop connect vm/)
      }),
    90_000
  )

  it.scopedLive(
    "~. while the relay is down tells the truth: the session may still be running",
    () =>
      Effect.gen(function* () {
        const w = yield* world
        const key = yield* w.create("acme")
        yield* w.agent(key, "vm")
        const t = yield* terminal("r2", connect("vm"), terminalEnv(w, key))
        yield* waitFor(t.screen, /attached to vm/, "the attach")
        t.send("echo up-$((2+2))", "Enter")
        yield* waitFor(t.screen, /^up-4\s*$/m, "the shell")
        yield* w.relay.stop("SIGKILL")
        yield* waitFor(t.screen, /connection lost; reconnecting… \(~\. detaches\)/, "the reconnect line")
        t.type("~.")
        const screen = yield* waitFor(t.screen, /detached while the connection was down/, "the detach")
        assert.match(
          screen,
          /session [0-9a-f-]{36} may still be running — try: cmdop connect vm --session [0-9a-f-]{36}/
        )
        assert.notMatch(screen, /keeps running/)
      }),
    60_000
  )
})
