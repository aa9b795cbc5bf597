/**
 * Share links between the domain (`ShareLink`) and the wire (`ShareLink`): 0 on the wire means "absent" for
 * the optional times, "" for the optional strings.
 */
import { ShareEvent, ShareLink } from "@cmdop/domain/ShareLink"
import type * as Wire from "./generated/cmdop/connect/v1/client.js"

const kinds = new Set(["created", "used", "denied", "expired", "revoked"])

export const toWire = (
  link: ShareLink,
  extra: { readonly url?: string; readonly token?: string } = {}
): Wire.ShareLink => ({
  id: link.id,
  machineId: link.machineId,
  machineHostname: link.machineHostname,
  creator: link.creator,
  createdAt: link.createdAt,
  expiresAt: link.expiresAt ?? 0,
  revokedAt: link.revokedAt ?? 0,
  lastUsedAt: link.lastUsedAt ?? 0,
  useCount: link.useCount,
  url: extra.url ?? "",
  token: extra.token ?? "",
  events: link.events.map((e) => ({ kind: e.kind, detail: e.detail, at: e.at })),
  sessionId: link.sessionId ?? "",
  signingKid: link.signingKid ?? "",
  signingKeyRetired: link.signingKeyRetired ?? false,
  alreadyRevoked: link.alreadyRevoked ?? false,
  ...(link.sessionsEnded === undefined ? {} : { sessionsEnded: link.sessionsEnded })
})

export const fromWire = (w: Wire.ShareLink, workspaceId = ""): ShareLink =>
  new ShareLink(
    {
      id: w.id,
      workspaceId,
      machineId: w.machineId,
      machineHostname: w.machineHostname,
      creator: w.creator,
      createdAt: w.createdAt,
      useCount: w.useCount,
      ...(w.expiresAt > 0 ? { expiresAt: w.expiresAt } : {}),
      ...(w.revokedAt > 0 ? { revokedAt: w.revokedAt } : {}),
      ...(w.lastUsedAt > 0 ? { lastUsedAt: w.lastUsedAt } : {}),
      ...(w.sessionId === "" ? {} : { sessionId: w.sessionId }),
      ...(w.signingKid === "" ? {} : { signingKid: w.signingKid }),
      ...(w.signingKeyRetired ? { signingKeyRetired: true } : {}),
      ...(w.alreadyRevoked ? { alreadyRevoked: true } : {}),
      ...(w.sessionsEnded === undefined ? {} : { sessionsEnded: w.sessionsEnded }),
      events: w.events
        .filter((e) => kinds.has(e.kind))
        .map((e) => new ShareEvent({ kind: e.kind as ShareEvent["kind"], detail: e.detail, at: e.at }))
    },
    { disableValidation: true }
  )
