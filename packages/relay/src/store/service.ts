/**
 * The `RelayStore` service tag: the relay's durable state (workspaces, their API keys, machines, share links with
 * their audit events, and the keys share tokens are signed with). Every layer (memory, SQLite, PostgreSQL) passes `relayStoreContract`.
 */
import type { Machine, MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import type { WorkspaceName } from "@cmdop/domain/Workspace"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type {
  ApiKeyRecord,
  CreatedKey,
  CreatedWorkspace,
  KeyName,
  KeyIdentity,
  MachineRecord,
  MachineRegistration,
  NewShareEvent,
  NewShareLink,
  NewSigningKey,
  ShareLinkRecord,
  ShareUse,
  SigningKey,
  WorkspaceRecord
} from "./records.js"
import type { RelayStoreError } from "./RelayStoreError.js"
import type { ShareLinkPage, ShareLinkPageQuery } from "./shareLinkPage.js"

export class RelayStore extends Context.Tag("@cmdop/relay/RelayStore")<
  RelayStore,
  {
    /** Creates a workspace with its first API key (named `default`, generation 1). Fails with `WorkspaceExists`. */
    readonly createWorkspace: (name: WorkspaceName) => Effect.Effect<CreatedWorkspace, RelayStoreError>
    /** Fails with `WorkspaceNotFound`. */
    readonly getWorkspace: (name: string) => Effect.Effect<WorkspaceRecord, RelayStoreError>
    /** The workspace with this id. Fails with `WorkspaceNotFound`. */
    readonly getWorkspaceById: (id: WorkspaceId) => Effect.Effect<WorkspaceRecord, RelayStoreError>
    /** Every workspace, by name. */
    readonly listWorkspaces: Effect.Effect<ReadonlyArray<WorkspaceRecord>, RelayStoreError>

    /**
     * Issues a new API key (named `name`, by default `default`) and retires every earlier one of the workspace
     * (they stop authenticating at once), and raises the workspace's key generation by one (its share links stop
     * working). The new key is returned this once. Fails with `WorkspaceNotFound`.
     */
    readonly rotateKey: (
      workspaceName: string,
      name?: KeyName
    ) => Effect.Effect<Redacted.Redacted<string>, RelayStoreError>
    /**
     * Issues one more API key for the workspace, named `name`, of its current generation; the other keys stay
     * live. The key is returned this once. Fails with `WorkspaceNotFound`, or `KeyNameTaken` when a live key has
     * that name.
     */
    readonly createKey: (workspaceName: string, name: KeyName) => Effect.Effect<CreatedKey, RelayStoreError>
    /** The workspace's live API keys by name (prefixes only). Fails with `WorkspaceNotFound`. */
    readonly listKeys: (workspaceName: string) => Effect.Effect<ReadonlyArray<ApiKeyRecord>, RelayStoreError>
    /**
     * Retires the workspace's live key with this id or name: it stops authenticating on the next call. The other
     * keys and the share links stay. Returns the key as it was. Fails with `WorkspaceNotFound`, or `KeyNotFound`
     * for an unknown or retired key, or one of another workspace.
     */
    readonly revokeKey: (workspaceName: string, idOrName: string) => Effect.Effect<ApiKeyRecord, RelayStoreError>
    /** The workspace a live API key belongs to; `None` for an unknown or retired key. */
    readonly authenticateKey: (
      rawKey: Redacted.Redacted<string>
    ) => Effect.Effect<Option.Option<KeyIdentity>, RelayStoreError>
    /** The workspace's current key generation (share links minted under an older one are invalid). */
    readonly currentKeyGeneration: (workspaceId: WorkspaceId) => Effect.Effect<number, RelayStoreError>

    /**
     * Registers a machine, or updates it when its id is known. A known id must present the same secret hash
     * (`MachineSecretMismatch` otherwise); a known id in another workspace is moved into `workspaceId`. Names
     * and hostnames are unique across both per workspace, case-insensitively (`MachineConflict`): no name of one
     * machine may equal the name or hostname of another. A new machine starts
     * offline; an update keeps the online state. Fails with `WorkspaceNotFound` for an unknown workspace. A
     * failure changes nothing.
     */
    readonly registerMachine: (registration: MachineRegistration) => Effect.Effect<MachineRecord, RelayStoreError>
    /** The stored machine, with its workspace and secret hash (for the handshake). Fails with `MachineNotFound`. */
    readonly getMachine: (id: MachineId) => Effect.Effect<MachineRecord, RelayStoreError>
    /** The workspace's machines by hostname; empty for an unknown workspace. Never another workspace's. */
    readonly listMachines: (workspaceId: WorkspaceId) => Effect.Effect<ReadonlyArray<Machine>, RelayStoreError>
    /**
     * The machine's stream is open: online, last heartbeat `at`, and whether its agent has a gate as it said in its
     * `Hello` (`undefined`: it did not say). Fails with `MachineNotFound`. `connection` names the stream (any
     * object), so that its `markOffline` is matched to it (the cluster store's routes).
     */
    readonly markOnline: (
      id: MachineId,
      at: number,
      connection?: object,
      gateConfigured?: boolean
    ) => Effect.Effect<void, RelayStoreError>
    /** The agent said its gate changed (its permissions file appeared or went). Fails with `MachineNotFound`. */
    readonly setGateConfigured: (id: MachineId, configured: boolean | undefined) => Effect.Effect<void, RelayStoreError>
    /** A heartbeat arrived at `at` (the machine is online). Fails with `MachineNotFound`. */
    readonly heartbeat: (id: MachineId, at: number) => Effect.Effect<void, RelayStoreError>
    /**
     * The last heartbeats of many machines, in one write (the relay records its agents' heartbeats in batches: one
     * commit per agent heartbeat does not scale to thousands of agents). Only the time changes; machines no longer
     * stored are skipped.
     */
    readonly heartbeats: (beats: ReadonlyArray<readonly [MachineId, number]>) => Effect.Effect<void, RelayStoreError>
    /** The machine's stream closed or timed out; the last heartbeat is kept. Fails with `MachineNotFound`. */
    readonly markOffline: (id: MachineId, connection?: object) => Effect.Effect<void, RelayStoreError>
    /**
     * Every machine offline: run at relay start, since no stream survives a restart, and at a clean stop (one write
     * for all the relay's streams). A cluster node's store takes only the machines that node holds.
     */
    readonly markAllOffline: Effect.Effect<void, RelayStoreError>
    /** Forgets a machine. Fails with `MachineNotFound`. */
    readonly removeMachine: (id: MachineId) => Effect.Effect<void, RelayStoreError>

    /** The newest signing key that is not retired (ties broken by the greater kid). */
    readonly currentSigningKey: Effect.Effect<Option.Option<SigningKey>, RelayStoreError>
    /** Stores a new signing key, created now. Fails with `SigningKeyExists` for a known kid. */
    readonly addSigningKey: (key: NewSigningKey) => Effect.Effect<SigningKey, RelayStoreError>
    /** Retires a key (it stays listed for verification and audit). Idempotent. Fails with `SigningKeyNotFound`. */
    readonly retireSigningKey: (kid: string) => Effect.Effect<void, RelayStoreError>
    /** Every signing key, retired ones included, oldest first. */
    readonly listSigningKeys: Effect.Effect<ReadonlyArray<SigningKey>, RelayStoreError>

    /**
     * Stores a new share link (never its token) with its `created` event (`detail`, at `createdAt`). Fails with
     * `ShareLinkExists` for a known id.
     */
    readonly createShareLink: (link: NewShareLink, detail: string) => Effect.Effect<ShareLinkRecord, RelayStoreError>
    /** The link with its events; `None` for an unknown id. */
    readonly getShareLink: (id: string) => Effect.Effect<Option.Option<ShareLinkRecord>, RelayStoreError>
    /**
     * The workspace's links (of one machine when `machineId` is given), oldest first then by id, with their
     * events: the `limit` links after `page.after`, and where the next page starts when more follow. Without
     * `page`, every link (for callers that know the workspace is small; listings for callers are paged).
     */
    readonly listShareLinks: (
      workspaceId: WorkspaceId,
      machineId?: MachineId,
      page?: ShareLinkPageQuery
    ) => Effect.Effect<ShareLinkPage, RelayStoreError>
    /**
     * Marks the link revoked at `at` and records `revoked`; a link already revoked is left as it is (no second
     * event). Returns the link. Fails with `ShareLinkNotFound`.
     */
    readonly revokeShareLink: (
      id: string,
      at: number,
      detail: string
    ) => Effect.Effect<ShareLinkRecord, RelayStoreError>
    /**
     * Counts many uses in one write, in order: each adds 1 to its link's `useCount`, sets its `lastUsedAt` and
     * records `used` (the relay writes guests' uses in batches, `share/useWrites.ts`). Uses of links that do not
     * exist are skipped; their link ids are returned.
     */
    readonly recordShareUses: (uses: ReadonlyArray<ShareUse>) => Effect.Effect<ReadonlyArray<string>, RelayStoreError>
    /** Appends an event to the link's trail. Fails with `ShareLinkNotFound`. */
    readonly addShareEvent: (id: string, event: NewShareEvent) => Effect.Effect<void, RelayStoreError>
    /**
     * Records the link's `expired` event unless one was recorded already, atomically: true when this call did.
     * Fails with `ShareLinkNotFound`.
     */
    readonly markShareExpired: (
      id: string,
      event: Omit<NewShareEvent, "kind">
    ) => Effect.Effect<boolean, RelayStoreError>
  }
>() {}
