-- Leases for background work that must run once across replicas (the re-test pass, the
-- background refresher): a holder keeps a lease until `expires_at` (Unix ms) and renews it.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
