/**
 * Hashing and id minting shared by every store layer. API keys carry 238 bits of entropy, so an unsalted
 * SHA-256 is enough to store them and to look them up by hash.
 */
import { createHash, randomBytes } from "node:crypto"
import * as Redacted from "effect/Redacted"

/** The SHA-256 hex digest the store keeps in place of an API key. */
export const hashKey = (key: Redacted.Redacted<string>): string =>
  createHash("sha256").update(Redacted.value(key), "utf8").digest("hex")

/** A fresh random id with a readable prefix (`ws_…`, `key_…`). */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString("hex")}`
