-- Web analytics: websites (tenant-owned, each with a tracking id) and their goals.
-- A deleted website keeps its row (deleted_at) so its tracking id is never reissued.
CREATE TABLE IF NOT EXISTS analytics_websites (
  id                uuid PRIMARY KEY,
  tenant            text NOT NULL,
  tracking_id       text NOT NULL UNIQUE,
  domain            text NOT NULL,
  name              text NOT NULL,
  timezone          text NOT NULL,
  currency          text NOT NULL,
  industry          text,
  allowed_hostnames jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_by        text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  deleted_at        timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS analytics_websites_domain ON analytics_websites (tenant, lower(domain)) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS analytics_websites_list ON analytics_websites (tenant, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE IF NOT EXISTS analytics_goals (
  id            text PRIMARY KEY,
  website_id    uuid NOT NULL REFERENCES analytics_websites (id) ON DELETE CASCADE,
  name          text NOT NULL,
  type          text NOT NULL CHECK (type IN ('destination', 'event', 'duration', 'pages_per_session')),
  -- The type's own fields (match_type/value, category/action/label, min_seconds, min_pages), as the API shows them.
  definition    jsonb NOT NULL,
  value_numeric double precision,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (website_id, name)
);
CREATE INDEX IF NOT EXISTS analytics_goals_list ON analytics_goals (website_id, created_at, id);
