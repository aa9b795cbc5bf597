/**
 * Last touches on the lines a user reads: one line instead of Schema or transport dumps, and a hint when a
 * "machine not found" was probably a mistyped command (`cmdop connect exce`).
 */
import * as Usage from "./Usage.js"

/** A store file of the wrong shape: one line saying what was expected instead of the Schema's definition. */
const SHAPE = /^(.*) does not have the expected shape \(Expected [\s\S]*, actual ([\s\S]*?)\)(: left unchanged[\s\S]*)$/

/** A field of the wrong type (`workspaces: Expected ReadonlyArray<{ readonly name: … }>, actual 5`). */
const FIELD_SHAPE = /^(.* does not have the expected shape \()([\s\S]*)(\): left unchanged[\s\S]*)$/

/**
 * Each field's issue in words: the Schema's own sentence when it has one (a bad workspace name), else what was
 * found there, instead of the type's whole definition (`Brand<"WorkspaceName">`, `Redacted(<redacted>)`).
 */
const shortFields = (message: string): string => {
  const m = FIELD_SHAPE.exec(message)
  if (m === null || !m[2]!.includes("Expected ")) return message
  // A definition never holds ", actual ", so the first one ends it.
  const issues = m[2]!
    .replace(
      /Expected [\s\S]*?, actual ([^;]*?)(?=; |$)/g,
      (_, actual: string) => `found ${actual.length > 40 ? `${actual.slice(0, 40)}…` : actual}`
    )
    .split("; ")
  const worded = (i: string) => !/^(?:[\w.]+: )?found /.test(i)
  const field = (i: string) => /^([\w.]+): /.exec(i)?.[1]
  const kept = issues.filter((i) => worded(i) || !issues.some((o) => o !== i && worded(o) && field(o) === field(i)))
  return `${m[1]}${[...new Set(kept)].join("; ")}; the format: docs/workspaces.md${m[3]}`
}

const shortShape = (message: string): string => {
  const m = SHAPE.exec(message)
  if (m === null) return shortFields(message)
  const actual = m[2]!.length > 40 ? `${m[2]!.slice(0, 40)}…` : m[2]!
  return `${m[1]} does not have the expected shape (line 1): expected an object {"active": "<name>", "workspaces": [{"name": …, "api_key": …, "server": …}]}, found ${actual}${m[3]}`
}

/** A TLS handshake with a plaintext server (`https://` against a relay without TLS, or any non-TLS port). */
const NOT_TLS = /^relay (\S+) is unreachable: [\s\S]*(wrong version number|SSL routines|packet length too long)[\s\S]*$/

/** A TLS relay whose certificate this machine does not trust (a private CA, a self-signed certificate). */
const UNTRUSTED =
  /^relay (\S+) is unreachable: [\s\S]*?(self[- ]signed certificate|unable to verify the first certificate|unable to get local issuer certificate|certificate has expired|Hostname\/IP does not match certificate's altnames)/

/** Transport details a user cannot act on: OpenSSL's error stack, grpc-js's resolution notes, stray newlines. */
const transport = (message: string): string => {
  const untrusted = UNTRUSTED.exec(message)
  if (untrusted !== null) {
    const [, server, why] = untrusted
    const said = `relay ${server} serves TLS with a certificate this machine does not trust (${why})`
    // A CA cannot fix an expired certificate or one for another name: say what does.
    if (why === "certificate has expired")
      return `${said}: renew it on the relay (relay serve --tls-cert), or check this machine's clock`
    if (why!.startsWith("Hostname"))
      return `${said}: it does not name ${server.replace(/:\d+$/, "")}; use a name it lists in --server, or reissue it with that name in subjectAltName`
    const ca = process.env.CMDOP_TLS_CA
    if (ca !== undefined && ca !== "")
      return `${said}: CMDOP_TLS_CA=${ca} is not the CA that signed it; set CMDOP_TLS_CA to the PEM file of its CA (or of the certificate itself); see docs/credentials.md`
    return `${said}: set CMDOP_TLS_CA to the PEM file of its CA (or of the certificate itself); see docs/credentials.md`
  }
  const tls = NOT_TLS.exec(message)
  if (tls !== null)
    return `relay ${tls[1]} does not answer TLS: it is a plaintext port (drop "https://" from --server), or not a relay's gRPC port at all (the relay's default is 50051; its HTTP port is for browsers)`
  // grpc-js's words for a relay that went away while a call was on: it was reachable, so no advice to check it runs.
  const gone = /^relay (\S+) is unreachable: (server is shutting down|Connection dropped)/.exec(message)
  if (gone !== null)
    return `relay ${gone[1]} went away during the call (${gone[2] === "Connection dropped" ? "the connection dropped" : "it is shutting down"}); a command it ran on a machine ends with it: run it again once the relay is back`
  // A gRPC server without the relay's services: a cluster node's peer port (or another program), more often
  // than a relay older than this CLI.
  const unimplemented =
    /^relay (\S+) sent something this CLI does not understand: The server does not implement the method (\S+) \(versions differ\?\)$/.exec(
      message
    )
  if (unimplemented !== null)
    return `relay ${unimplemented[1]} does not serve ${unimplemented[2]}: it is not a relay's gRPC port (a cluster node's peer port? the gRPC port is 50051 unless set), or a relay older than this CLI: check --server`
  const http = /^relay (\S+) is unreachable: [\s\S]*Protocol error/.exec(message)
  if (http !== null)
    return `relay ${http[1]} answered, but not as a relay's gRPC port (is it the HTTP port? the gRPC port is 50051 unless set): check --server`
  // grpc-js's word when the other end closed the connection before HTTP/2 began: a TLS port spoken to in plaintext
  // (the TLS handshake fails on the HTTP/2 preface), or a relay refusing this address (too many connections).
  const closed = /^relay (\S+) is unreachable: [\s\S]*Failed to connect\b/.exec(message)
  if (closed !== null)
    return `relay ${closed[1]} closed the connection at once: if it serves TLS (relay serve --tls-cert), use --server https://${closed[1]}; else it refused this address (too many connections from here?) or is not a relay's gRPC port`
  return message
    .replace(/\s*Resolution note: [^;]*;/g, ";")
    .replace(/\.\s*;/g, ";")
    .replace(/\s*\n\s*/g, " ")
    .trim()
}

/**
 * The relay's answer to an attach to a session it does not know (`connect <host> --session X`) is a not-found
 * naming "<host> session <id>" (clients recognise a gone session by it): said as what it is, a missing session.
 */
const SESSION = /^machine "(\S+) session (\S+)" not found in this workspace;[\s\S]*$/

const session = (message: string): string => {
  const m = SESSION.exec(message)
  return m === null ? message : `no session ${m[2]} on ${m[1]}; list them with cmdop connect sessions ${m[1]}`
}

/** `message` as one line: no Schema dumps, no transport dumps. */
export const forUser = (raw: string): string => session(transport(shortShape(raw)))

/** An extra hint for `error` given the command words `args`, or "". */
export const hintFor = (error: unknown, args: ReadonlyArray<string>): string => {
  if (typeof error !== "object" || error === null) return ""
  const e = error as { readonly _tag?: string; readonly reason?: string; readonly query?: string }
  if (e._tag === "MachineError" && e.reason === "NotFound" && e.query !== undefined)
    return Usage.commandHint(args, e.query)
  return ""
}
