-- OAuth client registrations per organization and provider; the client secret is sealed.
CREATE TABLE oauth_apps (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    client_id TEXT NOT NULL,
    key_version INTEGER,
    client_secret BLOB,
    scopes TEXT NOT NULL DEFAULT '[]',
    authorization_params TEXT NOT NULL DEFAULT '{}',
    token_params TEXT NOT NULL DEFAULT '{}',
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX oauth_apps_org_name ON oauth_apps(org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX oauth_apps_key_version ON oauth_apps(key_version);
