-- Foundation schema (PostgreSQL). Same columns as the SQLite schema; the
-- store layer writes timestamps as RFC 3339 text so both backends read alike.
CREATE TABLE IF NOT EXISTS plate_reads (
    id            TEXT PRIMARY KEY,
    camera        TEXT NOT NULL,
    role          TEXT NOT NULL,
    gate          TEXT,
    plate         TEXT NOT NULL,
    raw_text      TEXT NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    read_at       TEXT NOT NULL,
    event_json    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plate_reads_plate ON plate_reads (plate, read_at);

CREATE TABLE IF NOT EXISTS camera_events (
    id            BIGSERIAL PRIMARY KEY,
    camera        TEXT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    at            TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_log (
    id            BIGSERIAL PRIMARY KEY,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject       TEXT,
    reason        TEXT,
    detail_json   TEXT
);
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
