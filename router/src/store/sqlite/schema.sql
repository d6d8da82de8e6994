CREATE TABLE IF NOT EXISTS deliveries (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    signature    TEXT NOT NULL,
    body         BLOB NOT NULL,
    event_count  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id           TEXT PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
    kind         TEXT NOT NULL,
    payload      BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    seen_count   INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS delivery_events (
    delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
    seq          INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    duplicate    INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    id               INTEGER PRIMARY KEY,
    route            TEXT NOT NULL,
    mode             TEXT NOT NULL,
    event_id         TEXT,
    delivery_id      INTEGER NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_until      INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (route, next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
-- Whether a delivery is still owed anything: what pruning asks of every old delivery.
CREATE INDEX IF NOT EXISTS jobs_by_delivery ON jobs (delivery_id);
CREATE INDEX IF NOT EXISTS events_by_delivery ON events (delivery_id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (received_at);
CREATE TABLE IF NOT EXISTS calls (
    id           TEXT PRIMARY KEY,
    user_phone   TEXT,
    user_bsuid   TEXT,
    live         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    doc          TEXT NOT NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_live_phone ON calls (user_phone) WHERE live = 1;
CREATE INDEX IF NOT EXISTS calls_live_bsuid ON calls (user_bsuid) WHERE live = 1;
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (created_at DESC, id);
CREATE TABLE IF NOT EXISTS permissions (
    id           INTEGER PRIMARY KEY,
    user_phone   TEXT UNIQUE,
    user_bsuid   TEXT UNIQUE,
    doc          TEXT NOT NULL,
    version      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    id           TEXT PRIMARY KEY,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_sessions_by_expiry ON revoked_sessions (expires_at);
