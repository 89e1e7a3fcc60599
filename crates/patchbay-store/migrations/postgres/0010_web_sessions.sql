-- Sessions of the web UI: a browser logs in with an API token and gets a cookie; the cookie's
-- value is stored hashed, so any replica serves the session and the table holds nothing a
-- browser could present. A session acts as its token, and ends with it.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_token ON web_sessions (token_id);
