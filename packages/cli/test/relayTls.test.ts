/**
 * `relay serve --tls-cert/--tls-key` with certificates made by `openssl` for the test: an expired or not-yet-valid
 * certificate (the server's own, or one further up its chain) is refused before anything listens, naming the file
 * and the date; one that expires within 14 days is served with a warning, and `/healthz` and `/metrics` report its
 * notAfter; a fresh one without. A running relay checks again once a day (on the TestClock). Files that are not
 * what the flag wants (a directory, a missing or unreadable file, a key with a passphrase, DER, the two swapped)
 * are refused naming the flag, the file and the fix.
 */
import * as CapturedConsole from "@cmdop/test-helpers/CapturedConsole"
import * as Processes from "@cmdop/testkit/Processes"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as RelayTls from "../src/commands/relayTls.js"
import { cli } from "./support.js"

const DAY_MS = 24 * 60 * 60 * 1000

/** `2026-11-28 10:12:22 UTC`, as the relay prints a date. */
const utc = (date: Date): string => `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`

/** A date as `openssl ca -startdate/-enddate` takes it (whole seconds, GeneralizedTime). */
const asn1 = (date: Date): string => `${date.toISOString().slice(0, 19).replace(/[-T:]/g, "")}Z`

const openssl = (cwd: string, args: ReadonlyArray<string>) =>
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] })

/**
 * A certificate for localhost valid from `notBefore` to `notAfter`, signed by `issuer` (else by its own key), in
 * `<name>.crt` / `<name>.key` under `dir`. `openssl ca` is the one openssl 3.0 command that takes both dates.
 */
const certificate = (
  dir: string,
  name: string,
  validity: { readonly notBefore: Date; readonly notAfter: Date; readonly ca?: boolean },
  issuer?: string
): { readonly cert: string; readonly key: string } => {
  const work = fs.mkdtempSync(path.join(dir, `${name}-ca-`))
  const cert = path.join(dir, `${name}.crt`)
  const key = path.join(dir, `${name}.key`)
  fs.writeFileSync(path.join(work, "index.txt"), "")
  fs.writeFileSync(path.join(work, "serial"), `${Date.now().toString(16).padStart(16, "0")}\n`)
  fs.writeFileSync(
    path.join(work, "ca.cnf"),
    [
      "[ca]",
      "default_ca = d",
      "[d]",
      "database = index.txt",
      "new_certs_dir = .",
      "serial = serial",
      "default_md = sha256",
      "policy = p",
      "unique_subject = no",
      "x509_extensions = ext",
      "[p]",
      "commonName = supplied",
      "[ext]",
      validity.ca === true ? "basicConstraints = critical,CA:true" : "subjectAltName = DNS:localhost,IP:127.0.0.1",
      ""
    ].join("\n")
  )
  openssl(work, [
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    key,
    "-out",
    "req.csr"
  ])
  openssl(work, [
    "ca",
    "-batch",
    "-config",
    "ca.cnf",
    ...(issuer === undefined
      ? ["-selfsign", "-keyfile", key]
      : ["-cert", `${path.join(dir, issuer)}.crt`, "-keyfile", `${path.join(dir, issuer)}.key`]),
    "-in",
    "req.csr",
    "-out",
    cert,
    "-notext",
    "-startdate",
    asn1(validity.notBefore),
    "-enddate",
    asn1(validity.notAfter)
  ])
  return { cert, key }
}

const serveArgs = (cert: string, key: string) => [
  "relay",
  "serve",
  "--grpc-port",
  "0",
  "--http-port",
  "0",
  "--tls-cert",
  cert,
  "--tls-key",
  key
]

/** `relay serve` in-process, which a refused certificate ends at once (a served one would run until the timeout). */
const refused = (home: string, cert: string, key: string) =>
  cli(home, serveArgs(cert, key)).pipe(
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("relay serve started: nothing refused") })
  )

