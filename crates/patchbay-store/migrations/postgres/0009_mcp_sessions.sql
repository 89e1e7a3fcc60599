-- Sessions of the MCP gateway's clients (protocol revisions with `Mcp-Session-Id`), kept here so
-- that any replica continues a session another started. The id is stored hashed; a session
-- belongs to the token that started it.
CREATE TABLE mcp_sessions (
    id_hash TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    protocol_version TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL
);
