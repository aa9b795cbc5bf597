/**
 * Account changes reach the very next call and live work, wherever they are made: the relay's own services, or the
 * relay host's CLI, which opens the same SQLite file on a connection of its own (as `cmdop relay user …` does from
 * another process). The relay core here is wired as `relay serve` wires it (the OAuth check with no cache, machine
 * ownership), on a real SQLite file, with a hand-driven agent and the TestClock:
 *
 *  - demotion, removal, disabling and a revoked login each refuse the very next call, with no time passing;
 *  - a person's or a key's live exec session, or a person's view of an interactive session, ends within one
 *    credential sweep (250 ms) of the change (an exec session at the agent too: `SessionClose`);
 *  - an agent connected with a person's login is closed within one sweep when they switch their active workspace,
 *    so it registers in the new one at once instead of at its next heartbeat.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import { AccountStore } from "@cmdop/accounts/AccountStore"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import type { AttachEvent, AttachInput } from "@cmdop/domain/RelayClient"
import type { WorkspaceId } from "@cmdop/domain/Machine"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayAccounts from "@cmdop/relay/RelayAccounts"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as MachineOwnership from "../../src/internal/machineOwnership.js"
import * as OAuthCaller from "../../src/internal/oauthCaller.js"
import { admitAttaches, hello } from "../agentDouble.js"

const SERVER = "relay.test:1"
const dirs: Array<string> = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

/** The relay's account services, or the relay host's: each a connection of its own to the data dir's file. */
const accountServices = (dataDir: string) =>
  Layer.build(RelayAccounts.servicesLayer(() => "http://relay.test", RelayAccounts.storeLayer({ dataDir })))

const setup = Effect.gen(function* () {
  const dataDir = mkdtempSync(join(tmpdir(), "cmdop-next-call-"))
  dirs.push(dataDir)
  const relayStore = yield* Layer.build(RelayStore.layerSqlite({ path: join(dataDir, "relay.db") }))
  const store = Context.get(relayStore, RelayStore.RelayStore)
  const relay = yield* accountServices(dataDir)
  const oauth = Context.get(relay, OAuthServer)
  const checker = OAuthCaller.make({ oauth, store, server: SERVER })
  const context = yield* Layer.build(
    RelayCore.layer({
      server: SERVER,
      oauth: checker.authenticate,
      ownership: MachineOwnership.make(Context.get(relay, AccountStore), SERVER)
    }).pipe(Layer.provideMerge(ShareServiceLive.layer), Layer.provide(Layer.succeedContext(relayStore)))
  )
  const core = Context.get(context, RelayCore.RelayCore)
  const host = Context.get(yield* accountServices(dataDir), Accounts)
  const acme = yield* store.createWorkspace(WorkspaceName.make("acme"))
  const beta = yield* store.createWorkspace(WorkspaceName.make("beta"))
  const member = (email: string, workspaceId: WorkspaceId, role: "owner" | "member" | "viewer") =>
    Effect.map(host.addMember({ actor: "relay-host", email, workspaceId, role }), (added) => added.user)
  /** `cmdop login` for `userId`, approved: the access token. */
  const login = (userId: Parameters<typeof oauth.approveDevice>[0]) =>
    Effect.gen(function* () {
      const started = yield* oauth.deviceAuthorization({ clientId: "cmdop-cli", scope: undefined })
      yield* oauth.approveDevice(userId, started.user_code)
      const tokens = yield* oauth.token({
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        device_code: started.device_code,
        client_id: "cmdop-cli"
      })
      return Redacted.make(tokens.access_token)
    })
  return { core, store, host, oauth, acme, beta, member, login }
})

/** A hand-driven agent connected with `credential`, welcomed. */
const agent = (core: RelayCore.RelayCore["Type"], credential: Redacted.Redacted<string>, hostname: string) =>
  Effect.gen(function* () {
    const caller = yield* core.authenticate(credential)
    const toRelay = yield* Queue.unbounded<AgentLink.AgentMessage>()
    const fromRelay = yield* Queue.unbounded<AgentLink.RelayMessage>()
    const fiber = yield* core
      .connectAgent(caller, Stream.fromQueue(toRelay))
      .pipe(Stream.runForEach(admitAttaches(toRelay, (m) => Queue.offer(fromRelay, m))), Effect.forkScoped)
    yield* Queue.offer(toRelay, hello(hostname))
    const welcome = yield* Queue.take(fromRelay)
    assert.strictEqual(welcome._tag, "Welcome")
    return { fromRelay, fiber }
  })

