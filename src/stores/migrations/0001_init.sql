-- Small key/value table for gateway-wide metadata (e.g. install id, feature flags).
CREATE TABLE IF NOT EXISTS weir_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);
