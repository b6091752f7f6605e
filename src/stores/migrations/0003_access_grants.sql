-- Access grants made through GET/POST /v1/datasets/{datasetId}/access. The authz plugin loads them
-- into its Casbin enforcer beside the policy files in policies/.
CREATE TABLE IF NOT EXISTS access_grants (
  grant_id       text PRIMARY KEY,
  tenant         text NOT NULL,
  resource_type  text NOT NULL,
  resource_id    text NOT NULL,
  principal_type text NOT NULL CHECK (principal_type IN ('role', 'subject')),
  principal_id   text NOT NULL,
  actions        text[] NOT NULL,
  row_rule       text,
  field_rules    jsonb NOT NULL DEFAULT '{}',
  expires_at     timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text NOT NULL,
  UNIQUE (tenant, resource_type, resource_id, principal_type, principal_id)
);

-- When a resource's grants last changed (a revoke leaves no row in access_grants to date it).
CREATE TABLE IF NOT EXISTS access_changes (
  tenant        text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  updated_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant, resource_type, resource_id)
);
