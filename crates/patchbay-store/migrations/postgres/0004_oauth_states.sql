-- Pending authorization-code flows. The state value is kept only as its SHA-256; the PKCE
-- verifier is sealed. A row is used once, and expires after ten minutes.
CREATE TABLE oauth_states (
    state_hash BYTEA PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    project_id TEXT NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections(id),
    principal TEXT NOT NULL,
    issuer TEXT,
    redirect_uri TEXT NOT NULL,
    return_to TEXT,
    key_version BIGINT NOT NULL,
    code_verifier BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);
