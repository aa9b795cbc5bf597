/**
 * The CLI side of `cmdop login`: `workspace sync`'s upsert rule (pure), and against a real relay in this process
 * (`RelayServer.serveWith`, memory stores, 127.0.0.1) the `token.json` session as the credential chain's last
 * step: refreshed before it expires (the file rewritten 0600), `workspace sync` over it, the errors without a
 * login and with a revoked one, and `logout` revoking at the relay and deleting the file.
 */
import * as Accounts from "@cmdop/accounts/Accounts"
import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as OAuthServer from "@cmdop/accounts/OAuthServer"
import * as Workspace from "@cmdop/domain/Workspace"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as OAuthSessionLive from "@cmdop/node/OAuthSessionLive"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert, describe, it } from "@effect/vitest"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as http2 from "node:http2"
import * as path from "node:path"
import * as Layers from "../src/Layers.js"
import { merge } from "../src/commands/workspaceSync.js"
import { runMain } from "./support.js"

const NOW = "2026-11-26T12:00:00Z"
const name = Workspace.WorkspaceName.make

describe("workspace sync: the upsert", () => {
  it("matches by remote_id, then by name; keeps keys and servers; adds the rest; deletes nothing", () => {
    const key = Redacted.make("ck_live_keepkeepkeepkeepkeepkeep")
    const file: Workspace.WorkspaceFile = {
      active: name("mine"),
      workspaces: [
        { name: name("prod"), api_key: key, remote_id: "ws_1", remote_name: "Old name" },
        { name: name("acme"), server: "relay:1" },
        { name: name("mine") }
      ]
    }
    const r = merge(
      file,
      [
        { id: "ws_1", name: "production", role: "owner", active: true },
        { id: "ws_2", name: "acme", role: "member", active: false },
        { id: "ws_3", name: "beta", role: "viewer", active: false },
        { id: "ws_4", name: "prod", role: "viewer", active: false }
      ],
      NOW,
      "relay.example:50051"
    )
    assert.deepStrictEqual([r.added, r.updated, r.unchanged], [["beta", "prod-2"], ["prod", "acme"], ["mine"]])
    assert.strictEqual(r.file.active, "mine")
    assert.deepStrictEqual(r.file.workspaces[0], {
      name: name("prod"),
      api_key: key,
      remote_id: "ws_1",
      remote_name: "production",
      last_synced_at: NOW
    })
    assert.deepStrictEqual(r.file.workspaces[1], {
      name: name("acme"),
      server: "relay:1",
      remote_id: "ws_2",
      remote_name: "acme",
      last_synced_at: NOW
    })
    assert.deepStrictEqual(r.file.workspaces[3], {
      name: name("beta"),
      server: "relay.example:50051",
      remote_id: "ws_3",
      remote_name: "beta",
      last_synced_at: NOW
    })
    // Syncing again changes nothing but the timestamps: everything is matched by its remote id now.
    const again = merge(r.file, [{ id: "ws_3", name: "beta", role: "viewer", active: false }], NOW, "x")
    assert.deepStrictEqual([again.added, again.updated], [[], ["beta"]])
  })
})