describe("relay serve --tls-cert: the certificate's dates", () => {
  it.scopedLive("an expired or not-yet-valid certificate is refused before anything listens, naming the date", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-relay-tls-")
      const now = Date.now()
      const expiredAt = new Date(Math.floor((now - 30 * DAY_MS) / 1000) * 1000)
      const expired = certificate(home, "expired", { notBefore: new Date(now - 400 * DAY_MS), notAfter: expiredAt })
      const r = yield* refused(home, expired.cert, expired.key)
      assert.strictEqual(r.code, 2, r.stderr)
      assert.strictEqual(r.stdout, "")
      assert.strictEqual(r.stderr.split("\n").length, 2, r.stderr)
      assert.include(
        r.stderr,
        `cmdop: --tls-cert ${expired.cert} expired on ${utc(expiredAt)} (notAfter, 30 days ago): clients refuse it; renew it and restart the relay with the new file (for a test relay a self-signed one: openssl req -x509`
      )
      // The relay never started: no data dir was made.
      assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "relay")), "nothing was opened")

      const validFrom = new Date(Math.floor((now + 3 * DAY_MS) / 1000) * 1000)
      const future = certificate(home, "future", { notBefore: validFrom, notAfter: new Date(now + 400 * DAY_MS) })
      const early = yield* refused(home, future.cert, future.key)
      assert.strictEqual(early.code, 2, early.stderr)
      assert.include(
        early.stderr,
        `cmdop: --tls-cert ${future.cert} is not valid until ${utc(validFrom)} (notBefore; it is `
      )
      assert.include(early.stderr, "check this machine's clock, or use a certificate valid from now")
    })
  )

  it.scopedLive("an expired certificate further up the chain is refused, named by its place and subject", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-relay-tls-chain-")
      const now = Date.now()
      const expiredAt = new Date(Math.floor((now - 2 * DAY_MS) / 1000) * 1000)
      certificate(home, "old-ca", { notBefore: new Date(now - 400 * DAY_MS), notAfter: expiredAt, ca: true })
      const leaf = certificate(
        home,
        "leaf",
        { notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 90 * DAY_MS) },
        "old-ca"
      )
      const chain = path.join(home, "chain.crt")
      fs.writeFileSync(
        chain,
        fs.readFileSync(leaf.cert, "utf8") + fs.readFileSync(path.join(home, "old-ca.crt"), "utf8")
      )
      const r = yield* refused(home, chain, leaf.key)
      assert.strictEqual(r.code, 2, r.stderr)
      assert.include(
        r.stderr,
        `cmdop: certificate 2 of the chain in --tls-cert ${chain} (CN=old-ca) expired on ${utc(expiredAt)} (notAfter, 2 days ago)`
      )
    })
  )

  it.scopedLive(
    "a certificate that expires within 14 days is served with a warning; one valid for longer without",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-relay-tls-soon-")
        const now = Date.now()
        const endsAt = new Date(Math.floor((now + 5 * DAY_MS + 3_600_000) / 1000) * 1000)
        const soon = certificate(home, "soon", { notBefore: new Date(now - 85 * DAY_MS), notAfter: endsAt })
        const relay = yield* Processes.daemon(
          home,
          [...serveArgs(soon.cert, soon.key), "--data-dir", path.join(home, "soon-data")],
          /relay serving: grpc \S+ \(TLS\)/
        )
        assert.include(
          relay.output(),
          `cmdop: warning: --tls-cert ${soon.cert} expires on ${utc(endsAt)} (notAfter, in 5 days): renew it and restart the relay with the new file before then, or clients will refuse it\n`
        )
        // Monitoring reads the date off the HTTP port.
        const http = /, http (http:\/\/\S+), store/.exec(relay.output())?.[1]
        assert.isDefined(http, relay.output())
        const health = yield* Effect.promise(() => fetch(`${http}/healthz`))
        assert.strictEqual(health.status, 200)
        assert.deepStrictEqual(yield* Effect.promise(() => health.json()), {
          status: "ok",
          tls: { notAfter: endsAt.toISOString() }
        })
        const metrics = yield* Effect.promise(() => fetch(`${http}/metrics`).then((r) => r.text()))
        assert.include(metrics, `\ncmdop_tls_certificate_not_after_seconds ${endsAt.getTime() / 1000}\n`)
        yield* relay.stop()

        const fresh = certificate(home, "fresh", {
          notBefore: new Date(now - DAY_MS),
          notAfter: new Date(now + 15 * DAY_MS)
        })
        const quiet = yield* Processes.daemon(
          home,
          [...serveArgs(fresh.cert, fresh.key), "--data-dir", path.join(home, "fresh-data")],
          /relay serving: grpc \S+ \(TLS\)/
        )
        assert.notInclude(quiet.output(), "warning")
        assert.notInclude(quiet.output(), "expires")
      }),
    60_000
  )

  it.scoped(
    "the notAfter reported is the chain's first to come: an intermediate's when it ends before the server's",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-relay-tls-first-")
        const now = Date.now()
        const caEnds = new Date(Math.floor((now + 30 * DAY_MS) / 1000) * 1000)
        certificate(home, "short-ca", { notBefore: new Date(now - DAY_MS), notAfter: caEnds, ca: true })
        const leaf = certificate(
          home,
          "leaf",
          { notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 90 * DAY_MS) },
          "short-ca"
        )
        const chain = path.join(home, "chain.crt")
        fs.writeFileSync(
          chain,
          fs.readFileSync(leaf.cert, "utf8") + fs.readFileSync(path.join(home, "short-ca.crt"), "utf8")
        )
        yield* TestClock.setTime(now)
        const identity = yield* RelayTls.load(chain, leaf.key)
        assert.strictEqual(identity.notAfter.toISOString(), caEnds.toISOString())
      })
  )

  it.scoped(
    "a running relay checks the certificate it serves once a day: a warning within 14 days, then an error",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-relay-tls-daily-")
        const now = Math.floor(Date.now() / 1000) * 1000
        // 20.5 days left at the start: quiet for six days, a warning a day from the seventh.
        const endsAt = new Date(now + 20 * DAY_MS + DAY_MS / 2)
        const daily = certificate(home, "daily", { notBefore: new Date(now - 60 * DAY_MS), notAfter: endsAt })
        const captured = CapturedConsole.make()
        const lines = () =>
          captured
            .stderr()
            .split("\n")
            .filter((l) => l !== "")
        yield* TestClock.setTime(now)
        yield* RelayTls.watch(daily.cert, fs.readFileSync(daily.cert, "utf8")).pipe(
          Effect.withConsole(captured.console)
        )
        const warning = (left: string) =>
          `cmdop: warning: --tls-cert ${daily.cert} expires on ${utc(endsAt)} (notAfter, in ${left}): renew it and restart the relay with the new file before then, or clients will refuse it`
        assert.deepStrictEqual(lines(), [])
        yield* TestClock.adjust("6 days")
        assert.deepStrictEqual(lines(), [])
        yield* TestClock.adjust("1 day")
        assert.deepStrictEqual(lines(), [warning("13 days")])
        yield* TestClock.adjust("1 day")
        assert.deepStrictEqual(lines(), [warning("13 days"), warning("12 days")])
        // One line a day up to the end (day 20: less than a day left), then the error, day after day.
        yield* TestClock.adjust("13 days")
        const said = lines()
        assert.strictEqual(said.length, 15, said.join("\n"))
        assert.strictEqual(said[13], warning("less than a day"))
        const expired = (ago: string) =>
          `cmdop: error: --tls-cert ${daily.cert} expired on ${utc(endsAt)} (notAfter, ${ago} ago): clients refuse it; renew it and restart the relay with the new file`
        assert.include(said[14], expired("less than a day"))
        yield* TestClock.adjust("1 day")
        assert.strictEqual(lines().length, 16)
        assert.include(lines()[15], expired("1 day"))
      })
  )
})

