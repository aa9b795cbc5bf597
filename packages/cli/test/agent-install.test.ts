/**
 * `cmdop agent install` / `uninstall`, as the user types them, with the real binary and real files in a temp HOME
 * and XDG_CONFIG_HOME: the unit's text (--dry-run), the user unit written and removed, what is said when systemctl
 * is missing or systemd is not running, and the mistakes refused.
 */
import { assert, describe, it } from "@effect/vitest"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { binPath, spawnCli } from "./support.js"

const UNIT = "cmdop-agent.service"

describe("agent install", () => {
  it.scopedLive("--dry-run prints the unit: absolute node and cmdop, the flags given, Restart=on-failure", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const xdg = path.join(home, "xdg")
      // $ cmdop agent install --dry-run --server relay.example:50051 --permissions ./perm.yaml
      const perm = path.join(home, "perm.yaml")
      // A file named with --permissions must be there: the unit's agent would refuse to start without it.
      const missing = yield* spawnCli(
        home,
        ["agent", "install", "--dry-run", "--server", "relay.example:50051", "--permissions", perm],
        { XDG_CONFIG_HOME: xdg }
      )
      assert.strictEqual(missing.code, 255, missing.stderr)
      assert.include(missing.stderr, `${perm}: no such file, so the agent would run without a gate`)
      assert.strictEqual(missing.stdout, "")
      fs.writeFileSync(perm, "default: {key: allow, user: allow, guest: deny}\n")
      const r = yield* spawnCli(
        home,
        ["agent", "install", "--dry-run", "--server", "relay.example:50051", "--permissions", perm],
        { XDG_CONFIG_HOME: xdg }
      )
      assert.strictEqual(r.code, 0, r.stderr)
      const unitPath = path.join(xdg, "systemd", "user", UNIT)
      assert.strictEqual(r.stderr, `would write ${unitPath} (nothing changed: --dry-run):\n`)
      const cmdop = fs.realpathSync(binPath)
      assert.include(
        r.stdout,
        `\nExecStart=${process.execPath} ${cmdop} agent start --foreground --server relay.example:50051 --permissions ${perm}\n`
      )
      assert.include(r.stdout, "\nRestart=on-failure\n")
      assert.include(r.stdout, "\n[Install]\nWantedBy=default.target\n")
      assert.notInclude(r.stdout, "User=")
      assert.isFalse(fs.existsSync(unitPath), "--dry-run writes nothing")

      // $ cmdop agent install --system --dry-run --json
      const sys = JSON.parse((yield* spawnCli(home, ["agent", "install", "--system", "--dry-run", "--json"])).stdout)
      assert.strictEqual(sys.unit_path, `/etc/systemd/system/${UNIT}`)
      assert.strictEqual(sys.written, false)
      assert.include(sys.unit, `\nUser=${os.userInfo().username}\nEnvironment=HOME=${home}\n`)
      assert.include(sys.unit, "\nWantedBy=multi-user.target\n")
      assert.notInclude(sys.unit, "CMDOP_TLS_CA")

      // The relay's CA this shell trusts it with goes into the unit (by absolute path): the service needs it too.
      const tls = yield* spawnCli(home, ["agent", "install", "--dry-run", "--server", "https://relay.example:50051"], {
        XDG_CONFIG_HOME: xdg,
        CMDOP_TLS_CA: "ca.pem"
      })
      assert.strictEqual(tls.code, 0, tls.stderr)
      assert.include(tls.stdout, `\nEnvironment=CMDOP_TLS_CA=${path.resolve(process.cwd(), "ca.pem")}\n`)
      assert.deepStrictEqual(sys.commands, ["systemctl daemon-reload", `systemctl enable --now ${UNIT}`])
    })
  )

  it.scopedLive(
    "without systemctl: the user unit is written, and the exact commands are printed; uninstall removes it",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make()
        const xdg = path.join(home, "xdg")
        const env = { XDG_CONFIG_HOME: xdg, PATH: path.join(home, "empty-bin") }
        // $ cmdop agent install --server 10.0.0.5:50051        (PATH has no systemctl)
        const r = yield* spawnCli(home, ["agent", "install", "--server", "10.0.0.5:50051"], env)
        assert.strictEqual(r.code, 0, r.stderr)
        const unitPath = path.join(xdg, "systemd", "user", UNIT)
        assert.strictEqual(r.stdout, `wrote ${unitPath}\n`)
        assert.strictEqual(
          r.stderr,
          [
            "systemctl is not on this machine's PATH, so nothing is enabled yet. Where systemd runs, enable it with:",
            "  systemctl --user daemon-reload",
            `  systemctl --user enable --now ${UNIT}`,
            `  loginctl enable-linger ${os.userInfo().username}   # start at boot, before any login`,
            ""
          ].join("\n")
        )
        const unit = fs.readFileSync(unitPath, "utf8")
        assert.strictEqual(fs.statSync(unitPath).mode & 0o777, 0o644)
        assert.include(unit, "agent start --foreground --server 10.0.0.5:50051\n")
        // The file is what --dry-run shows.
        const dry = yield* spawnCli(home, ["agent", "install", "--dry-run", "--server", "10.0.0.5:50051"], env)
        assert.strictEqual(dry.stdout, unit)

        // $ cmdop agent uninstall
        const u = yield* spawnCli(home, ["agent", "uninstall"], env)
        assert.strictEqual(u.code, 0, u.stderr)
        assert.strictEqual(u.stdout, `removed ${unitPath}\n`)
        assert.include(
          u.stderr,
          `systemctl is not on this machine's PATH; where systemd runs the unit, also: systemctl --user disable --now ${UNIT} && systemctl --user daemon-reload`
        )
        assert.isFalse(fs.existsSync(unitPath))
        const again = yield* spawnCli(home, ["agent", "uninstall", "--json"], env)
        assert.strictEqual(again.code, 0)
        assert.deepStrictEqual(JSON.parse(again.stdout), { unit_path: unitPath, scope: "user", removed: false })
      })
  )

  it.runIf(!fs.existsSync("/run/systemd/system") && fs.existsSync("/usr/bin/systemctl"))(
    "with systemctl but systemd not running (this container): said so, unit written",
    async () => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "cmdop-install-"))
      try {
        const xdg = path.join(home, "xdg")
        const r = await Effect.runPromise(
          spawnCli(home, ["agent", "install", "--json"], { XDG_CONFIG_HOME: xdg, PATH: "/usr/bin" })
        )
        assert.strictEqual(r.code, 0, r.stderr)
        const out = JSON.parse(r.stdout)
        assert.strictEqual(out.written, true)
        assert.strictEqual(out.enabled, false)
        assert.match(out.systemd, /^systemd is not running here \(no \/run\/systemd\/system/)
        assert.isTrue(fs.existsSync(path.join(xdg, "systemd", "user", UNIT)))
      } finally {
        fs.rmSync(home, { recursive: true, force: true })
      }
    }
  )

  it.scopedLive("mistakes are refused and change nothing: a key on the unit, --user with --system", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const xdg = path.join(home, "xdg")
      const key = yield* spawnCli(home, ["agent", "install", "-k", "ck_live_AAAAaaaa1111bbbb2222cccc3333dddd"], {
        XDG_CONFIG_HOME: xdg
      })
      assert.strictEqual(key.code, 2)
      assert.include(key.stderr, "agent install takes no --api-key: the unit file would hold it in clear")
      const both = yield* spawnCli(home, ["agent", "install", "--user", "--system"], { XDG_CONFIG_HOME: xdg })
      assert.strictEqual(both.code, 2)
      assert.strictEqual(both.stderr, "cmdop: --user and --system exclude each other: pick one\n")
      assert.isFalse(fs.existsSync(xdg))
    })
  )
})
