/**
 * `relay serve --tls-cert/--tls-key`, checked before anything listens: the files are a PEM certificate chain and
 * its private key, and every certificate in the chain is valid now. An expired or not-yet-valid one is refused
 * naming the file and the date (it served a port whose every handshake failed, clients seeing only an OpenSSL
 * error); one that expires within `EXPIRY_WARNING_DAYS` is served with a warning on stderr.
 *
 * While the relay runs, the chain it serves is checked again once a day (`watch`, one sleeping fiber): a relay left
 * running past those dates says so, a warning line a day within `EXPIRY_WARNING_DAYS` of the end and an error line
 * a day once it is over, naming the file and the date.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as tls from "node:tls"
import { CliError, ExitCode } from "../CliError.js"
import * as Output from "../Output.js"

/** The certificate and key `relay serve` serves TLS with. */
export interface TlsIdentity {
  readonly certChain: string
  readonly privateKey: string
  /** The earliest notAfter of the chain: from then on, clients refuse it (`/healthz` reports it). */
  readonly notAfter: Date
}

/** A certificate that expires within this many days is served with a warning. */
export const EXPIRY_WARNING_DAYS = 14

/** How often a running relay checks the dates of the chain it serves again. */
export const RECHECK_EVERY = Duration.days(1)

const DAY_MS = 24 * 60 * 60 * 1000

/** How a self-signed certificate is made, for a test relay (the project has no command of its own for it). */
const SELF_SIGNED =
  'for a test relay a self-signed one: openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=<host>" -addext "subjectAltName=DNS:<host>" -keyout key.pem -out cert.pem'

