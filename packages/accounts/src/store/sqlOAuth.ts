/**
 * The OAuth half of the SQL `AccountStore`: device authorization requests, grants and their tokens. Token
 * lookups go by primary key (the token's hash); an access token is authenticated with one indexed join.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { newId } from "../Secrets.js"
import { AccountStoreError } from "./AccountStoreError.js"
import { compare, DeviceCodeRecord, Grant } from "./records.js"
import type { AccountStore, PollResult, RefreshResult } from "./service.js"
import * as Rows from "./sqlRows.js"
import { helpers } from "./sqlSupport.js"
import * as Transitions from "./transitions.js"

type OAuthPart = Pick<
  AccountStore["Type"],
  | "createDeviceCode"
  | "findDeviceCodeByUserCode"
  | "decideDeviceCode"
  | "pollDeviceCode"
  | "rotateRefreshToken"
  | "revokeToken"
  | "revokeUserGrants"
  | "listGrants"
  | "lookupAccessToken"
>

interface AccessRow extends Rows.GrantRow {
  readonly t_expires_at: unknown
  readonly u_email: string
  readonly u_created_at: unknown
  readonly u_disabled: unknown
  readonly u_active_workspace_id: string | null
  readonly m_workspace_id: string | null
  readonly m_role: string | null
  readonly m_created_at: unknown
}

/** The OAuth operations over `sql`. */
export const make = (sql: SqlClient.SqlClient): OAuthPart => {
  const { forUpdate, guard, insertTokens, transaction } = helpers(sql)
  const codes = sql.literal(Rows.deviceCodeColumns)
  const grants = sql.literal(Rows.grantColumns)

  const codeBy = (column: "device_code_hash" | "user_code_hash", hash: string, lock: boolean) =>
    Effect.map(
      sql<Rows.DeviceCodeRow>`SELECT ${codes} FROM device_codes WHERE ${sql(column)} = ${hash}
        ${lock ? forUpdate : sql.literal("")}`,
      (rows) => Option.map(Option.fromNullable(rows[0]), Rows.toDeviceCode)
    )
  const grantById = (id: string) =>
    Effect.map(sql<Rows.GrantRow>`SELECT ${grants} FROM oauth_grants WHERE id = ${id}`, (rows) =>
      Option.map(Option.fromNullable(rows[0]), Rows.toGrant)
    )
  const revokeGrant = (id: string, at: number) =>
    sql`UPDATE oauth_grants SET revoked_at = ${at} WHERE id = ${id} AND revoked_at IS NULL`
  const saveCode = (code: DeviceCodeRecord) =>
    sql`UPDATE device_codes SET status = ${code.status}, interval_seconds = ${code.intervalSeconds},
      last_polled_at = ${code.lastPolledAt ?? null}, user_id = ${code.userId ?? null},
      workspace_id = ${code.workspaceId ?? null}, grant_id = ${code.grantId ?? null}
      WHERE device_code_hash = ${code.deviceCodeHash}`

  return {
    createDeviceCode: (c) =>
      guard("createDeviceCode")(
        Effect.asVoid(sql`INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope, created_at,
          expires_at, interval_seconds, last_polled_at, status, user_id, workspace_id, grant_id)
          VALUES (${c.deviceCodeHash}, ${c.userCodeHash}, ${c.clientId}, ${c.scope}, ${c.createdAt}, ${c.expiresAt},
          ${c.intervalSeconds}, ${c.lastPolledAt ?? null}, ${c.status}, ${c.userId ?? null}, ${c.workspaceId ?? null},
          ${c.grantId ?? null})`)
      ),
    findDeviceCodeByUserCode: (hash) => guard("findDeviceCodeByUserCode")(codeBy("user_code_hash", hash, false)),
    decideDeviceCode: (userCodeHash, at, decision) =>
      transaction("decideDeviceCode")(
        Effect.gen(function* () {
          const found = yield* codeBy("user_code_hash", userCodeHash, true)
          if (Option.isNone(found) || at >= found.value.expiresAt) {
            return yield* Effect.fail(new AccountStoreError({ reason: "DeviceCodeNotFound", subject: "device code" }))
          }
          if (found.value.status !== "pending") {
            return yield* Effect.fail(new AccountStoreError({ reason: "DeviceCodeNotPending", subject: "device code" }))
          }
          const decided = new DeviceCodeRecord({
            ...found.value,
            status: decision.approve ? "approved" : "denied",
            userId: decision.userId,
            ...(decision.approve && decision.workspaceId !== undefined ? { workspaceId: decision.workspaceId } : {})
          })
          yield* saveCode(decided)
          return decided
        })
      ),
    pollDeviceCode: (deviceCodeHash, at, tokens) =>
      transaction("pollDeviceCode")(
        Effect.gen(function* () {
          const found = yield* codeBy("device_code_hash", deviceCodeHash, true)
          if (Option.isNone(found)) return Option.none<PollResult>()
          const code = found.value
          const { next, outcome } = Transitions.poll(code, at)
          if (outcome === "reused") {
            if (code.grantId === undefined) return Option.some({ outcome, code, grant: undefined })
            yield* revokeGrant(code.grantId, at)
            return Option.some({ outcome, code, grant: Option.getOrUndefined(yield* grantById(code.grantId)) })
          }
          if (outcome !== "issued") {
            if (next !== code) yield* saveCode(next)
            return Option.some({ outcome, code: next, grant: undefined })
          }
          const grant = new Grant({
            id: newId("grt"),
            userId: yield* Transitions.approver(code),
            clientId: code.clientId,
            scope: code.scope,
            ...(code.workspaceId === undefined ? {} : { workspaceId: code.workspaceId }),
            createdAt: at
          })
          yield* sql`INSERT INTO oauth_grants (id, user_id, client_id, scope, workspace_id, created_at, revoked_at)
            VALUES (${grant.id}, ${grant.userId}, ${grant.clientId}, ${grant.scope}, ${grant.workspaceId ?? null},
            ${at}, ${null})`
          yield* insertTokens(grant.id, tokens)
          const consumed = new DeviceCodeRecord({ ...next, grantId: grant.id })
          yield* saveCode(consumed)
          return Option.some({ outcome, code: consumed, grant })
        })
      ),
    rotateRefreshToken: (refreshHash, at, tokens) =>
      transaction("rotateRefreshToken")(
        Effect.gen(function* () {
          const rows = yield* sql<{
            readonly grant_id: string
            readonly expires_at: unknown
            readonly consumed_at: unknown
          }>`SELECT grant_id, expires_at, consumed_at FROM oauth_tokens
            WHERE hash = ${refreshHash} AND kind = ${"refresh"} ${forUpdate}`
          const row = rows[0]
          const grant = row === undefined ? Option.none() : yield* grantById(row.grant_id)
          if (row === undefined || Option.isNone(grant)) return { _tag: "invalid" } satisfies RefreshResult
          const verdict = Transitions.refresh(
            {
              expiresAt: Rows.int(row.expires_at),
              consumedAt: Rows.optionalInt(row.consumed_at),
              grantRevoked: grant.value.revokedAt !== undefined
            },
            at
          )
          if (verdict === "invalid") return { _tag: "invalid" } satisfies RefreshResult
          if (verdict === "reused") {
            yield* revokeGrant(grant.value.id, at)
            return {
              _tag: "reused",
              grant: Option.getOrThrow(yield* grantById(grant.value.id))
            } satisfies RefreshResult
          }
          yield* sql`UPDATE oauth_tokens SET consumed_at = ${at} WHERE hash = ${refreshHash}`
          yield* insertTokens(grant.value.id, tokens)
          return { _tag: "rotated", grant: grant.value } satisfies RefreshResult
        })
      ),
    revokeToken: (tokenHash, at) =>
      transaction("revokeToken")(
        Effect.gen(function* () {
          const rows = yield* sql<{ readonly grant_id: string }>`SELECT grant_id FROM oauth_tokens
            WHERE hash = ${tokenHash}`
          if (rows[0] === undefined) return Option.none()
          yield* revokeGrant(rows[0].grant_id, at)
          return yield* grantById(rows[0].grant_id)
        })
      ),
    revokeUserGrants: (userId, at) =>
      guard("revokeUserGrants")(
        Effect.asVoid(sql`UPDATE oauth_grants SET revoked_at = ${at} WHERE user_id = ${userId} AND revoked_at IS NULL`)
      ),
    listGrants: (userId) =>
      guard("listGrants")(
        Effect.map(sql<Rows.GrantRow>`SELECT ${grants} FROM oauth_grants WHERE user_id = ${userId}`, (rows) =>
          rows.map(Rows.toGrant).sort((a, b) => a.createdAt - b.createdAt || compare(a.id, b.id))
        )
      ),
    lookupAccessToken: (accessHash, workspaceId) =>
      guard("lookupAccessToken")(
        Effect.map(
          sql<AccessRow>`SELECT t.expires_at AS t_expires_at, g.id, g.user_id, g.client_id, g.scope, g.workspace_id,
            g.created_at, g.revoked_at, u.email AS u_email, u.created_at AS u_created_at, u.disabled AS u_disabled,
            u.active_workspace_id AS u_active_workspace_id, m.workspace_id AS m_workspace_id, m.role AS m_role,
            m.created_at AS m_created_at
            FROM oauth_tokens t
            JOIN oauth_grants g ON g.id = t.grant_id
            JOIN users u ON u.id = g.user_id
            LEFT JOIN memberships m ON m.user_id = u.id
              AND m.workspace_id = COALESCE(CAST(${workspaceId ?? null} AS TEXT), u.active_workspace_id)
            WHERE t.hash = ${accessHash} AND t.kind = ${"access"}`,
          (rows) =>
            Option.map(Option.fromNullable(rows[0]), (row) => {
              const user = Rows.toUser({
                id: row.user_id,
                email: row.u_email,
                created_at: row.u_created_at,
                disabled: row.u_disabled,
                active_workspace_id: row.u_active_workspace_id
              })
              return {
                expiresAt: Rows.int(row.t_expires_at),
                grant: Rows.toGrant(row),
                user,
                workspaceId: workspaceId ?? user.activeWorkspaceId,
                membership:
                  row.m_role === null || row.m_workspace_id === null
                    ? undefined
                    : Rows.toMembership({
                        user_id: row.user_id,
                        workspace_id: row.m_workspace_id,
                        role: row.m_role,
                        created_at: row.m_created_at
                      })
              }
            })
        )
      )
  }
}
