-- Datasets: metadata here, rows in one ClickHouse table per dataset (named after the dataset id).
CREATE TABLE IF NOT EXISTS datasets (
  id             text PRIMARY KEY,
  tenant         text NOT NULL,
  name           text NOT NULL,
  description    text,
  columns        jsonb NOT NULL,
  time_column    text,
  sort_key       text[] NOT NULL DEFAULT '{}',
  partition_by   text NOT NULL DEFAULT 'none',
  retention_days int,
  version        int NOT NULL DEFAULT 1,
  -- Bumped when the table is rebuilt (a breaking change): rows checked against an older table are refused.
  table_generation int NOT NULL DEFAULT 1,
  created_by     text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  deleted_at     timestamptz,
  purge_after    timestamptz
);
-- A name is unique among a tenant's live datasets only.
CREATE UNIQUE INDEX IF NOT EXISTS datasets_tenant_live_name ON datasets (tenant, name) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS datasets_tenant_created ON datasets (tenant, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS datasets_purge_due ON datasets (purge_after) WHERE purge_after IS NOT NULL;

CREATE TABLE IF NOT EXISTS dataset_versions (
  dataset_id   text NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
  version      int NOT NULL,
  breaking     boolean NOT NULL,
  columns      jsonb NOT NULL,
  time_column  text,
  sort_key     text[] NOT NULL,
  partition_by text NOT NULL,
  diff         jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text NOT NULL,
  PRIMARY KEY (dataset_id, version)
);

-- Rows that did not fit the schema, as sent. In PostgreSQL rather than ClickHouse so they commit in
-- the same transaction as an ingest job's progress and can be undone with a failed attempt.
CREATE TABLE IF NOT EXISTS ingest_quarantine (
  id          bigserial PRIMARY KEY,
  dataset_id  text NOT NULL,
  request_id  text NOT NULL,
  line        bigint NOT NULL,
  column_name text,
  reason      text NOT NULL,
  raw         text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ingest_quarantine_dataset ON ingest_quarantine (dataset_id, id);
CREATE INDEX IF NOT EXISTS ingest_quarantine_request ON ingest_quarantine (request_id);

-- Idempotency-Key records for ingest. `owner` is the boot id of the process doing the work and
-- `lease_until` when another process may take over an attempt that never finished.
CREATE TABLE IF NOT EXISTS ingest_idempotency (
  tenant      text NOT NULL,
  key         text NOT NULL,
  dataset_id  text NOT NULL,
  body_hash   text,
  state       text NOT NULL CHECK (state IN ('running', 'done')),
  request_id  text NOT NULL,
  result      jsonb,
  owner       text NOT NULL,
  lease_until timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, key)
);
