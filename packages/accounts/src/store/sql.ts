/**
 * The SQL `AccountStore` over any `@effect/sql` client. The statements are portable (SQLite and PostgreSQL run
 * the same text). Read-modify-write operations (polling a device code, rotating a refresh token, redeeming a
 * sign-in link, deciding a device code) run in one transaction and read their row `FOR UPDATE` on PostgreSQL
 * (SQLite serialises writers already), so of two concurrent uses exactly one wins. Listings are sorted in
 * JavaScript so every database (and the memory layer) yields the same order.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { newId } from "../Secrets.js"
import { AccountStoreError } from "./AccountStoreError.js"
import { migrate } from "./migrations.js"
import { compare, User, type UserId, userOrder, WebSession } from "./records.js"
import type { AccountStore } from "./service.js"
import * as Rows from "./sqlRows.js"
import * as sqlOAuth from "./sqlOAuth.js"
import * as sqlSso from "./sqlSso.js"
import { helpers } from "./sqlSupport.js"
import * as Transitions from "./transitions.js"

const fail = (reason: AccountStoreError["reason"], subject: string) =>
  Effect.fail(new AccountStoreError({ reason, subject }))

/**
 * Runs the migrations, mapping their failures to `AccountStoreError` (the Migrator turns a failed statement into
 * a defect; it is a store failure to the caller).
 */
export const migrateOrFail: Effect.Effect<void, AccountStoreError, SqlClient.SqlClient> = migrate.pipe(
  Effect.catchAll((error) => Effect.fail(Rows.sqlFailure("migrations", error))),
  Effect.catchSomeDefect((defect) =>
    defect instanceof Migrator.MigrationError
      ? Option.some(Effect.fail(Rows.sqlFailure("migrations", { message: defect.message, cause: defect.cause })))
      : Option.none()
  ),
  Effect.asVoid
)

