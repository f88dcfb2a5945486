DROP TABLE reconciliation_breaks;
DROP TABLE reconciliation_runs;
DROP TABLE settlement_entries;
DROP TABLE settlements;
DROP TABLE ledger_entries;
DROP TABLE ledger_journals;
ALTER TABLE refunds DROP COLUMN fee_return_minor;
DROP TABLE payment_fees;
DROP TABLE pricing_versions;
