-- Resumable uploads (tus) and the ingest jobs that read them once they are complete.
-- The tus bytes and their tus metadata live in files (DATA_DIR/uploads); this is who owns each upload.
CREATE TABLE IF NOT EXISTS uploads (
  id          text PRIMARY KEY,
  tenant      text NOT NULL,
  created_by  text NOT NULL,
  dataset_id  text NOT NULL,
  format      text NOT NULL CHECK (format IN ('ndjson', 'csv')),
  gzip        boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One job per finished upload. Exactly once across crashes: chunk n of a job tags its rows
-- `<job id>#<n>` in `_request_id`; after the chunk's INSERT, lines_done, the counters, the
-- quarantined rows and chunks_done = n + 1 commit in one transaction. A resumed job deletes the
-- rows tagged `<job id>#<chunks_done>` (the chunk that was in flight) and goes on after lines_done.
CREATE TABLE IF NOT EXISTS ingest_jobs (
  id                text PRIMARY KEY,
  tenant            text NOT NULL,
  created_by        text NOT NULL,
  dataset_id        text NOT NULL,
  upload_id         text NOT NULL UNIQUE,
  file_path         text NOT NULL,
  format            text NOT NULL CHECK (format IN ('ndjson', 'csv')),
  gzip              boolean NOT NULL DEFAULT false,
  state             text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  rows_done         bigint NOT NULL DEFAULT 0,
  rows_quarantined  bigint NOT NULL DEFAULT 0,
  bytes_done        bigint NOT NULL DEFAULT 0,
  bytes_total       bigint NOT NULL DEFAULT 0,
  lines_done        bigint NOT NULL DEFAULT 0,
  chunks_done       integer NOT NULL DEFAULT 0,
  errors            jsonb NOT NULL DEFAULT '[]'::jsonb,
  error             text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  -- A running job's claim; a job whose lease ran out (its process died) is claimed again.
  lease_owner       text,
  lease_until       timestamptz
);
CREATE INDEX IF NOT EXISTS ingest_jobs_pending ON ingest_jobs (created_at) WHERE state IN ('queued', 'running');
