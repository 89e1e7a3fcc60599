-- The access-token expiry of OAuth connections, for `expiring_within` and the refresher.
ALTER TABLE connections ADD COLUMN oauth_expires_at INTEGER;
CREATE INDEX connections_oauth_expiry ON connections(oauth_expires_at) WHERE oauth_expires_at IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX connections_last_tested ON connections(last_tested_at) WHERE deleted_at IS NULL;
