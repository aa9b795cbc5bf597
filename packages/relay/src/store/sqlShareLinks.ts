/**
 * Share links and the keys their tokens are signed with, in the SQL store. A link is stored with its audit trail
 * (`share_events`), never its token; events are read back in time order, ties in the order they were recorded.
 */
import { ShareEvent } from "@cmdop/domain/ShareLink"
import * as SqlSchema from "@effect/sql/SqlSchema"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import {
  type NewShareEvent,
  type NewShareLink,
  type NewSigningKey,
  SigningKey,
  shareEventOrder,
  ShareLinkRecord,
  shareLinkOrder,
  signingKeyOrder
} from "./records.js"
import type { RelayStore } from "./service.js"
import { pageOf, type ShareLinkPageQuery } from "./shareLinkPage.js"
import { ShareEventRow, ShareLinkRow, SigningKeyRow } from "./sqlRows.js"
import { fail, type SqlDb } from "./sqlSupport.js"

type Store = RelayStore["Type"]

/** Stored links with their events (any order; sorted here). */
const toShareLinks = (
  links: ReadonlyArray<ShareLinkRow>,
  events: ReadonlyArray<ShareEventRow>
): Array<ShareLinkRecord> => {
  const byLink = new Map<string, Array<{ readonly seq: number; readonly event: ShareEvent }>>()
  for (const row of events) {
    const list = byLink.get(row.linkId) ?? []
    list.push({ seq: row.seq, event: new ShareEvent({ kind: row.kind, detail: row.detail, at: row.at }) })
    byLink.set(row.linkId, list)
  }
  return links
    .map(
      (row) =>
        new ShareLinkRecord({
          ...row,
          events: (byLink.get(row.id) ?? []).sort(shareEventOrder).map((e) => e.event)
        })
    )
    .sort(shareLinkOrder)
}

export const signingKeys = (db: SqlDb) => {
  const { sql } = db
  const current = SqlSchema.findAll({
    Request: Schema.Void,
    Result: SigningKeyRow,
    execute: () =>
      sql`SELECT kid, algorithm, material, created_at, retired_at FROM signing_keys WHERE retired_at IS NULL`
  })
  const all = SqlSchema.findAll({
    Request: Schema.Void,
    Result: SigningKeyRow,
    execute: () => sql`SELECT kid, algorithm, material, created_at, retired_at FROM signing_keys`
  })
  const exists = (kid: string) => Effect.map(sql`SELECT kid FROM signing_keys WHERE kid = ${kid}`, (r) => r.length > 0)

  const addSigningKey = (key: NewSigningKey) =>
    db.transaction("addSigningKey")(
      Effect.gen(function* () {
        if (yield* exists(key.kid)) return yield* fail("SigningKeyExists", key.kid)
        const created = new SigningKey({ ...key, createdAt: yield* Clock.currentTimeMillis })
        yield* sql`INSERT INTO signing_keys (kid, algorithm, material, created_at, retired_at)
          VALUES (${key.kid}, ${key.algorithm}, ${Redacted.value(key.material)}, ${created.createdAt}, ${null})`
        return created
      })
    )

  const retireSigningKey = (kid: string) =>
    db.transaction("retireSigningKey")(
      Effect.gen(function* () {
        if (!(yield* exists(kid))) return yield* fail("SigningKeyNotFound", kid)
        const now = yield* Clock.currentTimeMillis
        yield* sql`UPDATE signing_keys SET retired_at = ${now} WHERE kid = ${kid} AND retired_at IS NULL`
      })
    )

  return {
    currentSigningKey: db.guard("currentSigningKey")(
      Effect.map(current(undefined), (rows) => Option.fromNullable([...rows].sort(signingKeyOrder).at(-1)))
    ),
    addSigningKey,
    retireSigningKey,
    listSigningKeys: db.guard("listSigningKeys")(Effect.map(all(undefined), (rows) => [...rows].sort(signingKeyOrder)))
  } satisfies Partial<Store>
}

/** Links by id and by workspace (and machine), with their events. */
const reads = (sql: SqlDb["sql"]) => {
  const linkColumns = sql`id, workspace_id, machine_id, machine_hostname, creator, created_at, expires_at,
    key_generation, revoked_at, last_used_at, use_count, session_id, signing_kid`
  const eventColumns = sql`e.id AS seq, e.link_id, e.kind, e.detail, e.at`
  const decodeLinks = Schema.decodeUnknown(Schema.Array(ShareLinkRow))
  const decodeEvents = Schema.decodeUnknown(Schema.Array(ShareEventRow))

  const byId = (id: string) =>
    Effect.gen(function* () {
      const rows = yield* Effect.flatMap(sql`SELECT ${linkColumns} FROM share_links WHERE id = ${id}`, decodeLinks)
      if (rows.length === 0) return Option.none<ShareLinkRecord>()
      const events = yield* Effect.flatMap(
        sql`SELECT ${eventColumns} FROM share_events e WHERE e.link_id = ${id}`,
        decodeEvents
      )
      return Option.fromNullable(toShareLinks(rows, events)[0])
    })

  /**
   * A page of the workspace's links, keyset-paged in listing order (index `share_links_listing`), then the events
   * of those links only.
   */
  const ofWorkspace = (workspaceId: string, machineId: string | undefined, page: ShareLinkPageQuery | undefined) =>
    Effect.gen(function* () {
      const after = page?.after
      const rows = yield* Effect.flatMap(
        sql`SELECT ${linkColumns} FROM share_links WHERE workspace_id = ${workspaceId}
          ${machineId === undefined ? sql`` : sql`AND machine_id = ${machineId}`}
          ${
            after === undefined
              ? sql``
              : sql`AND (created_at > ${after.createdAt} OR (created_at = ${after.createdAt} AND id > ${after.id}))`
          }
          ORDER BY created_at, id ${page === undefined ? sql`` : sql`LIMIT ${page.limit + 1}`}`,
        decodeLinks
      )
      const paged = page === undefined ? { links: rows } : pageOf(rows, page.limit)
      if (paged.links.length === 0) return { links: [] }
      const events = yield* Effect.flatMap(
        page === undefined
          ? sql`SELECT ${eventColumns} FROM share_events e JOIN share_links l ON l.id = e.link_id
              WHERE l.workspace_id = ${workspaceId}
              ${machineId === undefined ? sql`` : sql`AND l.machine_id = ${machineId}`}`
          : sql`SELECT ${eventColumns} FROM share_events e WHERE e.link_id IN ${sql.in(paged.links.map((l) => l.id))}`,
        decodeEvents
      )
      return { ...paged, links: toShareLinks(paged.links, events) }
    })
  return { byId, ofWorkspace }
}

