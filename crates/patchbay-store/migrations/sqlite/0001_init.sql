-- Patchbay schema, SQLite dialect. Times are Unix milliseconds; JSON is TEXT; flags are 0/1.
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX orgs_name ON orgs(name);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    description TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX projects_org_name ON projects(org_id, name) WHERE deleted_at IS NULL;

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    project_id TEXT REFERENCES projects(id),
    operator INTEGER NOT NULL DEFAULT 0,
    hash BLOB NOT NULL,
    hint TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX tokens_hash ON tokens(hash);
CREATE INDEX tokens_org ON tokens(org_id, id);

CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    description TEXT,
    key_version INTEGER NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX secrets_org_name ON secrets(org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX secrets_key_version ON secrets(key_version);

CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    auth_type TEXT NOT NULL,
    auth TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    test_status TEXT NOT NULL DEFAULT 'untested',
    test_message TEXT,
    test_latency_ms INTEGER,
    last_tested_at INTEGER,
    last_used_at INTEGER,
    used_by TEXT NOT NULL DEFAULT '[]',
    oauth TEXT,
    mcp TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX connections_project_name ON connections(project_id, name) WHERE deleted_at IS NULL;
CREATE INDEX connections_org_list ON connections(org_id, id) WHERE deleted_at IS NULL;

CREATE TABLE connection_secrets (
    connection_id TEXT NOT NULL REFERENCES connections(id),
    field TEXT NOT NULL,
    key_version INTEGER,
    ciphertext BLOB,
    secret_ref TEXT,
    PRIMARY KEY (connection_id, field)
);
CREATE INDEX connection_secrets_key_version ON connection_secrets(key_version);

CREATE TABLE vault_keys (
    version INTEGER PRIMARY KEY,
    wrapped BLOB NOT NULL,
    root_fingerprint TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX audit_org ON audit(org_id, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