/** Starts `sleep 600` on `machine` as `credential`: the session's fiber, once the agent was asked to open it. */
const liveExec = (
  core: RelayCore.RelayCore["Type"],
  credential: Redacted.Redacted<string>,
  machine: string,
  fromRelay: Queue.Queue<AgentLink.RelayMessage>
) =>
  Effect.gen(function* () {
    const caller = yield* core.authenticate(credential)
    const fiber = yield* core
      .exec(caller, { machine, argv: ["sleep", "600"] }, undefined)
      .pipe(Stream.runDrain, Effect.forkScoped)
    const open = yield* Queue.take(fromRelay)
    assert.strictEqual(open._tag, "SessionOpen")
    return { fiber, sessionId: open._tag === "SessionOpen" ? open.sessionId : "" }
  })

/** One sweep's time passes; the session's stream fails with the sweep's reason, and the agent is told to close. */
const endsAtTheNextSweep = (
  session: { readonly fiber: Fiber.Fiber<void, unknown>; readonly sessionId: string },
  fromRelay: Queue.Queue<AgentLink.RelayMessage>,
  reason: string
) =>
  Effect.gen(function* () {
    yield* TestClock.adjust("250 millis")
    const error = yield* Effect.flip(Fiber.join(session.fiber))
    assert.strictEqual((error as { _tag: string })._tag, "AccessError")
    assert.include((error as Error).message, reason)
    const close = yield* Queue.take(fromRelay)
    assert.deepStrictEqual(
      [close._tag, close._tag === "SessionClose" ? close.sessionId : ""],
      ["SessionClose", session.sessionId]
    )
  })