/** A relay in this process, alice (owner of acme) and a login for her obtained through the real endpoints. */
const relayWithLogin = Effect.gen(function* () {
  const relayStore = yield* Layer.build(RelayStore.layerMemory)
  const accountStore = yield* Layer.build(AccountStore.layerMemory)
  const running = yield* RelayServer.serveWith(
    { grpcPort: 0, httpPort: 0, host: "127.0.0.1", accounts: Layer.succeedContext(accountStore) },
    "memory"
  ).pipe(Effect.provide(relayStore))
  const acme = yield* Context.get(relayStore, RelayStore.RelayStore).createWorkspace(name("acme"))
  const services = yield* Layer.build(
    Layer.merge(Accounts.layer(), OAuthServer.layer(OAuthServer.defaultConfig(running.httpAddress))).pipe(
      Layer.provide(Layer.succeedContext(accountStore))
    )
  )
  const added = yield* Context.get(services, Accounts.Accounts).addMember({
    actor: "relay-host",
    email: "alice@example.com",
    workspaceId: acme.workspace.id,
    role: "owner"
  })
  const post = (endpoint: string, body: Record<string, string>) =>
    Effect.promise(async () => {
      const r = await fetch(`${running.httpAddress}${endpoint}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(body).toString()
      })
      const text = await r.text()
      return (text === "" ? {} : JSON.parse(text)) as Record<string, string & number>
    })
  const started = yield* post("/oauth/device_authorization", { client_id: "cmdop-cli" })
  yield* Context.get(services, OAuthServer.OAuthServer).approveDevice(added.user.id, started.user_code)
  const tokens = yield* post("/oauth/token", {
    grant_type: "urn:ietf:params:oauth:grant-type:device_code",
    device_code: started.device_code,
    client_id: "cmdop-cli"
  })
  return { running, tokens, post }
})

const tokenFile = (home: string) => path.join(home, ".cmdop", "token.json")

/**
 * Writes the `token.json` a `cmdop login` to `running` leaves (0600, in a fresh `.cmdop`): its tokens, the access
 * token taken as good for `expiresInMs` more.
 */
const writeLogin = (
  home: string,
  running: { readonly httpAddress: string; readonly grpcAddress: string },
  tokens: Readonly<Record<string, string>>,
  expiresInMs: number
): OAuthSessionLive.TokenFile => {
  const written: OAuthSessionLive.TokenFile = {
    issuer: running.httpAddress,
    token_endpoint: `${running.httpAddress}/oauth/token`,
    revocation_endpoint: `${running.httpAddress}/oauth/revoke`,
    server: running.grpcAddress,
    access_token: tokens["access_token"]!,
    refresh_token: tokens["refresh_token"]!,
    expires_at: Date.now() + expiresInMs
  }
  fs.mkdirSync(path.join(home, ".cmdop"), { recursive: true, mode: 0o700 })
  fs.writeFileSync(tokenFile(home), JSON.stringify(written), { mode: 0o600 })
  return written
}

/** `cmdop <args>` in-process with the live layers and the token.json session, HOME at `home`. */
const cli = (home: string, args: ReadonlyArray<string>) =>
  runMain(args, {
    env: { HOME: home },
    services: Layers.layerLive(
      CmdopPaths.layerHome(home),
      OAuthSessionLive.layer.pipe(Layer.provide(Layer.merge(CmdopPaths.layerHome(home), NodeFileSystem.layer)))
    )
  })

describe("the token.json session", () => {
  it.scopedLive("refreshes before expiry, serves sync, and logout revokes at the relay and deletes the file", () =>
    Effect.gen(function* () {
      const { running, tokens } = yield* relayWithLogin
      const home = yield* TempHome.make("cmdop-login-")
      const noLogin = yield* cli(home, ["connect", "workspace", "sync"])
      assert.strictEqual(noLogin.code, 255)
      assert.include(noLogin.stderr, 'run "cmdop login" first')

      // A login with one minute left: inside the refresh margin, so the next call refreshes it first.
      writeLogin(home, running, tokens, 60_000)
      const who = yield* cli(home, ["connect", "whoami", "--json"])
      assert.strictEqual(who.code, 0, who.stderr)
      const view = JSON.parse(who.stdout)
      assert.deepStrictEqual(
        [view.source, view.relay.workspace, view.relay.principal],
        ["oauth", "acme", "alice@example.com"]
      )
      const refreshed = JSON.parse(fs.readFileSync(tokenFile(home), "utf8")) as OAuthSessionLive.TokenFile
      assert.notStrictEqual(refreshed.access_token, tokens.access_token)
      assert.notStrictEqual(refreshed.refresh_token, tokens.refresh_token)
      assert.isAbove(refreshed.expires_at, Date.now() + 71 * 3600_000)
      assert.strictEqual(fs.statSync(tokenFile(home)).mode & 0o777, 0o600)

      // A --server naming another relay is refused, not ignored: sync lists the login's relay's workspaces.
      const elsewhere = yield* cli(home, ["connect", "workspace", "sync", "--server", "127.0.0.1:9"])
      assert.notStrictEqual(elsewhere.code, 0)
      assert.include(
        elsewhere.stderr,
        `workspace sync lists the workspaces of the relay your login is for, ${running.grpcAddress}, not 127.0.0.1:9`
      )
      const synced = yield* cli(home, ["connect", "workspace", "sync"])
      assert.strictEqual(synced.code, 0, synced.stderr)
      assert.include(synced.stdout, "added: acme")

      const out = yield* cli(home, ["logout"])
      assert.strictEqual(out.code, 0, out.stderr)
      assert.isFalse(fs.existsSync(tokenFile(home)))
      // The relay revoked the whole login: the refreshed access token is refused.
      const replay = yield* cli(home, [
        "connect",
        "whoami",
        "--json",
        "--api-key",
        refreshed.access_token,
        "--server",
        running.grpcAddress
      ])
      assert.include(replay.stdout, `"relay": null`)
      assert.strictEqual(replay.code, 255, "a refused credential fails whoami")
      assert.include(replay.stderr, `the relay at ${running.grpcAddress} refuses this key`)
    })
  )

  it.scopedLive(
    "logout with the relay out of reach: the login goes here, and the output says it still works there",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-logout-")
        fs.mkdirSync(path.join(home, ".cmdop"), { mode: 0o700 })
        // Nothing listens on port 1 of the loopback: the revocation request is refused at once.
        const dead = "http://127.0.0.1:1"
        fs.writeFileSync(
          tokenFile(home),
          JSON.stringify({
            issuer: dead,
            token_endpoint: `${dead}/oauth/token`,
            revocation_endpoint: `${dead}/oauth/revoke`,
            server: "127.0.0.1:2",
            access_token: "cmdop_x",
            refresh_token: "clitr_x",
            expires_at: Date.now() + 60_000
          }),
          { mode: 0o600 }
        )
        const out = yield* cli(home, ["logout"])
        assert.strictEqual(out.code, 0, out.stderr)
        assert.isFalse(fs.existsSync(tokenFile(home)))
        assert.include(out.stdout, "logged out of 127.0.0.1:2")
        assert.include(
          out.stderr,
          "the login was deleted here only: its tokens stay valid at the relay until they expire"
        )
        const json = yield* cli(home, ["logout", "--json"])
        assert.deepStrictEqual(JSON.parse(json.stdout), { logged_out: false, revoked: false, server: null })
      })
  )

  it.scopedLive("a revoked login makes sync say to log in again", () =>
    Effect.gen(function* () {
      const { running, tokens, post } = yield* relayWithLogin
      const home = yield* TempHome.make("cmdop-login-")
      writeLogin(home, running, tokens, 3600_000)
      yield* post("/oauth/revoke", { token: tokens.refresh_token, client_id: "cmdop-cli" })
      const synced = yield* cli(home, ["connect", "workspace", "sync"])
      assert.strictEqual(synced.code, 255)
      assert.include(synced.stderr, 'log in again with "cmdop login"')
    })
  )
  it.scopedLive("a --web-url without http:// or https:// says so, before anything is fetched", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-login-")
      for (const web of ["127.0.0.1:8080", "relay.example", "ftp://relay.example"]) {
        const r = yield* cli(home, ["login", "--server", "127.0.0.1:1", "--web-url", web, "--no-browser"])
        assert.strictEqual(r.code, 255, web)
        assert.include(r.stderr, `the relay's web address "${web}" is not an http:// or https:// URL`, web)
        assert.notInclude(r.stderr, "Invalid URL")
        assert.notInclude(r.stderr, "only requests to HTTPS")
      }
    })
  )

  it.scopedLive("login finds the web address recorded for its relay however --server spells it", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-login-")
      fs.mkdirSync(path.join(home, ".cmdop"), { mode: 0o700 })
      // As cmdop up records it (nothing listens at either port: the error names the address login chose).
      fs.writeFileSync(
        path.join(home, ".cmdop", "ssh_workspaces.json"),
        JSON.stringify({
          active: "local",
          workspaces: [{ name: "local", server: "127.0.0.1:1", web_url: "http://127.0.0.1:2" }]
        }),
        { mode: 0o600 }
      )
      for (const server of ["localhost:1", "http://127.0.0.1:1/", "LOCALHOST:1"]) {
        const r = yield* cli(home, ["login", "--server", server, "--no-browser"])
        assert.strictEqual(r.code, 255, server)
        assert.include(
          r.stderr,
          `cannot reach the relay's login at http://127.0.0.1:2 (recorded for relay ${server} in workspace "local")`,
          server
        )
      }
      // Another relay does not take it.
      const other = yield* cli(home, ["login", "--server", "127.0.0.1:3", "--no-browser"])
      assert.include(other.stderr, "http://127.0.0.1:8080 (relay 127.0.0.1:3's default web port)")
    })
  )

  it.scopedLive("an access token the relay refuses is refreshed once and the call goes through", () =>
    Effect.gen(function* () {
      const { running, tokens } = yield* relayWithLogin
      const home = yield* TempHome.make("cmdop-login-")
      // The file says the access token is good for an hour, but the relay does not know it.
      writeLogin(home, running, { ...tokens, access_token: "cmdop_" + "x".repeat(43) }, 3600_000)
      const listed = yield* cli(home, ["connect", "--list", "--json"])
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.deepStrictEqual(JSON.parse(listed.stdout).machines, [])
      const stored = JSON.parse(fs.readFileSync(tokenFile(home), "utf8")) as OAuthSessionLive.TokenFile
      assert.notStrictEqual(stored.refresh_token, tokens.refresh_token)
    })
  )

  it.scopedLive(
    "the login's token goes to its own relay only: another relay named by a workspace or --server gets nothing",
    () =>
      Effect.gen(function* () {
        const { running, tokens } = yield* relayWithLogin
        const home = yield* TempHome.make("cmdop-login-bound-")
        writeLogin(home, running, tokens, 3600_000)
        // Another server: it records every request it is sent (a relay that would keep the token it was given).
        const seen: Array<http2.IncomingHttpHeaders> = []
        const other = http2.createServer()
        other.on("stream", (stream, headers) => {
          seen.push(headers)
          stream.respond(
            { ":status": 200, "content-type": "application/grpc", "grpc-status": "16" },
            { endStream: true }
          )
        })
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => {
            other.listen(0, "127.0.0.1", () => resume(Effect.void))
          }),
          () => Effect.sync(() => other.close())
        )
        const otherAddress = `127.0.0.1:${(other.address() as { port: number }).port}`

        // A workspace of that server with no key of its own, made active: the call used to carry the login's token.
        const added = yield* cli(home, ["connect", "workspace", "add", "w2", "--server", otherAddress])
        assert.strictEqual(added.code, 0, added.stderr)
        yield* cli(home, ["connect", "workspace", "use", "w2"])
        const listed = yield* cli(home, ["connect", "--list"])
        assert.notStrictEqual(listed.code, 0)
        assert.include(
          listed.stderr,
          `your login is not sent to this relay: it is for the relay ${running.grpcAddress}`
        )
        assert.include(listed.stderr, `cmdop login --server ${otherAddress}`)
        assert.notInclude(listed.stderr, tokens.access_token)
        // Nor with --server.
        yield* cli(home, ["connect", "workspace", "remove", "w2"])
        const flagged = yield* cli(home, ["connect", "whoami", "--server", otherAddress])
        assert.notStrictEqual(flagged.code, 0)
        assert.include(flagged.stderr, `this call goes to ${otherAddress} (--server)`)
        // Nor with a list that names its relay after the other server: the first that answers gets the call.
        const inList = yield* cli(home, ["connect", "whoami", "--server", `${otherAddress},${running.grpcAddress}`])
        assert.notStrictEqual(inList.code, 0)
        assert.include(inList.stderr, `whose node ${otherAddress} is not that relay's`)
        assert.notInclude(inList.stderr, tokens.access_token)
        // Nor a workspace's key stored for that server over TLS, sent to it in plaintext.
        const key = "ck_live_" + "t".repeat(32)
        const tls = yield* cli(home, [
          "connect",
          "key",
          "set",
          key,
          "--workspace",
          "t",
          "--server",
          `https://${otherAddress}`
        ])
        assert.strictEqual(tls.code, 0, tls.stderr)
        const plain = yield* cli(home, ["connect", "--list", "--workspace", "t", "--server", otherAddress])
        assert.notStrictEqual(plain.code, 0)
        assert.include(plain.stderr, `in plaintext, which shows it to the network; use https://${otherAddress} instead`)
        assert.notInclude(plain.stderr, key)
        yield* cli(home, ["connect", "workspace", "remove", "t"])
        assert.deepStrictEqual(seen, [], "the other server was sent a request")
        // Its own relay, spelled another way, still takes it.
        const own = yield* cli(home, [
          "connect",
          "whoami",
          "--json",
          "--server",
          running.grpcAddress.replace("127.0.0.1", "localhost")
        ])
        assert.strictEqual(own.code, 0, own.stderr)
        assert.strictEqual(JSON.parse(own.stdout).source, "oauth")
      })
  )
})
