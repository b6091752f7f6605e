-- Export jobs: the compiled query is kept with the job so any gateway process can run or resume it.
CREATE TABLE IF NOT EXISTS export_jobs (
  id            text PRIMARY KEY,
  tenant        text NOT NULL,
  created_by    text NOT NULL,
  source_type   text NOT NULL,
  source_id     text NOT NULL,
  format        text NOT NULL CHECK (format IN ('csv', 'ndjson', 'parquet')),
  compression   text NOT NULL CHECK (compression IN ('none', 'gzip')),
  query_sql     text NOT NULL,
  count_sql     text NOT NULL,
  query_params  jsonb NOT NULL,
  status        text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'expired')),
  rows          bigint NOT NULL DEFAULT 0,
  bytes         bigint NOT NULL DEFAULT 0,
  error         text,
  file_path     text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  -- A running job's claim; a job whose lease ran out (its process died) can be claimed again.
  lease_until   timestamptz,
  completed_at  timestamptz,
  expires_at    timestamptz
);
CREATE INDEX IF NOT EXISTS export_jobs_pending ON export_jobs (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS export_jobs_expiring ON export_jobs (expires_at) WHERE status = 'succeeded';
