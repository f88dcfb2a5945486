-- What lets a close read only what is new (docs/books.md, "Closing a day"), PostgreSQL only.
--
-- Each ledger entry keeps the id of the transaction that wrote it (xid8 as a number; NULL for
-- entries written before this migration, which the first close after it reads in full). A
-- BRIN index: appended rows carry ever larger ids, so a range costs nothing per insert.
ALTER TABLE ledger_entries ADD COLUMN txid BIGINT;
ALTER TABLE ledger_entries ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX ledger_entries_txid ON ledger_entries USING brin (txid);

-- One row per close that finished: every payable entry written by a transaction older than
-- `watermark` (the xmin of the snapshot the close took first) and recorded before
-- `window_end` is in a statement. The next close reads entries recorded since the latest such
-- `window_end`, and older ones only when written by a transaction at or after its watermark.
CREATE TABLE settlement_runs (
    id           TEXT PRIMARY KEY,
    window_end   BIGINT NOT NULL,
    watermark    BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL
);
CREATE INDEX settlement_runs_latest ON settlement_runs (window_end, watermark);
