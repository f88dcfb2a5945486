DROP TABLE settlement_runs;
DROP INDEX ledger_entries_txid;
ALTER TABLE ledger_entries DROP COLUMN txid;
