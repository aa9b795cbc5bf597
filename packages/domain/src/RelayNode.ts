/**
 * Which relay an address names, however it is spelled, and whether two addresses name the same relay: what keeps a
 * stored credential to the relay it belongs to (`CredentialResolver`). A bearer token sent to another server is
 * given to it: a login's token (issued by one relay) or a workspace's stored key must not follow a `--server`, a
 * `CMDOP_SERVER` or another workspace to a relay that never issued it.
 *
 * Addresses as users write them: `host:port` (plaintext), `https://host[:port]` / `grpcs://host[:port]` (TLS, port
 * 443 by default), and lists of a cluster's nodes separated by commas. The loopback names (`localhost`,
 * `127.0.0.1`, `::1`) are one host: `cmdop up` prints one, a person types another.
 */

/** `host:port` of one address (scheme and trailing slash taken off, the scheme's port added when none is given). */
export const addressOf = (server: string): string => {
  const match = /^(https?|grpcs?):\/\/(.*?)\/?$/.exec(server.trim())
  const secure = match !== null && (match[1] === "https" || match[1] === "grpcs")
  let address = match === null ? server.trim() : match[2]!
  if (match !== null && !/:\d+$/.test(address)) address += secure ? ":443" : ":80"
  return address
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"])

/** One node of an address as a comparable key: lower case, the loopback names made one. */
const nodeOf = (entry: string): string => {
  const address = addressOf(entry).toLowerCase()
  const colon = address.lastIndexOf(":")
  if (colon < 0) return address
  const host = address.slice(0, colon)
  return LOOPBACK.has(host) ? `loopback${address.slice(colon)}` : address
}

/** The nodes an address names (one, or each of a cluster's list). */
export const nodesOf = (server: string): ReadonlySet<string> =>
  new Set(
    server
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "")
      .map(nodeOf)
  )

/** Whether `a` and `b` name the same relay: one node at least in common (the nodes of one cluster share credentials). */
export const same = (a: string, b: string): boolean => {
  const nodes = nodesOf(a)
  for (const node of nodesOf(b)) if (nodes.has(node)) return true
  return false
}
