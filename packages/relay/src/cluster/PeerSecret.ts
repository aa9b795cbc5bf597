/**
 * The cluster secret that every call between relay nodes carries (`PeerService.CLUSTER_SECRET_HEADER`). It is
 * compared in constant time over SHA-256 digests, so neither its content nor its length leaks through timing; a
 * secret too short to resist guessing is refused before the node starts.
 */
import * as PeerService from "@cmdop/protocol/PeerService"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"

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

/** The metadata a node sends with every peer call. */
export const metadata = (secret: Redacted.Redacted<string>): Readonly<Record<string, string>> => ({
  [PeerService.CLUSTER_SECRET_HEADER]: Redacted.value(secret)
})

/** What is wrong with a cluster secret, and how to fix it; `undefined` when it is usable. */
export const problem = (secret: Redacted.Redacted<string>): string | undefined =>
  Redacted.value(secret).length < MIN_LENGTH
    ? `the cluster secret has fewer than ${MIN_LENGTH} characters; give every node the same long random secret (e.g. "openssl rand -hex 32")`
    : undefined
