/**
 * What the relay's store holds, as the rest of the relay sees it. Times are milliseconds since the epoch.
 * Raw API keys never appear here: a workspace key exists only as a hash and a short prefix once minted.
 */
import { Hostname, Machine, MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { type ShareEvent, type ShareEventKind, ShareLink } from "@cmdop/domain/ShareLink"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/** A workspace on the relay. `keyGeneration` starts at 1 and grows by one with every key rotation. */
export class WorkspaceRecord extends Schema.Class<WorkspaceRecord>("WorkspaceRecord")({
  id: WorkspaceId,
  name: WorkspaceName,
  createdAt: Schema.Number,
  keyGeneration: Schema.Int
}) {}

/** A new workspace and its first API key, which is returned this once and never stored. */
export interface CreatedWorkspace {
  readonly workspace: WorkspaceRecord
  readonly apiKey: Redacted.Redacted<string>
}

/**
 * The name of a workspace API key, chosen by its owner so a listing tells keys apart ("ci", "laptop"): 1 to 64
 * letters, digits, '.', '_' or '-'. Live keys of a workspace have distinct names.
 */
export const KeyName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9._-]{1,64}$/, {
    message: () => "a key name is 1 to 64 letters, digits, '.', '_' or '-' (e.g. ci, laptop)"
  }),
  Schema.brand("KeyName")
)
export type KeyName = typeof KeyName.Type

/** The name of a workspace's first key, and of the key a rotation issues unless told otherwise. */
export const DEFAULT_KEY_NAME = "default" as KeyName

/**
 * A live API key as listings show it: never the key itself, only its non-secret prefix (masked after it was shown
 * once). `generation` is the workspace's key generation it was minted under.
 */
export class ApiKeyRecord extends Schema.Class<ApiKeyRecord>("ApiKeyRecord")({
  id: Schema.String,
  workspaceId: WorkspaceId,
  name: Schema.String,
  prefix: Schema.String,
  generation: Schema.Int,
  createdAt: Schema.Number
}) {}

/** How a key is shown after creation: its prefix and an ellipsis. */
export const maskedKey = (record: { readonly prefix: string }): string => `${record.prefix}…`

/** A new key and its record; the key is returned this once and never stored. */
export interface CreatedKey {
  readonly key: ApiKeyRecord
  readonly apiKey: Redacted.Redacted<string>
}

/** Listing order of API keys: by name (live names are unique in a workspace), then by id. */
export const apiKeyOrder = (a: ApiKeyRecord, b: ApiKeyRecord): number => compare(a.name, b.name) || compare(a.id, b.id)

/** Who a valid API key speaks for. */
export class KeyIdentity extends Schema.Class<KeyIdentity>("KeyIdentity")({
  workspaceId: WorkspaceId,
  workspaceName: WorkspaceName,
  keyId: Schema.String,
  generation: Schema.Int
}) {}

/** What an agent registers. `secretHash` is the hash of the machine secret the agent proved. */
export const MachineRegistration = Schema.Struct({
  id: MachineId,
  workspaceId: WorkspaceId,
  hostname: Hostname,
  name: Schema.String,
  os: Schema.String,
  agentVersion: Schema.String,
  secretHash: Schema.String
})
export type MachineRegistration = typeof MachineRegistration.Type

/**
 * A machine as the store holds it: the listing fields plus the hash of its machine secret, which the handshake
 * and moves between workspaces check. Never hand this to a listing; use `toMachine`.
 */
export class MachineRecord extends Schema.Class<MachineRecord>("MachineRecord")({
  ...Machine.fields,
  secretHash: Schema.String
}) {}

/** The listing view of a stored machine (no secret hash). */
export const toMachine = (record: MachineRecord): Machine =>
  new Machine({
    id: record.id,
    workspaceId: record.workspaceId,
    hostname: record.hostname,
    name: record.name,
    os: record.os,
    agentVersion: record.agentVersion,
    online: record.online,
    ...(record.lastHeartbeatAt === undefined ? {} : { lastHeartbeatAt: record.lastHeartbeatAt }),
    // What the agent says of its gate is live state: not listed for a machine that is offline.
    ...(record.online && record.gateConfigured !== undefined ? { gateConfigured: record.gateConfigured } : {})
  })

