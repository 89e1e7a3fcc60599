-- A flow started from the web UI is bound to the browser that started it: the hash of a value
-- that browser holds in a cookie. The callback must present it (NULL: a flow of the API or
-- CLI, not bound).
ALTER TABLE oauth_states ADD COLUMN browser_hash BLOB;
