-- Pollers: where each poll (and each backfill) stopped, and which replica
-- may poll a source right now.

CREATE TABLE poll_cursors (
    name       TEXT    PRIMARY KEY,
    cursor     TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);
