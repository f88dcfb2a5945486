-- Who holds an in-flight idempotency claim, and whether that process still lives: a claim whose
-- process stopped heartbeating is taken over by the request's retry at once, instead of after
-- the lease. Claims written before this column (NULL) keep the lease rule.
ALTER TABLE idempotency_keys ADD COLUMN claimed_by TEXT;

-- One row per running payfac process (its instance id), beaten about every second and deleted
-- at a clean shutdown; a killed process leaves a row that stops moving.
CREATE TABLE instances (
    id            TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);
