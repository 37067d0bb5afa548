-- Foundation schema (SQLite). Timestamps are UTC, stored as RFC 3339 text in
-- `*_at` columns; booleans as 0/1 integers (the Any driver cannot decode
-- SQLite BOOLEAN).
CREATE TABLE IF NOT EXISTS plate_reads (
    id            TEXT PRIMARY KEY,
    camera        TEXT NOT NULL,
    role          TEXT NOT NULL,
    gate          TEXT,
    plate         TEXT NOT NULL,
    raw_text      TEXT NOT NULL,
    score         REAL NOT NULL,
    read_at       TEXT NOT NULL,
    event_json    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plate_reads_plate ON plate_reads (plate, read_at);

CREATE TABLE IF NOT EXISTS camera_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    camera        TEXT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    at            TEXT NOT NULL
);

-- Append-only: no UPDATE or DELETE is ever issued against this table.
CREATE TABLE IF NOT EXISTS audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject       TEXT,
    reason        TEXT,
    detail_json   TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