/** A key the relay signs share-link tokens with. `material` is the secret (or private key) as text. */
export class SigningKey extends Schema.Class<SigningKey>("SigningKey")({
  kid: Schema.String,
  algorithm: Schema.String,
  material: Schema.Redacted(Schema.String),
  createdAt: Schema.Number,
  retiredAt: Schema.optional(Schema.Number)
}) {}

/** What `addSigningKey` takes. */
export interface NewSigningKey {
  readonly kid: string
  readonly algorithm: string
  readonly material: Redacted.Redacted<string>
}

/**
 * A share link as the store holds it: the listing fields (with its events, in time order) plus the workspace key
 * generation it was minted under. The token is never stored.
 */
export class ShareLinkRecord extends Schema.Class<ShareLinkRecord>("ShareLinkRecord")({
  ...ShareLink.fields,
  keyGeneration: Schema.Int
}) {}

/** What `createShareLink` takes. */
export interface NewShareLink {
  readonly id: string
  readonly workspaceId: WorkspaceId
  readonly machineId: MachineId
  readonly machineHostname: string
  readonly creator: string
  readonly createdAt: number
  /** absent: never expires */
  readonly expiresAt?: number
  readonly keyGeneration: number
  /** Set: the link reaches this one interactive session only. */
  readonly sessionId?: string
  /** The key that signed the link's token. */
  readonly signingKid?: string
}

/** A share-link event as `addShareEvent` takes it. */
export interface NewShareEvent {
  readonly kind: ShareEventKind
  readonly detail: string
  readonly at: number
}

/** One guest use of a link: counted on it, and recorded as its `used` event. */
export interface ShareUse {
  readonly linkId: string
  readonly at: number
  readonly detail: string
}

/** The callers' view of a stored link (no key generation). */
export const toShareLink = (record: ShareLinkRecord): ShareLink => {
  const { keyGeneration: _, ...fields } = record
  return new ShareLink(fields)
}

/** Event order: by time, then in the order they were recorded (`seq`). The same in every layer. */
export const shareEventOrder = <E extends { readonly event: ShareEvent; readonly seq: number }>(a: E, b: E): number =>
  a.event.at - b.event.at || a.seq - b.seq

/** Listing order of share links: oldest first, then by id. */
export const shareLinkOrder = (a: ShareLinkRecord, b: ShareLinkRecord): number =>
  a.createdAt - b.createdAt || compare(a.id, b.id)

/**
 * The clash, if any, of a registration with the other machines of its workspace: names and hostnames are unique
 * across both (case-insensitive), so no name can ever mean two machines. The registration's hostname is checked
 * first, then its name.
 */
export const machineClash = (
  reg: { readonly hostname: string; readonly name: string },
  others: ReadonlyArray<{ readonly id: string; readonly hostname: string; readonly name: string }>
): { readonly field: "hostname" | "name"; readonly value: string; readonly machineId: string } | undefined => {
  const taken = (value: string) => {
    const key = value.toLowerCase()
    return others.find((m) => m.hostname.toLowerCase() === key || m.name.toLowerCase() === key)
  }
  const byHost = taken(reg.hostname)
  if (byHost !== undefined) return { field: "hostname", value: reg.hostname, machineId: byHost.id }
  const byName = taken(reg.name)
  if (byName !== undefined) return { field: "name", value: reg.name, machineId: byName.id }
  return undefined
}

/** Listing order of machines: hostname (case-insensitive), then id. The same in every layer. */
export const machineOrder = (a: { readonly hostname: string; readonly id: string }, b: typeof a): number =>
  compare(a.hostname.toLowerCase(), b.hostname.toLowerCase()) || compare(a.id, b.id)

/** Listing order of signing keys: oldest first, then by kid. */
export const signingKeyOrder = (a: SigningKey, b: SigningKey): number =>
  a.createdAt - b.createdAt || compare(a.kid, b.kid)

/** Code-unit string order (databases' collations differ, so every layer sorts in JavaScript). */
export const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