/** The user the relay runs as, as a permission hint names it. */
const whoAmI = (): string => {
  try {
    const me = os.userInfo()
    return `${me.username} (uid ${me.uid})`
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`
  }
}

/** The files in `dir` that look like a certificate or a key, for a directory given instead of a file. */
const pemFilesIn = (dir: string): ReadonlyArray<string> => {
  try {
    return fs
      .readdirSync(dir)
      .filter((name) => /\.(pem|crt|cer|key)$/i.test(name))
      .sort()
  } catch {
    return []
  }
}

/**
 * The text of `file`, or a refusal naming `flag`, the file and the fix: a directory given for it, a file missing, or
 * one the relay's user may not read (`chmod 000`, a key owned by root for a relay running as another user).
 */
const readPem = (flag: string, file: string) =>
  Effect.try({
    try: () => fs.readFileSync(file, "utf8"),
    catch: (e) => {
      const code = (e as NodeJS.ErrnoException).code
      const wants = flag === "--tls-cert" ? "the PEM certificate chain" : "the PEM private key"
      const message =
        code === "EISDIR"
          ? (() => {
              const files = pemFilesIn(file)
              return `${flag} ${file} is a directory: give the file in it that holds ${wants}${files.length === 0 ? "" : ` (it has ${files.join(", ")})`}`
            })()
          : code === "ENOENT"
            ? `${flag} ${file}: no such file: check the path (a relative one is from the directory the relay starts in, ${process.cwd()})`
            : code === "EACCES" || code === "EPERM"
              ? `${flag} ${file} is not readable by ${whoAmI()}, the user the relay runs as: let that user read it (chown or chmod it; a private key stays readable by that user alone, chmod 600)`
              : `cannot read ${flag} ${file}: ${(e as Error).message}`
      return new CliError({ message, exitCode: ExitCode.usage })
    }
  })

/** What is wrong with a file's text that should be PEM of `kind`, said to the person who gave it. */
const notPem = (flag: string, file: string, text: string, kind: "certificate" | "key"): string => {
  const holdsKey = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
  const holdsCert = /-----BEGIN CERTIFICATE-----/.test(text)
  const other = flag === "--tls-cert" ? "--tls-key" : "--tls-cert"
  if (kind === "certificate" && holdsKey && !holdsCert)
    return `--tls-cert ${file} holds a private key, not a certificate: are --tls-cert and --tls-key swapped?`
  if (kind === "key" && holdsCert && !holdsKey)
    return `--tls-key ${file} holds a certificate, not a private key: are --tls-cert and --tls-key swapped?`
  if (!text.includes("-----BEGIN"))
    return kind === "certificate"
      ? `--tls-cert ${file} is not PEM (-----BEGIN CERTIFICATE-----); if it is a DER certificate, convert it: openssl x509 -inform DER -in ${file} -out cert.pem`
      : `--tls-key ${file} is not PEM (-----BEGIN PRIVATE KEY-----); if it is a DER key, convert it: openssl pkey -inform DER -in ${file} -out key.pem`
  return kind === "certificate"
    ? `--tls-cert ${file} holds no readable PEM certificate: it wants the certificate chain, the server's certificate first (${other} takes the key)`
    : `--tls-key ${file} holds no readable PEM private key (${other} takes the certificate)`
}

/**
 * The certificate and key as a TLS identity, each file checked on its own first so the message names the one that
 * is wrong: a key that is not the certificate's (or a file that is not PEM) failed later as "cannot listen … (is
 * another relay running? pick --grpc-port)", or, for a key of another type, only in every client's handshake.
 */
const checkPair = (certFile: string, keyFile: string, pair: Omit<TlsIdentity, "notAfter">) =>
  Effect.gen(function* () {
    const refuse = (message: string) => new CliError({ message, exitCode: ExitCode.usage })
    const cert = yield* Effect.try({
      try: () => new crypto.X509Certificate(pair.certChain),
      catch: () => refuse(notPem("--tls-cert", certFile, pair.certChain, "certificate"))
    })
    const key = yield* Effect.try({
      try: () => crypto.createPrivateKey(pair.privateKey),
      catch: () =>
        refuse(
          /ENCRYPTED/.test(pair.privateKey)
            ? `--tls-key ${keyFile} is encrypted with a passphrase, which the relay cannot type: give it the key decrypted (openssl pkey -in ${keyFile} -out key.pem, then chmod 600 key.pem)`
            : notPem("--tls-key", keyFile, pair.privateKey, "key")
        )
    })
    if (!cert.checkPrivateKey(key))
      return yield* refuse(
        `--tls-key ${keyFile} is not the key of --tls-cert ${certFile} (key values mismatch): give the key the certificate was issued for`
      )
    yield* Effect.try({
      try: () => tls.createSecureContext({ cert: pair.certChain, key: pair.privateKey }),
      catch: (e) => {
        const said = String((e as Error).message).replace(/^error:[0-9A-F]+:[^:]*::/i, "")
        return refuse(
          `--tls-cert ${certFile} and --tls-key ${keyFile} are not a certificate and its key (${said}): check that they are the PEM certificate chain and its private key`
        )
      }
    })
  })

/** A date as the messages print it: `2026-11-28 10:12:22 UTC`. */
const utc = (date: Date): string => `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`

const days = (ms: number): string => {
  const whole = Math.floor(ms / DAY_MS)
  return whole === 0 ? "less than a day" : whole === 1 ? "1 day" : `${whole} days`
}

/** What the dates of a chain say: when the first of its certificates expires, and the warnings due now. */
export interface Validity {
  readonly notAfter: Date
  /** One line per certificate that expires within `EXPIRY_WARNING_DAYS`. */
  readonly warnings: ReadonlyArray<string>
}

/**
 * Every certificate of the chain in `certChain` (the PEM text of `certFile`) against `now`: an expired or
 * not-yet-valid one fails; the warnings are for those that expire within `EXPIRY_WARNING_DAYS`. The first
 * certificate is the server's own; a later one (an intermediate) is named by its place and subject.
 */
export const checkValidity = (certFile: string, certChain: string, now: Date): Effect.Effect<Validity, CliError> =>
  Effect.gen(function* () {
    const blocks = certChain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
    const warnings: Array<string> = []
    let first: Date | undefined
    for (const [i, pem] of blocks.entries()) {
      const cert = yield* Effect.try({
        try: () => new crypto.X509Certificate(pem),
        catch: (e) =>
          new CliError({
            message: `certificate ${i + 1} of the chain in --tls-cert ${certFile} is not readable (${(e as Error).message}): --tls-cert wants the PEM certificate chain, the server's certificate first`,
            exitCode: ExitCode.usage
          })
      })
      const which =
        i === 0
          ? `--tls-cert ${certFile}`
          : `certificate ${i + 1} of the chain in --tls-cert ${certFile} (${cert.subject.replace(/\n/g, ", ")})`
      const notBefore = new Date(cert.validFrom)
      const notAfter = new Date(cert.validTo)
      if (first === undefined || notAfter < first) first = notAfter
      if (notAfter.getTime() <= now.getTime())
        return yield* new CliError({
          message: `${which} expired on ${utc(notAfter)} (notAfter, ${days(now.getTime() - notAfter.getTime())} ago): clients refuse it; renew it and restart the relay with the new file (${SELF_SIGNED})`,
          exitCode: ExitCode.usage
        })
      if (notBefore.getTime() > now.getTime())
        return yield* new CliError({
          message: `${which} is not valid until ${utc(notBefore)} (notBefore; it is ${utc(now)} here): clients refuse it; check this machine's clock, or use a certificate valid from now (${SELF_SIGNED})`,
          exitCode: ExitCode.usage
        })
      const left = notAfter.getTime() - now.getTime()
      if (left < EXPIRY_WARNING_DAYS * DAY_MS)
        warnings.push(
          `${which} expires on ${utc(notAfter)} (notAfter, in ${days(left)}): renew it and restart the relay with the new file before then, or clients will refuse it`
        )
    }
    // `checkPair` read the first certificate: a chain has one at least.
    return { notAfter: first ?? now, warnings }
  })

/**
 * Reads and checks `--tls-cert` and `--tls-key` (see the module header), refusing a pair that is not one or a
 * certificate that is not valid now. What is due soon is said by `watch`.
 */
export const load = (certFile: string, keyFile: string): Effect.Effect<TlsIdentity, CliError> =>
  Effect.gen(function* () {
    const certChain = yield* readPem("--tls-cert", certFile)
    const privateKey = yield* readPem("--tls-key", keyFile)
    yield* checkPair(certFile, keyFile, { certChain, privateKey })
    const now = new Date(yield* Clock.currentTimeMillis)
    const { notAfter } = yield* checkValidity(certFile, certChain, now)
    return { certChain, privateKey, notAfter }
  })

/**
 * The dates of the chain the relay serves (`certChain`, read from `certFile`), said now and again every
 * `RECHECK_EVERY` for the life of the scope, on stderr: `cmdop: warning: …` for each certificate that expires within
 * `EXPIRY_WARNING_DAYS`, `cmdop: error: …` once one has expired. One fiber, asleep between checks.
 */
export const watch = (certFile: string, certChain: string): Effect.Effect<void, never, Scope.Scope> => {
  const check = Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => checkValidity(certFile, certChain, new Date(now))),
    Effect.flatMap(({ warnings }) =>
      Effect.forEach(warnings, (warning) => Output.notice(`cmdop: warning: ${warning}`), { discard: true })
    ),
    Effect.catchAll((e) => Output.notice(`cmdop: error: ${e.message}`))
  )
  return Effect.zipRight(
    check,
    Effect.asVoid(Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(RECHECK_EVERY), check))))
  )
}
