/**
 * Which relay an address names, however it is spelled, and whether two addresses name the same relay: what keeps a
 * stored credential to the relay it belongs to (`CredentialResolver`). A bearer token sent to another server is
 * given to it: a login's token (issued by one relay) or a workspace's stored key must not follow a `--server`, a
 * `CMDOP_SERVER` or another workspace to a relay that never issued it.
 *
 * Addresses as users write them: `host:port` (plaintext), `https://host[:port]` / `grpcs://host[:port]` (TLS, port
 * 443 by default), and lists of a cluster's nodes separated by commas. The loopback names (`localhost`,
 * `127.0.0.1`, `::1`) are one host: `cmdop up` prints one, a person types another.
 *
 * The rule for a credential is `outside`/`covers`: every node a call may dial must be one of the nodes the
 * credential is stored for (a client dials the first node of a list that answers, an agent any of them), and one
 * stored as TLS goes over TLS only (a plaintext request shows its bearer token to the network, whether or not the
 * port then speaks TLS).
 */

/**
 * `host:port` of one address (scheme and trailing slash taken off, the scheme's port added when none is given). A
 * scheme is read in any case (`HTTPS://h`, RFC 3986 §3.1).
 */
export const addressOf = (server: string): string => {
  const match = /^(https?|grpcs?):\/\/(.*?)\/?$/i.exec(server.trim())
  const secure = match !== null && isTls(server)
  // A trailing slash is a copy-paste from a URL, with or without its scheme: `h:50051/` is `h:50051`.
  let address = match === null ? server.trim().replace(/\/+$/, "") : match[2]!
  if (match !== null && !/:\d+$/.test(address)) address += secure ? ":443" : ":80"
  return address
}

/** Whether an address is dialed over TLS (`https://`, `grpcs://`); `RelayAddress.parse` reads it the same way. */
export const isTls = (server: string): boolean => /^(https|grpcs):\/\//i.test(server.trim())

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"])

/** One node of an address as a comparable key: lower case, the loopback names made one. */
const nodeOf = (entry: string): string => {
  const address = addressOf(entry).toLowerCase()
  const colon = address.lastIndexOf(":")
  if (colon < 0) return address
  const host = address.slice(0, colon)
  return LOOPBACK.has(host) ? `loopback${address.slice(colon)}` : address
}

/** The entries of an address as written: one, or each of a cluster's list. */
const entriesOf = (server: string): ReadonlyArray<string> =>
  server
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")

/** The nodes an address names (one, or each of a cluster's list). */
export const nodesOf = (server: string): ReadonlySet<string> => new Set(entriesOf(server).map(nodeOf))

/**
 * Whether `a` and `b` have a node in common. Not the rule for sending a credential: a list may name other servers
 * besides (`evil:1,relay:50051`), and the first that answers is dialed; that rule is `covers`.
 */
export const same = (a: string, b: string): boolean => {
  const nodes = nodesOf(a)
  for (const node of nodesOf(b)) if (nodes.has(node)) return true
  return false
}

/** Why a call's address is not covered by a credential's: the entry dialed that is not its relay's, and how. */
export interface Outside {
  /** The entry of the call's address (as written) that the credential may not go to. */
  readonly entry: string
  /** `other`: not one of the credential's nodes; `plaintext`: one of them, but stored as TLS and dialed without. */
  readonly reason: "other" | "plaintext"
}

/**
 * The first entry of `call` (one address, or a cluster's list) that a credential stored for `stored` may not be
 * sent to: one that is not a node of `stored`, or one dialed in plaintext where `stored` names that node with TLS.
 * Undefined when every entry is covered (and `call` names one at least).
 */
export const outside = (stored: string, call: string): Outside | undefined => {
  const own = new Map<string, boolean>()
  for (const entry of entriesOf(stored)) {
    const node = nodeOf(entry)
    own.set(node, own.get(node) === true || isTls(entry))
  }
  const entries = entriesOf(call)
  if (entries.length === 0) return { entry: call, reason: "other" }
  for (const entry of entries) {
    const tls = own.get(nodeOf(entry))
    if (tls === undefined) return { entry, reason: "other" }
    if (tls && !isTls(entry)) return { entry, reason: "plaintext" }
  }
  return undefined
}

/** Whether a credential stored for `stored` may go to `call`: every node `call` may dial is one of `stored`'s. */
export const covers = (stored: string, call: string): boolean => outside(stored, call) === undefined
