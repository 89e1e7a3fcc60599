-- Key rotations and their progress, readable by every replica; the running one is held under
-- the `rotation` lease.
CREATE TABLE rotations (
    target_version BIGINT PRIMARY KEY,
    done BIGINT NOT NULL,
    total BIGINT NOT NULL,
    finished INTEGER NOT NULL,
    error TEXT,
    updated_at BIGINT NOT NULL
);
