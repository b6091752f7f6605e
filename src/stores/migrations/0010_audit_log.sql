-- The audit log: append-only, hash-chained per tenant (src/audit/chain.ts computes the hashes).
CREATE TABLE IF NOT EXISTS audit_events (
  tenant        text        NOT NULL,
  seq           bigint      NOT NULL CHECK (seq >= 1),
  id            text        NOT NULL UNIQUE,
  time          timestamptz NOT NULL,
  request_id    text        NOT NULL,
  principal     text,
  auth_method   text        NOT NULL,
  operation_id  text        NOT NULL,
  action        text        NOT NULL,
  resource_type text,
  resource_ids  jsonb       NOT NULL,
  outcome       text        NOT NULL,
  status        integer     NOT NULL,
  rows_affected bigint,
  client_ip     text        NOT NULL,
  user_agent    text,
  captured      jsonb       NOT NULL,
  hash          text        NOT NULL,
  prev_hash     text,
  PRIMARY KEY (tenant, seq)
);
CREATE INDEX IF NOT EXISTS audit_events_tenant_time ON audit_events (tenant, time);

-- Append-only for every role, owner included: the trigger refuses changes and removals (it works on
-- PGlite and PostgreSQL alike). Only a superuser can get round it, by disabling the trigger or
-- running with session_replication_role = replica, and the hash chain then shows what changed.
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Roles that aren't the owner get no way to change rows even with the trigger disabled.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC;