export const shareLinks = (db: SqlDb) => {
  const { sql } = db
  const { byId, ofWorkspace } = reads(sql)

  const insertEvent = (linkId: string, event: NewShareEvent) =>
    sql`INSERT INTO share_events (link_id, kind, detail, at) VALUES (${linkId}, ${event.kind}, ${event.detail},
      ${event.at})`

  /** Fails with `ShareLinkNotFound` when the link does not exist. */
  const linkExists = (id: string) =>
    Effect.flatMap(sql`SELECT id FROM share_links WHERE id = ${id}`, (rows) =>
      rows.length === 0 ? fail("ShareLinkNotFound", id) : Effect.void
    )

  return {
    createShareLink: (link: NewShareLink, detail: string) =>
      db.transaction("createShareLink")(
        Effect.gen(function* () {
          const existing = yield* sql`SELECT id FROM share_links WHERE id = ${link.id}`
          if (existing.length > 0) return yield* fail("ShareLinkExists", link.id)
          yield* sql`INSERT INTO share_links (id, workspace_id, machine_id, machine_hostname, creator, created_at,
            expires_at, key_generation, revoked_at, last_used_at, use_count, expiry_recorded_at, session_id,
            signing_kid)
            VALUES (${link.id}, ${link.workspaceId}, ${link.machineId}, ${link.machineHostname}, ${link.creator},
            ${link.createdAt}, ${link.expiresAt ?? null}, ${link.keyGeneration}, ${null}, ${null}, ${0}, ${null},
            ${link.sessionId ?? null}, ${link.signingKid ?? null})`
          yield* insertEvent(link.id, { kind: "created", detail, at: link.createdAt })
          return Option.getOrThrow(yield* byId(link.id))
        })
      ),
    getShareLink: (id) => db.guard("getShareLink")(byId(id)),
    listShareLinks: (workspaceId, machineId, page) =>
      db.guard("listShareLinks")(ofWorkspace(workspaceId, machineId, page)),
    revokeShareLink: (id, at, detail) =>
      db.transaction("revokeShareLink")(
        Effect.gen(function* () {
          yield* linkExists(id)
          const revoked = yield* sql`UPDATE share_links SET revoked_at = ${at}
            WHERE id = ${id} AND revoked_at IS NULL RETURNING id`
          if (revoked.length > 0) yield* insertEvent(id, { kind: "revoked", detail, at })
          return Option.getOrThrow(yield* byId(id))
        })
      ),
    // Three statements however many uses: the counts of each link at once (`UPDATE … FROM (VALUES …)`, as
    // `heartbeats` does; the casts because PostgreSQL reads untyped VALUES parameters as text), then every event
    // in one INSERT, in the uses' order (their sequence numbers follow it).
    recordShareUses: (uses) => {
      if (uses.length === 0) return Effect.succeed([])
      const perLink = new Map<string, { count: number; last: number }>()
      for (const { at, linkId } of uses) {
        const counted = perLink.get(linkId)
        if (counted === undefined) perLink.set(linkId, { count: 1, last: at })
        else {
          counted.count++
          counted.last = at
        }
      }
      const counts = sql.join(", ", false)([...perLink].map(([id, { count, last }]) => sql`(${id}, ${count}, ${last})`))
      return db.transaction("recordShareUses")(
        Effect.gen(function* () {
          const updated = yield* sql<{ readonly id: string }>`UPDATE share_links
            SET use_count = use_count + CAST(v.column2 AS INTEGER), last_used_at = CAST(v.column3 AS BIGINT)
            FROM (VALUES ${counts}) AS v WHERE share_links.id = v.column1 RETURNING share_links.id`
          const known = new Set(updated.map((r) => r.id))
          const recorded = uses.filter((u) => known.has(u.linkId))
          if (recorded.length > 0)
            yield* sql`INSERT INTO share_events (link_id, kind, detail, at) VALUES ${sql.join(
              ", ",
              false
            )(recorded.map((u) => sql`(${u.linkId}, ${"used"}, ${u.detail}, ${u.at})`))}`
          return [...new Set(uses.filter((u) => !known.has(u.linkId)).map((u) => u.linkId))]
        })
      )
    },
    addShareEvent: (id, event) =>
      db.transaction("addShareEvent")(Effect.zipRight(linkExists(id), insertEvent(id, event))),
    markShareExpired: (id, event) =>
      db.transaction("markShareExpired")(
        Effect.gen(function* () {
          yield* linkExists(id)
          const marked = yield* sql`UPDATE share_links SET expiry_recorded_at = ${event.at}
            WHERE id = ${id} AND expiry_recorded_at IS NULL RETURNING id`
          if (marked.length === 0) return false
          yield* insertEvent(id, { ...event, kind: "expired" })
          return true
        })
      )
  } satisfies Partial<Store>
}
