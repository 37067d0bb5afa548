-- Bay watch: since when a bay's sensor/camera state has held (for the
-- occupied-without-session grace period), which occupancy episode was already
-- flagged (so a bay is flagged once per episode), and a staff override of the
-- occupancy state that wins over sensors and cameras until cleared.
ALTER TABLE spaces ADD COLUMN sensor_since_ms BIGINT;
ALTER TABLE spaces ADD COLUMN sensor_flagged_ms BIGINT;
ALTER TABLE spaces ADD COLUMN override_state TEXT CHECK (override_state IN ('free', 'occupied'));
ALTER TABLE spaces ADD COLUMN override_by TEXT;
ALTER TABLE spaces ADD COLUMN override_ms BIGINT;
