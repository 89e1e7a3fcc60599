-- Inbound webhooks: endpoints (their public id is the URL's secret part; the signing secret is
-- sealed) and the events they accepted (headers and body sealed), one per provider delivery:
-- `dedupe` (a hash of the provider's id, or of the signature) repeats for a repeated delivery.
CREATE TABLE inbound_endpoints (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    scheme TEXT NOT NULL,
    config TEXT NOT NULL,
    target_id TEXT REFERENCES connections(id),
    key_version INTEGER NOT NULL,
    secret BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX inbound_endpoints_name ON inbound_endpoints (org_id, name) WHERE deleted_at IS NULL;
CREATE TABLE inbound_events (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES inbound_endpoints(id),
    org_id TEXT NOT NULL,
    dedupe TEXT NOT NULL,
    provider_id TEXT,
    key_version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    status TEXT NOT NULL,
    delivery_id TEXT,
    received_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX inbound_events_dedupe ON inbound_events (endpoint_id, dedupe);
CREATE INDEX inbound_events_endpoint ON inbound_events (endpoint_id, id);
