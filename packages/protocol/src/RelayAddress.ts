/**
 * Relay addresses as users write them: `host:port` (plaintext, for loopback and development), or
 * `https://host[:port]` / `grpcs://host[:port]` (TLS, port 443 by default). A custom CA for a self-signed relay
 * comes from `CMDOP_TLS_CA` (a PEM file path) and is used for every TLS address.
 */
import * as RelayNode from "@cmdop/domain/RelayNode"
import type * as GrpcClient from "@cmdop/grpc/GrpcClient"
import * as fs from "node:fs"

export interface Target {
  readonly address: string
  readonly tls?: GrpcClient.Tls
}

/** Splits a relay address into `host:port` and TLS settings (`caPem` verifies a self-signed relay). */
export const parse = (server: string, caPem?: string): Target => {
  const address = RelayNode.addressOf(server)
  if (!RelayNode.isTls(server)) return { address }
  return { address, tls: caPem === undefined ? {} : { caPem } }
}

/**
 * The node a relay address names, however it is spelled: `host:port` (lower case), so `https://h:p`, `grpcs://h:p`
 * and `h:p` are one node, and `https://h` is `h:443`. A node serves either TLS or plaintext on a port, never both.
 */
export const nodeKey = (server: string): string => parse(server).address.toLowerCase()

/**
 * `hint`, a node's address as a cluster advertises it (bare `host:port`), spelled the way the agent reached the
 * node that told it: with that address's scheme when it is TLS (`https://`, `grpcs://`), as it is otherwise. The
 * nodes of one cluster serve alike, so a node reached over TLS names peers that serve TLS too; a hint that comes
 * with a scheme of its own keeps it.
 */
export const spelledLike = (hint: string, reached: string): string => {
  const trimmed = hint.trim()
  if (/^(https?|grpcs?):\/\//i.test(trimmed)) return trimmed
  const scheme = /^(https|grpcs):\/\//i.exec(reached.trim())
  return scheme === null ? trimmed : `${scheme[1]!.toLowerCase()}://${trimmed}`
}

/** The PEM named by `CMDOP_TLS_CA`, if set; a missing file is an error naming it. */
export const caFromEnv = (): string | undefined => {
  const file = process.env["CMDOP_TLS_CA"]
  if (file === undefined || file === "") return undefined
  try {
    return fs.readFileSync(file, "utf8")
  } catch (e) {
    throw new Error(`CMDOP_TLS_CA=${file} cannot be read: ${(e as Error).message}`)
  }
}
