-- The webhook outbox. A delivery's request (URL when it has no connection, headers, body) is
-- sealed; `target` shows only the host. Workers claim due rows with a lease (`locked_until`);
-- a row whose lease ran out is claimed again, so a crash can repeat a delivery, never lose it.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    connection_id TEXT REFERENCES connections(id),
    webhook_id TEXT NOT NULL,
    method TEXT NOT NULL,
    target TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    backoff_ms BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_status INTEGER,
    last_error TEXT,
    created_by TEXT NOT NULL,
    caller TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_org ON deliveries(org_id, id);
CREATE INDEX deliveries_connection ON deliveries(connection_id, status);