describe("account changes reach the very next call", () => {
  it.scoped("from the relay host's CLI: demotion, removal, disabling, a revoked login; no time passes", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const bob = yield* env.member("bob@example.com", env.acme.workspace.id, "member")
      const token = yield* env.login(bob.id)
      const asBob = Effect.flatMap(env.core.authenticate(token), (caller) =>
        env.core.exec(caller, { machine: "anything", argv: ["true"] }, undefined).pipe(Stream.runDrain)
      )
      // A member reaches machines: this one just does not exist.
      assert.strictEqual((yield* Effect.flip(asBob))._tag, "MachineError")
      yield* env.member("bob@example.com", env.acme.workspace.id, "viewer")
      const demoted = yield* Effect.flip(asBob)
      assert.strictEqual(demoted._tag, "AccessError")
      assert.include(demoted.message, "a viewer of workspace acme cannot reach machines")
      yield* env.host.removeMember({ actor: "relay-host", workspaceId: env.acme.workspace.id, userId: bob.id })
      const removed = yield* Effect.flip(env.core.authenticate(token))
      assert.strictEqual(removed._tag, "AccessError")

      const carol = yield* env.member("carol@example.com", env.acme.workspace.id, "owner")
      const carolToken = yield* env.login(carol.id)
      assert.strictEqual((yield* env.core.authenticate(carolToken)).principal, "carol@example.com")
      yield* env.host.setDisabled(carol.id, true)
      assert.strictEqual((yield* Effect.flip(env.core.authenticate(carolToken)))._tag, "AccessError")

      const dave = yield* env.member("dave@example.com", env.acme.workspace.id, "member")
      const daveToken = yield* env.login(dave.id)
      assert.strictEqual((yield* env.core.authenticate(daveToken)).principal, "dave@example.com")
      yield* env.oauth.revoke({ token: Redacted.value(daveToken), client_id: "cmdop-cli" })
      const signedOut = yield* Effect.flip(env.core.authenticate(daveToken))
      assert.include(signedOut.message, "cmdop login")
    })
  )

  it.scoped("live exec sessions end within one sweep: demotion, removal, a revoked login, a revoked key", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const box = yield* agent(env.core, env.acme.apiKey, "box")
      const bob = yield* env.member("bob@example.com", env.acme.workspace.id, "member")
      const bobToken = yield* env.login(bob.id)

      // Nothing changed: a sweep leaves the session alone.
      const first = yield* liveExec(env.core, bobToken, "box", box.fromRelay)
      yield* TestClock.adjust("250 millis")
      yield* TestClock.adjust("250 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(first.fiber)))

      yield* env.member("bob@example.com", env.acme.workspace.id, "viewer")
      yield* endsAtTheNextSweep(first, box.fromRelay, "cannot reach machines any more")

      yield* env.member("bob@example.com", env.acme.workspace.id, "member")
      const second = yield* liveExec(env.core, bobToken, "box", box.fromRelay)
      yield* env.host.removeMember({ actor: "relay-host", workspaceId: env.acme.workspace.id, userId: bob.id })
      yield* endsAtTheNextSweep(second, box.fromRelay, "")

      const carol = yield* env.member("carol@example.com", env.acme.workspace.id, "member")
      const carolToken = yield* env.login(carol.id)
      const third = yield* liveExec(env.core, carolToken, "box", box.fromRelay)
      yield* env.oauth.revoke({ token: Redacted.value(carolToken), client_id: "cmdop-cli" })
      yield* endsAtTheNextSweep(third, box.fromRelay, "cmdop login")

      const ci = yield* env.store.createKey("acme", "ci" as never)
      const fourth = yield* liveExec(env.core, ci.apiKey, "box", box.fromRelay)
      yield* env.store.revokeKey("acme", "ci")
      yield* endsAtTheNextSweep(fourth, box.fromRelay, "does not accept key")
      // The agent, connected with the workspace's first key, is still there.
      assert.isTrue(Option.isNone(yield* Fiber.poll(box.fiber)))
    })
  )

  it.scoped("a person's view of an interactive session is cut within one sweep of their removal", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const box = yield* agent(env.core, env.acme.apiKey, "box")
      const bob = yield* env.member("bob@example.com", env.acme.workspace.id, "member")
      const caller = yield* env.core.authenticate(yield* env.login(bob.id))
      const input = yield* Queue.unbounded<AttachInput>()
      const events = yield* Queue.unbounded<AttachEvent>()
      yield* env.core.attach(caller, { machine: "box", cols: 80, rows: 24 }, Stream.fromQueue(input)).pipe(
        Stream.runForEach((e) => Queue.offer(events, e)),
        Effect.either,
        Effect.forkScoped
      )
      assert.strictEqual((yield* Queue.take(events))._tag, "Attached")
      assert.strictEqual((yield* Queue.take(box.fromRelay))._tag, "SessionOpen")
      yield* TestClock.adjust("250 millis")
      assert.isTrue((yield* Queue.poll(events))._tag === "None")

      yield* env.host.removeMember({ actor: "relay-host", workspaceId: env.acme.workspace.id, userId: bob.id })
      yield* TestClock.adjust("250 millis")
      const ended = yield* Queue.take(events)
      assert.strictEqual(ended._tag, "Ended")
      assert.include(ended._tag === "Ended" ? ended.reason : "", "not a member")
    })
  )

  it.scoped("an agent on a person's login is closed within one sweep of switching the active workspace", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const alice = yield* env.member("alice@example.com", env.acme.workspace.id, "owner")
      yield* env.member("alice@example.com", env.beta.workspace.id, "member")
      const token = yield* env.login(alice.id)
      const laptop = yield* agent(env.core, token, "laptop")
      yield* TestClock.adjust("250 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(laptop.fiber)))
      yield* env.host.setActiveWorkspace(alice.id, env.beta.workspace.id)
      yield* TestClock.adjust("250 millis")
      // The stream ends (the agent then reconnects and registers in beta, which moves the machine).
      yield* Fiber.join(laptop.fiber)
      const caller = yield* env.core.authenticate(token)
      assert.strictEqual(caller.workspaceName, "beta")
    })
  )
})
