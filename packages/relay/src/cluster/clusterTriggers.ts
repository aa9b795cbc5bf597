/**
 * The triggers through which PostgreSQL itself announces the store changes every relay node must act on
 * (`ClusterEventsPg.ts`), whichever process made them: a node, another node, or an admin command on the host.
 * They sit on the relay store's and the account store's tables; a table that does not exist (a relay without
 * accounts) is skipped. Installed at every start with `CREATE OR REPLACE`, under a transaction-scoped advisory lock,
 * so nodes starting together never race and a newer release simply replaces them. A notification is sent when the
 * transaction commits, and never when it rolls back.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

/** The tables watched, and the statements that matter on each. */
const watched: ReadonlyArray<readonly [table: string, on: string]> = [
  ["share_links", "UPDATE"],
  ["api_keys", "UPDATE"],
  ["signing_keys", "UPDATE"],
  ["machines", "UPDATE"],
  ["memberships", "UPDATE OR DELETE"],
  ["oauth_grants", "UPDATE"],
  ["users", "UPDATE"]
]

/** Arbitrary, fixed: the advisory lock the installation holds. */
const LOCK_KEY = 0x636d_6470

/** One function for every table; each branch reads only its table's columns (PL/pgSQL resolves fields lazily). */
const notifyFunction = (channel: string) => `
CREATE OR REPLACE FUNCTION cmdop_cluster_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  event json;
BEGIN
  IF TG_TABLE_NAME = 'share_links' THEN
    IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
      event := json_build_object('_tag', 'ShareRevoked', 'shareId', NEW.id);
    END IF;
  ELSIF TG_TABLE_NAME = 'api_keys' THEN
    IF NEW.retired_at IS NOT NULL AND OLD.retired_at IS NULL THEN
      event := json_build_object('_tag', 'KeyRetired', 'workspaceId', NEW.workspace_id);
    END IF;
  ELSIF TG_TABLE_NAME = 'signing_keys' THEN
    IF NEW.retired_at IS NOT NULL AND OLD.retired_at IS NULL THEN
      event := json_build_object('_tag', 'SigningKeyRetired', 'kid', NEW.kid);
    END IF;
  ELSIF TG_TABLE_NAME = 'machines' THEN
    IF NEW.workspace_id IS DISTINCT FROM OLD.workspace_id THEN
      event := json_build_object('_tag', 'MachineMoved', 'machineId', NEW.id);
    END IF;
  ELSIF TG_TABLE_NAME = 'memberships' THEN
    IF TG_OP = 'DELETE' THEN
      event := json_build_object('_tag', 'AccountChanged', 'userId', OLD.user_id);
    ELSIF NEW.role IS DISTINCT FROM OLD.role THEN
      event := json_build_object('_tag', 'AccountChanged', 'userId', NEW.user_id);
    END IF;
  ELSIF TG_TABLE_NAME = 'oauth_grants' THEN
    IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
      event := json_build_object('_tag', 'AccountChanged', 'userId', NEW.user_id);
    END IF;
  ELSIF TG_TABLE_NAME = 'users' THEN
    IF NEW.disabled IS DISTINCT FROM OLD.disabled THEN
      event := json_build_object('_tag', 'AccountChanged', 'userId', NEW.id);
    END IF;
  END IF;
  IF event IS NOT NULL THEN
    PERFORM pg_notify('${channel}', event::text);
  END IF;
  RETURN NULL;
END
$fn$`

/** Installs (or replaces) the function and a trigger on each watched table that exists. */
export const installTriggers = (channel: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`SELECT pg_advisory_xact_lock(${LOCK_KEY})`
        yield* sql.unsafe(notifyFunction(channel))
        for (const [table, on] of watched) {
          const [row] = yield* sql<{ readonly present: boolean }>`SELECT to_regclass(${table}) IS NOT NULL AS present`
          if (row?.present === true)
            yield* sql.unsafe(
              `CREATE OR REPLACE TRIGGER cmdop_cluster_${table} AFTER ${on} ON ${table}
                FOR EACH ROW EXECUTE FUNCTION cmdop_cluster_notify()`
            )
        }
      })
    )
  })