/** Builds the SQL store on the ambient client, migrating the schema first. */
export const make: Effect.Effect<AccountStore["Type"], AccountStoreError, SqlClient.SqlClient> = Effect.gen(
  function* () {
    const sql = yield* SqlClient.SqlClient
    yield* migrateOrFail
    const { forUpdate, guard, transaction } = helpers(sql)
    const users = sql.literal(Rows.userColumns)

    const userById = (id: string) =>
      Effect.map(sql<Rows.UserRow>`SELECT ${users} FROM users WHERE id = ${id}`, (rows) =>
        Option.map(Option.fromNullable(rows[0]), Rows.toUser)
      )
    const existingUser = (id: UserId) =>
      Effect.flatMap(userById(id), Option.match({ onNone: () => fail("UserNotFound", id), onSome: Effect.succeed }))
    const userByEmail = (email: string) =>
      Effect.map(sql<Rows.UserRow>`SELECT ${users} FROM users WHERE email = ${email}`, (rows) =>
        Option.map(Option.fromNullable(rows[0]), Rows.toUser)
      )
    const membership = (userId: string, workspaceId: string) =>
      Effect.map(
        sql<Rows.MembershipRow>`SELECT user_id, workspace_id, role, created_at FROM memberships
          WHERE user_id = ${userId} AND workspace_id = ${workspaceId}`,
        (rows) => Option.map(Option.fromNullable(rows[0]), Rows.toMembership)
      )

    return {
      ...sqlOAuth.make(sql),
      ...sqlSso.make(sql),

      createUser: (email) =>
        transaction("createUser")(
          Effect.gen(function* () {
            if (Option.isSome(yield* userByEmail(email))) return yield* fail("UserExists", email)
            const user = new User({
              id: newId("usr") as UserId,
              email,
              createdAt: yield* Clock.currentTimeMillis,
              disabled: false
            })
            yield* sql`INSERT INTO users (id, email, created_at, disabled, active_workspace_id, password_hash)
              VALUES (${user.id}, ${email}, ${user.createdAt}, ${0}, ${null}, ${null})`
            return user
          })
        ).pipe(
          // A concurrent create of the same email loses on the unique index; report it as what it is.
          Effect.catchIf(
            (e) => e.reason === "Sql",
            (e) =>
              Effect.flatMap(guard("createUser")(userByEmail(email)), (found) =>
                Option.isSome(found) ? fail("UserExists", email) : Effect.fail(e)
              )
          )
        ),
      getUser: (id) => guard("getUser")(existingUser(id)),
      findUserByEmail: (email) => guard("findUserByEmail")(userByEmail(email)),
      setUserDisabled: (id, disabled) =>
        transaction("setUserDisabled")(
          Effect.zipRight(sql`UPDATE users SET disabled = ${disabled ? 1 : 0} WHERE id = ${id}`, existingUser(id))
        ),
      setPasswordHash: (id, hash) =>
        transaction("setPasswordHash")(
          Effect.zipRight(
            existingUser(id),
            sql`UPDATE users SET password_hash = ${Redacted.value(hash)} WHERE id = ${id}`
          )
        ).pipe(Effect.asVoid),
      getPasswordHash: (id) =>
        guard("getPasswordHash")(
          Effect.flatMap(
            sql<{ readonly password_hash: string | null }>`SELECT password_hash FROM users WHERE id = ${id}`,
            (rows) =>
              rows[0] === undefined
                ? fail("UserNotFound", id)
                : Effect.succeed(Option.map(Option.fromNullable(rows[0].password_hash), Redacted.make))
          )
        ),
      setActiveWorkspace: (id, workspaceId) =>
        transaction("setActiveWorkspace")(
          Effect.gen(function* () {
            yield* existingUser(id)
            if (Option.isNone(yield* membership(id, workspaceId))) return yield* fail("NotAMember", workspaceId)
            yield* sql`UPDATE users SET active_workspace_id = ${workspaceId} WHERE id = ${id}`
            return yield* existingUser(id)
          })
        ),

      putMembership: (userId, workspaceId, role) =>
        transaction("putMembership")(
          Effect.gen(function* () {
            const user = yield* existingUser(userId)
            const existing = yield* membership(userId, workspaceId)
            if (Option.isSome(existing)) {
              yield* sql`UPDATE memberships SET role = ${role} WHERE user_id = ${userId} AND workspace_id = ${workspaceId}`
            } else {
              yield* sql`INSERT INTO memberships (user_id, workspace_id, role, created_at)
                VALUES (${userId}, ${workspaceId}, ${role}, ${yield* Clock.currentTimeMillis})`
            }
            if (user.activeWorkspaceId === undefined) {
              yield* sql`UPDATE users SET active_workspace_id = ${workspaceId} WHERE id = ${userId}`
            }
            return Option.getOrThrow(yield* membership(userId, workspaceId))
          })
        ),
      removeMembership: (userId, workspaceId) =>
        transaction("removeMembership")(
          Effect.gen(function* () {
            const removed = yield* sql`DELETE FROM memberships WHERE user_id = ${userId}
              AND workspace_id = ${workspaceId} RETURNING user_id`
            if (removed.length === 0) return yield* fail("NotAMember", workspaceId)
            yield* sql`UPDATE users SET active_workspace_id = ${null}
              WHERE id = ${userId} AND active_workspace_id = ${workspaceId}`
          })
        ),
      getMembership: (userId, workspaceId) => guard("getMembership")(membership(userId, workspaceId)),
      listMemberships: (userId) =>
        guard("listMemberships")(
          Effect.map(
            sql<Rows.MembershipRow>`SELECT user_id, workspace_id, role, created_at FROM memberships
              WHERE user_id = ${userId}`,
            (rows) => rows.map(Rows.toMembership).sort((a, b) => compare(a.workspaceId, b.workspaceId))
          )
        ),
      listMembers: (workspaceId) =>
        guard("listMembers")(
          Effect.map(
            sql<Rows.UserRow & { readonly m_role: string; readonly m_created_at: unknown }>`SELECT
              u.id, u.email, u.created_at, u.disabled, u.active_workspace_id, m.role AS m_role,
              m.created_at AS m_created_at
              FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = ${workspaceId}`,
            (rows) =>
              rows
                .map((row) => ({
                  user: Rows.toUser(row),
                  membership: Rows.toMembership({
                    user_id: row.id,
                    workspace_id: workspaceId,
                    role: row.m_role,
                    created_at: row.m_created_at
                  })
                }))
                .sort((a, b) => userOrder(a.user, b.user))
          )
        ),

      createSignInLink: (link) =>
        guard("createSignInLink")(
          Effect.asVoid(sql`INSERT INTO sign_in_links (token_hash, user_id, created_at, expires_at, used_at)
            VALUES (${link.tokenHash}, ${link.userId}, ${link.createdAt}, ${link.expiresAt}, ${null})`)
        ),
      redeemSignInLink: (tokenHash, at) =>
        transaction("redeemSignInLink")(
          Effect.gen(function* () {
            const rows = yield* sql<{
              readonly user_id: string
              readonly expires_at: unknown
              readonly used_at: unknown
            }>`SELECT user_id, expires_at, used_at FROM sign_in_links WHERE token_hash = ${tokenHash} ${forUpdate}`
            const row = rows[0]
            if (row === undefined) return yield* fail("SignInLinkNotFound", "sign-in link")
            const outcome = Transitions.redeem(
              { expiresAt: Rows.int(row.expires_at), usedAt: Rows.optionalInt(row.used_at) },
              at
            )
            if (outcome === "used") return yield* fail("SignInLinkUsed", "sign-in link")
            if (outcome === "expired") return yield* fail("SignInLinkExpired", "sign-in link")
            // The person's other unused links end with it: a password is set once per link, not once per link issued.
            yield* sql`UPDATE sign_in_links SET used_at = ${at} WHERE user_id = ${row.user_id} AND used_at IS NULL`
            return row.user_id as UserId
          })
        ),

      createWebSession: (idHash, session) =>
        guard("createWebSession")(
          Effect.asVoid(sql`INSERT INTO web_sessions (id_hash, user_id, created_at, expires_at)
            VALUES (${idHash}, ${session.userId}, ${session.createdAt}, ${session.expiresAt})`)
        ),
      getWebSession: (idHash) =>
        guard("getWebSession")(
          Effect.map(
            sql<{
              readonly user_id: string
              readonly created_at: unknown
              readonly expires_at: unknown
            }>`SELECT user_id, created_at, expires_at FROM web_sessions WHERE id_hash = ${idHash}`,
            (rows) =>
              Option.map(
                Option.fromNullable(rows[0]),
                (row) =>
                  new WebSession({
                    userId: row.user_id as UserId,
                    createdAt: Rows.int(row.created_at),
                    expiresAt: Rows.int(row.expires_at)
                  })
              )
          )
        ),
      deleteWebSession: (idHash) =>
        guard("deleteWebSession")(Effect.asVoid(sql`DELETE FROM web_sessions WHERE id_hash = ${idHash}`)),
      deleteUserSessions: (userId) =>
        guard("deleteUserSessions")(Effect.asVoid(sql`DELETE FROM web_sessions WHERE user_id = ${userId}`)),

      purgeExpired: (now) =>
        transaction("purgeExpired")(
          Effect.map(
            Effect.all([
              sql`DELETE FROM web_sessions WHERE expires_at <= ${now} RETURNING id_hash`,
              sql`DELETE FROM sign_in_links WHERE expires_at <= ${now} RETURNING token_hash`,
              sql`DELETE FROM device_codes WHERE expires_at <= ${now} RETURNING device_code_hash`,
              sql`DELETE FROM oauth_tokens WHERE expires_at <= ${now} RETURNING hash`
            ]),
            (deleted) => deleted.reduce((n, rows) => n + rows.length, 0)
          )
        ),

      appendAudit: (event) =>
        guard("appendAudit")(
          Effect.asVoid(sql`INSERT INTO account_audit (actor, action, subject, workspace_id, detail, at)
            VALUES (${event.actor}, ${event.action}, ${event.subject}, ${event.workspaceId ?? null}, ${event.detail},
            ${event.at})`)
        ),
      listAudit: (filter) =>
        guard("listAudit")(
          Effect.map(
            sql<Rows.AuditRow & { readonly seq: unknown }>`SELECT seq, actor, action, subject, workspace_id, detail, at
              FROM account_audit WHERE 1 = 1
              ${filter.workspaceId === undefined ? sql.literal("") : sql`AND workspace_id = ${filter.workspaceId}`}
              ${filter.userId === undefined ? sql.literal("") : sql`AND (actor = ${filter.userId} OR subject = ${filter.userId})`}`,
            (rows) =>
              rows
                .map((row) => ({ seq: Rows.int(row.seq), event: Rows.toAudit(row) }))
                .sort((a, b) => a.event.at - b.event.at || a.seq - b.seq)
                .map((e) => e.event)
          )
        )
    } satisfies Omit<
      AccountStore["Type"],
      keyof ReturnType<typeof sqlOAuth.make> | keyof ReturnType<typeof sqlSso.make>
    >
  }
)