describe("relay serve --tls-cert/--tls-key: files that are not what the flag wants", () => {
  it.scopedLive("each is refused before anything listens, naming the flag, the file and the fix", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-relay-tls-files-")
      const now = Date.now()
      const good = certificate(home, "good", {
        notBefore: new Date(now - DAY_MS),
        notAfter: new Date(now + 90 * DAY_MS)
      })
      const refusal = (cert: string, key: string) =>
        Effect.map(refused(home, cert, key), (r) => {
          assert.strictEqual(r.code, 2, r.stderr)
          assert.strictEqual(r.stdout, "")
          // One line: @effect/cli's own "Expected path 'x' to be a regular file" and a blank line named no flag.
          assert.strictEqual(r.stderr.split("\n").length, 2, r.stderr)
          return r.stderr
        })

      const dir = path.join(home, "live")
      fs.mkdirSync(dir)
      fs.copyFileSync(good.cert, path.join(dir, "fullchain.pem"))
      fs.copyFileSync(good.key, path.join(dir, "privkey.pem"))
      assert.strictEqual(
        yield* refusal(dir, good.key),
        `cmdop: --tls-cert ${dir} is a directory: give the file in it that holds the PEM certificate chain (it has fullchain.pem, privkey.pem)\n`
      )
      assert.include(yield* refusal(good.cert, dir), `cmdop: --tls-key ${dir} is a directory: give the file in it`)

      const missing = path.join(home, "nope.pem")
      assert.include(yield* refusal(good.cert, missing), `cmdop: --tls-key ${missing}: no such file: check the path`)

      const encrypted = path.join(home, "encrypted.key")
      openssl(home, ["pkey", "-in", good.key, "-aes256", "-passout", "pass:secret", "-out", encrypted])
      assert.strictEqual(
        yield* refusal(good.cert, encrypted),
        `cmdop: --tls-key ${encrypted} is encrypted with a passphrase, which the relay cannot type: give it the key decrypted (openssl pkey -in ${encrypted} -out key.pem, then chmod 600 key.pem)\n`
      )

      const der = path.join(home, "good.der")
      openssl(home, ["x509", "-in", good.cert, "-outform", "DER", "-out", der])
      assert.include(
        yield* refusal(der, good.key),
        `cmdop: --tls-cert ${der} is not PEM (-----BEGIN CERTIFICATE-----); if it is a DER certificate, convert it: openssl x509 -inform DER -in ${der} -out cert.pem`
      )
      assert.include(
        yield* refusal(good.key, good.cert),
        `cmdop: --tls-cert ${good.key} holds a private key, not a certificate: are --tls-cert and --tls-key swapped?`
      )
      const text = path.join(home, "hello.txt")
      fs.writeFileSync(text, "hello\n")
      assert.include(
        yield* refusal(good.cert, text),
        `cmdop: --tls-key ${text} is not PEM (-----BEGIN PRIVATE KEY-----)`
      )

      // chmod 000 keeps out everyone but root, whom nothing keeps out.
      if (process.getuid?.() !== 0) {
        const locked = path.join(home, "locked.key")
        fs.copyFileSync(good.key, locked)
        fs.chmodSync(locked, 0o000)
        assert.include(yield* refusal(good.cert, locked), `cmdop: --tls-key ${locked} is not readable by `)
      }
      assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "relay")), "nothing was opened")
    })
  )
})
