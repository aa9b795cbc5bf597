/**
 * The cluster secret that every call between relay nodes carries (`PeerService.CLUSTER_SECRET_HEADER`). It is
 * compared in constant time over SHA-256 digests, so neither its content nor its length leaks through timing; a
 * secret too short to resist guessing is refused before the node starts.
 *
 * Each node records a fingerprint of its secret with its lease, so a node started with another secret than the
 * live nodes' is refused at once (`ClusterNode.ts`) instead of failing every forwarded call. The fingerprint is
 * scrypt of the secret over a fixed label: it tells two secrets apart, and it is slow to compute on purpose, so
 * that whoever can read the database cannot try guesses at a secret a person chose (one computation per node
 * start, ~50 ms; `openssl rand -hex 32` makes one nobody can guess anyway).
 */
import * as PeerService from "@cmdop/protocol/PeerService"
import * as Redacted from "effect/Redacted"
import { createHash, scryptSync, timingSafeEqual } from "node:crypto"

/** The shortest cluster secret a node accepts. */
export const MIN_LENGTH = 16

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/** Whether `given` (a call's header, if any) is the cluster secret. */
export const matches = (secret: Redacted.Redacted<string>, given: string | undefined): boolean =>
  given !== undefined && timingSafeEqual(digest(Redacted.value(secret)), digest(given))

/** `matches` for one secret, its digest computed once (a peer port checks every call). */
export const checker = (secret: Redacted.Redacted<string>): ((given: string | undefined) => boolean) => {
  const expected = digest(Redacted.value(secret))
  return (given) => given !== undefined && timingSafeEqual(expected, digest(given))
}

/** The fixed label the fingerprint is computed over. */
const FINGERPRINT_LABEL = "cmdop-cluster-secret-fingerprint-v1"

/** scrypt's cost: 2^14 rounds of 16 MiB (within Node's default memory limit for it). */
const FINGERPRINT_COST = { N: 1 << 14, r: 8, p: 1 } as const

/** A fingerprint of the secret, stored with the node's lease: equal for equal secrets, never the secret itself. */
export const fingerprint = (secret: Redacted.Redacted<string>): string =>
  scryptSync(Redacted.value(secret), FINGERPRINT_LABEL, 32, FINGERPRINT_COST).toString("hex")

/**
 * What an owning node answers a call without the right secret (`PeerServer`, in every version): the forwarding
 * node recognises it, and tells its client that the nodes' secrets differ.
 */
export const REFUSAL_DETAIL =
  "this is a relay node's peer port: calls need the cluster secret (clients use the relay's gRPC port)"

/** The metadata a node sends with every peer call. */
export const metadata = (secret: Redacted.Redacted<string>): Readonly<Record<string, string>> => ({
  [PeerService.CLUSTER_SECRET_HEADER]: Redacted.value(secret)
})

/** What is wrong with a cluster secret, and how to fix it; `undefined` when it is usable. */
export const problem = (secret: Redacted.Redacted<string>): string | undefined =>
  Redacted.value(secret).length < MIN_LENGTH
    ? `the cluster secret has fewer than ${MIN_LENGTH} characters; give every node the same long random secret (e.g. "openssl rand -hex 32")`
    : undefined
