/**
 * Share links (with their audit events) and the keys share tokens are signed with, in the in-memory store.
 */
import { ShareEvent } from "@cmdop/domain/ShareLink"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { appendEvent, fail, type LinkRow, type MemoryDb, type State, withEvents } from "./memoryState.js"
import { ShareLinkRecord, shareLinkOrder, SigningKey, signingKeyOrder } from "./records.js"
import type { RelayStore } from "./service.js"
import { isAfter, pageOf } from "./shareLinkPage.js"

type Store = RelayStore["Type"]

export const signingKeys = (db: MemoryDb) => {
  const { read, update } = db
  return {
    currentSigningKey: Effect.map(read, (s) =>
      Option.fromNullable(
        s.signingKeys
          .filter((k) => k.retiredAt === undefined)
          .sort(signingKeyOrder)
          .at(-1)
      )
    ),
    addSigningKey: (key) =>
      update((s) =>
        Effect.gen(function* () {
          if (s.signingKeys.some((k) => k.kid === key.kid)) return yield* fail("SigningKeyExists", key.kid)
          const created = new SigningKey({
            kid: key.kid,
            algorithm: key.algorithm,
            material: key.material,
            createdAt: yield* Clock.currentTimeMillis
          })
          return [created, { ...s, signingKeys: [...s.signingKeys, created] }] as const
        })
      ),
    retireSigningKey: (kid) =>
      update((s) =>
        Effect.gen(function* () {
          const found = s.signingKeys.find((k) => k.kid === kid)
          if (found === undefined) return yield* fail("SigningKeyNotFound", kid)
          if (found.retiredAt !== undefined) return [undefined, s] as const
          const retired = new SigningKey({ ...found, retiredAt: yield* Clock.currentTimeMillis })
          return [undefined, { ...s, signingKeys: s.signingKeys.map((k) => (k.kid === kid ? retired : k)) }] as const
        })
      ),
    listSigningKeys: Effect.map(read, (s) => [...s.signingKeys].sort(signingKeyOrder))
  } satisfies Partial<Store>
}

const replaceLink = (s: State, row: LinkRow) => s.links.map((l) => (l.record.id === row.record.id ? row : l))

/** Applies `f` to the link's row; yields the row as it was and the new state. Fails with `ShareLinkNotFound`. */
const updateLink = (db: MemoryDb, id: string, f: (row: LinkRow, s: State) => State) =>
  db.update((s) => {
    const row = s.links.find((l) => l.record.id === id)
    if (row === undefined) return fail("ShareLinkNotFound", id)
    const next = f(row, s)
    return Effect.succeed([[row, next] as const, next] as const)
  })

export const shareLinks = (db: MemoryDb) => {
  const { read, update } = db
  return {
    createShareLink: (link, detail) =>
      update((s) => {
        if (s.links.some((l) => l.record.id === link.id)) return fail("ShareLinkExists", link.id)
        const record = new ShareLinkRecord({ ...link, useCount: 0, events: [] })
        const next: State = {
          ...s,
          links: [...s.links, { record, expiryRecorded: false }],
          events: appendEvent(s, link.id, { kind: "created", detail, at: link.createdAt })
        }
        return Effect.succeed([withEvents(next, next.links.at(-1)!), next] as const)
      }),
    getShareLink: (id) =>
      Effect.map(read, (s) => {
        const row = s.links.find((l) => l.record.id === id)
        return row === undefined ? Option.none() : Option.some(withEvents(s, row))
      }),
    listShareLinks: (workspaceId, machineId, page) =>
      Effect.map(read, (s) => {
        const sorted = s.links
          .filter(
            (l) =>
              l.record.workspaceId === workspaceId &&
              (machineId === undefined || l.record.machineId === machineId) &&
              (page?.after === undefined || isAfter(l.record, page.after))
          )
          .map((l) => l.record)
          .sort(shareLinkOrder)
        const rows = page === undefined ? { links: sorted } : pageOf(sorted.slice(0, page.limit + 1), page.limit)
        // Events are gathered for the page's links only.
        const byId = new Map(s.links.map((l) => [l.record.id, l]))
        return { ...rows, links: rows.links.map((r) => withEvents(s, byId.get(r.id)!)) }
      }),
    revokeShareLink: (id, at, detail) =>
      updateLink(db, id, (row, s) =>
        row.record.revokedAt !== undefined
          ? s
          : {
              ...s,
              links: replaceLink(s, { ...row, record: new ShareLinkRecord({ ...row.record, revokedAt: at }) }),
              events: appendEvent(s, id, { kind: "revoked", detail, at })
            }
      ).pipe(
        Effect.map(([, s]) =>
          withEvents(
            s,
            s.links.find((l) => l.record.id === id)!
          )
        )
      ),
    recordShareUses: (uses) =>
      db.update((s) => {
        const index = new Map(s.links.map((l, i) => [l.record.id, i]))
        const links = [...s.links]
        const events = [...s.events]
        const missing: Array<string> = []
        for (const { at, detail, linkId } of uses) {
          const i = index.get(linkId)
          if (i === undefined) {
            missing.push(linkId)
            continue
          }
          const row = links[i]!
          links[i] = {
            ...row,
            record: new ShareLinkRecord({ ...row.record, useCount: row.record.useCount + 1, lastUsedAt: at })
          }
          events.push({ linkId, seq: events.length, event: new ShareEvent({ kind: "used", detail, at }) })
        }
        return Effect.succeed([[...new Set(missing)], { ...s, links, events }] as const)
      }),
    addShareEvent: (id, event) =>
      Effect.asVoid(updateLink(db, id, (_, s) => ({ ...s, events: appendEvent(s, id, event) }))),
    markShareExpired: (id, event) =>
      Effect.map(
        updateLink(db, id, (row, s) =>
          row.expiryRecorded
            ? s
            : {
                ...s,
                links: replaceLink(s, { ...row, expiryRecorded: true }),
                events: appendEvent(s, id, { ...event, kind: "expired" })
              }
        ),
        ([row]) => !row.expiryRecorded
      )
  } satisfies Partial<Store>
}
