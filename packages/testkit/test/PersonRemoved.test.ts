/**
 * What a person leaves behind on a machine ends with their access to its workspace, on the machine itself: a real
 * agent engine with real shells (`InProcessAgent`, `PtySessions`) under a relay core wired as `relay serve` wires
 * it with accounts (the OAuth check with no cache, the credential sweep every 250 ms).
 *
 *  - a member removed from the workspace: the shell they opened, and a job it started, are gone from `ps` within
 *    the sweep, and their view is told why; an owner's shell on the same machine goes on;
 *  - a member demoted to viewer: the browser-terminal link minted in their name (what the cabinet's "Connect"
 *    does: a one-hour share link as that person) is refused on its very next use, and the shell a guest opened
 *    through it is gone from `ps` within the sweep.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import type { UserId } from "@cmdop/accounts/AccountStore"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import { AttachInput, type AttachEvent } from "@cmdop/domain/RelayClient"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayAccounts from "@cmdop/relay/RelayAccounts"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { spawnSync } from "node:child_process"
import * as InProcessAgent from "../src/InProcessAgent.js"

const SERVER = "relay.test:1"

/** The pids among `pids` that `ps` still lists as live processes (a zombie is not one). */
const livePids = (pids: ReadonlyArray<number>) =>
  spawnSync("ps", ["-o", "pid=,stat=", "-p", pids.join(",")], { encoding: "utf8" })
    .stdout.split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, stat]) => pid !== undefined && pid !== "" && !stat?.startsWith("Z"))
    .map(([pid]) => Number(pid))
    .sort((a, b) => a - b)

const setup = Effect.gen(function* () {
  const relayStore = yield* Layer.build(RelayStore.layerMemory)
  const store = Context.get(relayStore, RelayStore.RelayStore)
  const accounts = yield* Layer.build(
    RelayAccounts.servicesLayer(() => "http://relay.test", RelayAccounts.memoryStoreLayer)
  )
  const oauth = Context.get(accounts, OAuthServer)
  const context = yield* Layer.build(
    RelayCore.layer({ server: SERVER, oauth: RelayAccounts.oauthAuthenticate(oauth, store, SERVER) }).pipe(
      Layer.provideMerge(ShareServiceLive.layer),
      Layer.provide(Layer.succeedContext(relayStore)),
      Layer.merge(ProcessRunner.layer)
    )
  )
  const core = Context.get(context, RelayCore.RelayCore)
  const host = Context.get(accounts, Accounts)
  const acme = yield* store.createWorkspace(WorkspaceName.make("acme"))
  yield* InProcessAgent.attach(Redacted.value(acme.apiKey), InProcessAgent.identity({ hostname: "box-1" }), {
    hostname: "box-1"
  }).pipe(Effect.provide(context))
  /** A person of acme with `role`, logged in (`cmdop login`): their caller. */
  const person = (email: string, role: "owner" | "member") =>
    Effect.gen(function* () {
      const added = yield* host.addMember({ actor: "relay-host", email, workspaceId: acme.workspace.id, role })
      const started = yield* oauth.deviceAuthorization({ clientId: "cmdop-cli", scope: undefined })
      yield* oauth.approveDevice(added.user.id, started.user_code)
      const tokens = yield* oauth.token({
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        device_code: started.device_code,
        client_id: "cmdop-cli"
      })
      return { user: added.user, caller: yield* core.authenticate(Redacted.make(tokens.access_token)) }
    })
  return { core, host, acme, person }
})

/** A shell on box-1 opened as `caller`, started with a background job: the shell's and the job's pids. */
type Core = RelayCore.RelayCore["Type"]
type Caller = Effect.Effect.Success<ReturnType<Core["authenticate"]>>

const shell = (core: Core, caller: Caller) =>
  Effect.gen(function* () {
    const input = yield* Queue.unbounded<AttachInput>()
    const seen = { text: "", ended: undefined as Extract<AttachEvent, { _tag: "Ended" }> | undefined }
    yield* core.attach(caller, { machine: "box-1", cols: 80, rows: 24 }, Stream.fromQueue(input)).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          if (event._tag === "Output") seen.text += new TextDecoder().decode(event.data)
          if (event._tag === "Ended") seen.ended = event
        })
      ),
      Effect.ignore,
      Effect.forkScoped
    )
    const type = (line: string) => Queue.offer(input, AttachInput.Data({ data: new TextEncoder().encode(line + "\n") }))
    const waitFor = (pattern: RegExp) =>
      eventuallySync(`${pattern} on the screen`, () => pattern.exec(seen.text) ?? undefined)
    yield* type("echo shell-$$; sleep 300 & echo job-$!")
    const pids = [Number((yield* waitFor(/shell-(\d+)/))[1]), Number((yield* waitFor(/job-(\d+)/))[1])]
    return { pids: pids.sort((a, b) => a - b), seen, type, waitFor }
  })

describe("a person's access lost ends what they left on the machine", () => {
  it.scopedLive(
    "removed: their shell and its job are gone from ps within the sweep; an owner's shell goes on",
    () =>
      Effect.gen(function* () {
        const { core, host, acme, person } = yield* setup
        const alice = yield* person("alice@example.com", "owner")
        const bob = yield* person("bob@example.com", "member")
        const hers = yield* shell(core, alice.caller)
        const his = yield* shell(core, bob.caller)
        assert.deepStrictEqual(livePids(his.pids), his.pids)

        yield* host.removeMember({
          actor: alice.user.id,
          workspaceId: acme.workspace.id,
          userId: bob.user.id as UserId
        })
        yield* eventuallySync(
          "bob's shell and job gone from ps",
          () => (livePids(his.pids).length === 0 ? true : undefined),
          {
            timeout: "5 seconds"
          }
        )
        const ended = yield* eventuallySync("bob's view told why", () => his.seen.ended)
        assert.include(ended.reason, "not a member of workspace")
        // Alice's shell on the same machine goes on.
        assert.deepStrictEqual(livePids(hers.pids), hers.pids)
        yield* hers.type("echo still-$((40+2))")
        yield* hers.waitFor(/still-42/)
        assert.isUndefined(hers.seen.ended)
      }),
    30_000
  )

  it.scopedLive(
    "demoted to viewer: the browser-terminal link minted as them is refused on next use, its shell gone from ps",
    () =>
      Effect.gen(function* () {
        const { core, host, acme, person } = yield* setup
        const carol = yield* person("carol@example.com", "member")
        // What the cabinet's "Connect" does: a one-hour share link in the person's name, then the terminal.
        const minted = yield* core.createShare(carol.caller, "box-1", 3600)
        const guest = yield* core.authenticate(Redacted.make(minted.token))
        const theirs = yield* shell(core, guest)
        assert.deepStrictEqual(livePids(theirs.pids), theirs.pids)

        yield* host.addMember({
          actor: "relay-host",
          email: "carol@example.com",
          workspaceId: acme.workspace.id,
          role: "viewer"
        })
        // The very next use of the link (opening the browser terminal again) is refused, with no time passing.
        const next = yield* Effect.flip(core.authenticate(Redacted.make(minted.token)))
        assert.strictEqual(next._tag, "AccessError")
        assert.include(next.message, "carol@example.com, who made it, is now a viewer of workspace acme")
        yield* eventuallySync(
          "the link's shell and job gone from ps",
          () => (livePids(theirs.pids).length === 0 ? true : undefined),
          { timeout: "5 seconds" }
        )
        const ended = yield* eventuallySync("the guest's view told why", () => theirs.seen.ended)
        assert.include(ended.reason, "stopped working")
      }),
    30_000
  )
})
