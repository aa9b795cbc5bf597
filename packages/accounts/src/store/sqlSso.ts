/**
 * The single sign-on half of the SQL `AccountStore`: per-workspace domain rules and the links between OpenID
 * identities (issuer, subject) and users.
 */
import type { WorkspaceId } from "@cmdop/domain/Machine"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Statement from "@effect/sql/Statement"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Role } from "../Role.js"
import { AccountStoreError } from "./AccountStoreError.js"
import { compare, DomainRule, type UserId } from "./records.js"
import type { AccountStore } from "./service.js"
import { int } from "./sqlRows.js"
import { helpers } from "./sqlSupport.js"

type SsoPart = Pick<
  AccountStore["Type"],
  "putDomainRule" | "removeDomainRule" | "listDomainRules" | "rulesForDomain" | "findSsoIdentity" | "linkSsoIdentity"
>

interface RuleRow {
  readonly workspace_id: string
  readonly domain: string
  readonly role: string
  readonly created_at: unknown
}

const toRule = (row: RuleRow) =>
  new DomainRule({
    workspaceId: row.workspace_id as WorkspaceId,
    domain: row.domain,
    role: row.role as Role,
    createdAt: int(row.created_at)
  })

/** The single sign-on operations over `sql`. */
export const make = (sql: SqlClient.SqlClient): SsoPart => {
  const { forUpdate, guard, transaction } = helpers(sql)
  const rules = (where: Statement.Fragment) =>
    Effect.map(sql<RuleRow>`SELECT workspace_id, domain, role, created_at FROM sso_domains WHERE ${where}`, (rows) =>
      rows.map(toRule)
    )
  const conflict = (issuer: string) =>
    Effect.fail(new AccountStoreError({ reason: "SsoIdentityConflict", subject: issuer }))

  return {
    putDomainRule: (workspaceId, domain, role) =>
      transaction("putDomainRule")(
        Effect.gen(function* () {
          const existing = yield* rules(sql`workspace_id = ${workspaceId} AND domain = ${domain} ${forUpdate}`)
          if (existing.length > 0) {
            yield* sql`UPDATE sso_domains SET role = ${role} WHERE workspace_id = ${workspaceId} AND domain = ${domain}`
          } else {
            yield* sql`INSERT INTO sso_domains (workspace_id, domain, role, created_at)
              VALUES (${workspaceId}, ${domain}, ${role}, ${yield* Clock.currentTimeMillis})`
          }
          return (yield* rules(sql`workspace_id = ${workspaceId} AND domain = ${domain}`))[0]!
        })
      ),
    removeDomainRule: (workspaceId, domain) =>
      guard("removeDomainRule")(
        Effect.asVoid(sql`DELETE FROM sso_domains WHERE workspace_id = ${workspaceId} AND domain = ${domain}`)
      ),
    listDomainRules: (workspaceId) =>
      guard("listDomainRules")(
        Effect.map(rules(sql`workspace_id = ${workspaceId}`), (found) =>
          found.sort((a, b) => compare(a.domain, b.domain))
        )
      ),
    rulesForDomain: (domain) =>
      guard("rulesForDomain")(
        Effect.map(rules(sql`domain = ${domain}`), (found) =>
          found.sort((a, b) => compare(a.workspaceId, b.workspaceId))
        )
      ),
    findSsoIdentity: (issuer, subject) =>
      guard("findSsoIdentity")(
        Effect.map(
          sql<{ readonly user_id: string }>`SELECT user_id FROM sso_identities
            WHERE issuer = ${issuer} AND subject = ${subject}`,
          (rows) => Option.map(Option.fromNullable(rows[0]), (row) => row.user_id as UserId)
        )
      ),
    linkSsoIdentity: (issuer, subject, userId) =>
      transaction("linkSsoIdentity")(
        Effect.gen(function* () {
          const links = yield* sql<{ readonly subject: string; readonly user_id: string }>`SELECT subject, user_id
            FROM sso_identities WHERE issuer = ${issuer} AND (subject = ${subject} OR user_id = ${userId})`
          if (links.some((l) => l.subject === subject && l.user_id === userId)) return
          if (links.length > 0) return yield* conflict(issuer)
          const user = yield* sql`SELECT id FROM users WHERE id = ${userId}`
          if (user.length === 0) {
            return yield* Effect.fail(new AccountStoreError({ reason: "UserNotFound", subject: userId }))
          }
          yield* sql`INSERT INTO sso_identities (issuer, subject, user_id, created_at)
            VALUES (${issuer}, ${subject}, ${userId}, ${yield* Clock.currentTimeMillis})`
        })
      ).pipe(
        // A concurrent link of the same identity loses on the primary key or the unique index.
        Effect.catchIf(
          (e) => e.reason === "Sql",
          (e) =>
            Effect.flatMap(
              guard("linkSsoIdentity")(
                sql<{ readonly user_id: string }>`SELECT user_id FROM sso_identities
                  WHERE issuer = ${issuer} AND subject = ${subject}`
              ),
              (rows) =>
                rows[0]?.user_id === userId ? Effect.void : rows.length > 0 ? conflict(issuer) : Effect.fail(e)
            )
        )
      )
  }
}
