-- Parking core (PostgreSQL). Instants are epoch milliseconds (BIGINT), booleans
-- 0/1 integers, money integer minor units with a currency code. The same
-- columns exist on PostgreSQL; only the constraints' spelling differs.

CREATE TABLE IF NOT EXISTS spaces (
    id            TEXT PRIMARY KEY,
    level         TEXT NOT NULL,
    zone          TEXT NOT NULL,
    space_type    TEXT NOT NULL,
    rank          BIGINT NOT NULL DEFAULT 0,
    -- allocation status: available | occupied | out_of_service
    -- ("reserved" is derived from active reservations, never stored)
    status        TEXT NOT NULL DEFAULT 'available'
                  CHECK (status IN ('available', 'occupied', 'out_of_service')),
    session_id    TEXT,
    -- what a bay sensor / camera last said: free | occupied | unknown
    sensor_state  TEXT NOT NULL DEFAULT 'unknown',
    in_config     BIGINT NOT NULL DEFAULT 1,
    updated_ms    BIGINT NOT NULL,
    CHECK ((status = 'occupied') = (session_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS spaces_status ON spaces (status, space_type, rank);
CREATE UNIQUE INDEX IF NOT EXISTS spaces_one_per_session ON spaces (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS vehicles (
    plate         TEXT PRIMARY KEY,
    vehicle_type  TEXT NOT NULL DEFAULT 'unknown',
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS permits (
    id            TEXT PRIMARY KEY,
    plate         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    valid_from    TEXT NOT NULL,
    valid_until   TEXT,
    permit_json   TEXT NOT NULL,
    source        TEXT NOT NULL DEFAULT 'config',
    updated_ms    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS permits_plate ON permits (plate);

CREATE TABLE IF NOT EXISTS plate_lists (
    plate         TEXT NOT NULL,
    list          TEXT NOT NULL CHECK (list IN ('blocked', 'watched', 'allowed')),
    reason        TEXT,
    source        TEXT NOT NULL DEFAULT 'config',
    added_ms      BIGINT NOT NULL,
    PRIMARY KEY (plate, list)
);

CREATE TABLE IF NOT EXISTS sessions (
    id             TEXT PRIMARY KEY,
    plate          TEXT NOT NULL,
    vehicle_type   TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'closed', 'superseded')),
    started_ms     BIGINT NOT NULL,
    ended_ms       BIGINT,
    entry_gate     TEXT,
    exit_gate      TEXT,
    entry_read_id  TEXT,
    exit_read_id   TEXT,
    space_id       TEXT,
    space_type     TEXT,
    reservation_id TEXT,
    entry_reason   TEXT NOT NULL,
    exit_reason    TEXT,
    fee_minor      BIGINT,
    currency       TEXT NOT NULL,
    evidence_json  TEXT
);
-- At most one open session per plate, enforced by the database.
CREATE UNIQUE INDEX IF NOT EXISTS sessions_one_open_per_plate ON sessions (plate) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS sessions_plate ON sessions (plate, started_ms);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions (status, started_ms);

CREATE TABLE IF NOT EXISTS reservations (
    id             TEXT PRIMARY KEY,
    plate          TEXT NOT NULL,
    -- the bay held (a type booking holds a concrete bay chosen at booking time)
    space_id       TEXT NOT NULL,
    space_type     TEXT NOT NULL,
    requested      TEXT NOT NULL,
    start_ms       BIGINT NOT NULL,
    end_ms         BIGINT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('booked', 'checked_in', 'completed', 'cancelled', 'no_show')),
    price_minor    BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    session_id     TEXT,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL,
    CHECK (end_ms > start_ms)
);
CREATE INDEX IF NOT EXISTS reservations_space ON reservations (space_id, start_ms);
CREATE INDEX IF NOT EXISTS reservations_plate ON reservations (plate, start_ms);
CREATE INDEX IF NOT EXISTS reservations_status ON reservations (status, start_ms);
-- No double booking, enforced by the database: an exclusion constraint
-- refuses two active reservations of one bay with overlapping [start, end).
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE reservations DROP CONSTRAINT IF EXISTS reservations_no_overlap;
ALTER TABLE reservations ADD CONSTRAINT reservations_no_overlap
    EXCLUDE USING gist (space_id WITH =, int8range(start_ms, end_ms) WITH &&)
    WHERE (status IN ('booked', 'checked_in'));

-- Charges and refunds. A retry with the same idempotency key finds the row.
CREATE TABLE IF NOT EXISTS payments (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
    session_id      TEXT,
    reservation_id  TEXT,
    plate           TEXT,
    purpose         TEXT NOT NULL,
    parent_id       TEXT,
    method          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    reason          TEXT,
    failure         TEXT,
    gateway_ref     TEXT,
    actor           TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    completed_ms    BIGINT
);
CREATE INDEX IF NOT EXISTS payments_session ON payments (session_id);
CREATE INDEX IF NOT EXISTS payments_reservation ON payments (reservation_id);
CREATE INDEX IF NOT EXISTS payments_plate ON payments (plate, created_ms);
CREATE INDEX IF NOT EXISTS payments_pending ON payments (status);
CREATE OR REPLACE VIEW refunds AS
    SELECT id, parent_id AS payment_id, session_id, reservation_id, amount_minor, currency, reason, status, actor, created_ms
    FROM payments WHERE kind = 'refund';

-- The built-in gateway's own ledger (what an external processor would keep):
-- one row per idempotency key, so a re-driven charge is never taken twice.
CREATE TABLE IF NOT EXISTS gateway_ledger (
    idempotency_key TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    method          TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    reference       TEXT NOT NULL,
    at_ms           BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS receipts (
    id            TEXT PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    payment_id    TEXT NOT NULL UNIQUE,
    body_json     TEXT NOT NULL,
    created_ms    BIGINT NOT NULL
);

-- Money owed after a pay-later exit or a no-show; settled by later payments.
CREATE TABLE IF NOT EXISTS debts (
    id             TEXT PRIMARY KEY,
    plate          TEXT NOT NULL,
    session_id     TEXT UNIQUE,
    reservation_id TEXT UNIQUE,
    kind           TEXT NOT NULL,
    amount_minor   BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    incurred_ms    BIGINT NOT NULL,
    settled_ms     BIGINT
);
CREATE INDEX IF NOT EXISTS debts_plate ON debts (plate, settled_ms);

CREATE TABLE IF NOT EXISTS flags (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    plate         TEXT,
    session_id    TEXT,
    gate          TEXT,
    detail        TEXT NOT NULL,
    evidence_json TEXT,
    status        TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    updated_by    TEXT,
    note          TEXT
);
CREATE INDEX IF NOT EXISTS flags_status ON flags (status, created_ms);

CREATE TABLE IF NOT EXISTS gate_decisions (
    id            TEXT PRIMARY KEY,
    gate          TEXT,
    direction     TEXT NOT NULL,
    plate         TEXT NOT NULL,
    session_id    TEXT,
    command       TEXT NOT NULL,
    verdict       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    explanation   TEXT NOT NULL,
    amount_minor  BIGINT,
    read_id       TEXT,
    source        TEXT NOT NULL,
    decided_ms    BIGINT NOT NULL,
    ack_state     TEXT,
    acked_ms      BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS gate_decisions_plate ON gate_decisions (plate, decided_ms);
CREATE INDEX IF NOT EXISTS gate_decisions_session ON gate_decisions (session_id);

CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    rate_per_min  BIGINT NOT NULL,
    source        TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    revoked       BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject);
