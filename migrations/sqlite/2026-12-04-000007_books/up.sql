-- The facilitator's books (SQLite; keep in step with migrations/postgres): versioned pricing,
-- the fee snapshot of each payment and refund, the double-entry ledger, daily settlement
-- statements and reconciliation with CodePay (docs/books.md).

-- One row per price change of a merchant; the version in force for a payment is the newest one
-- effective at the payment's creation. `rates` is the JSON array of
-- {wallet, currency, percent_bps, fixed} as the ledger crate's `Rate`.
CREATE TABLE pricing_versions (
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    version       BIGINT NOT NULL CHECK (version > 0),
    effective_at  BIGINT NOT NULL,
    rates         TEXT NOT NULL,
    -- the operator key that set it
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, version)
);

-- The fee snapshot of a payment, written in the same commit that marks it succeeded (no row:
-- the payment never succeeded). A table of its own rather than columns of `payments`, which
-- is at diesel's 32-column limit.
CREATE TABLE payment_fees (
    payment_id         TEXT PRIMARY KEY REFERENCES payments (id),
    -- the platform's fee = percentage part + fixed part, minor units of the payment's currency
    fee_minor          BIGINT NOT NULL CHECK (fee_minor >= 0),
    fee_percent_minor  BIGINT NOT NULL CHECK (fee_percent_minor >= 0),
    fee_fixed_minor    BIGINT NOT NULL CHECK (fee_fixed_minor >= 0),
    -- the pricing version the fee was computed with (NULL: the merchant had no pricing)
    pricing_version    BIGINT,
    -- CodePay's own fee (`trans_fee_c`) as CodePay reported it, when it did
    codepay_fee_minor  BIGINT CHECK (codepay_fee_minor >= 0),
    created_at         BIGINT NOT NULL,
    CHECK (fee_minor = fee_percent_minor + fee_fixed_minor)
);

-- The share of the payment's fee given back, set when the refund succeeds.
ALTER TABLE refunds ADD COLUMN fee_return_minor BIGINT CHECK (fee_return_minor >= 0);

-- One row per journal: one business event of one merchant in one currency. (kind, subject) is
-- unique, so no event is ever posted twice.
CREATE TABLE ledger_journals (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('capture', 'fee', 'refund', 'fee_return',
                      'late_success_refund', 'reversal', 'codepay_fee', 'adjustment')),
    subject_type  TEXT NOT NULL CHECK (subject_type IN ('payment', 'refund', 'adjustment')),
    subject_id    TEXT NOT NULL,
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    currency      TEXT NOT NULL,
    occurred_at   BIGINT NOT NULL,
    memo          TEXT,
    created_at    BIGINT NOT NULL,
    UNIQUE (kind, subject_id)
);

-- A journal's postings stored as transfers: each row debits one account and credits another
-- by the same positive amount, so every row, and with it every journal and the whole ledger,
-- balances by construction. Accounts are the ledger crate's kinds (`gateway_clearing`,
-- `merchant_payable`, `platform_fee_revenue`, `codepay_fee_expense`, `platform_adjustments`);
-- the payable's merchant is `merchant_id`.
CREATE TABLE ledger_entries (
    id              TEXT PRIMARY KEY,
    journal_id      TEXT NOT NULL REFERENCES ledger_journals (id),
    kind            TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    debit_account   TEXT NOT NULL,
    credit_account  TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    occurred_at     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    CHECK (debit_account <> credit_account),
    UNIQUE (journal_id, debit_account, credit_account)
);
CREATE INDEX ledger_entries_merchant ON ledger_entries (merchant_id, id);
CREATE INDEX ledger_entries_occurred ON ledger_entries (merchant_id, currency, occurred_at);
CREATE INDEX ledger_entries_journal ON ledger_entries (journal_id);

-- Daily statements: one per merchant, currency, business date and window end. Immutable.
CREATE TABLE settlements (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants (id),
    currency           TEXT NOT NULL,
    -- YYYY-MM-DD in the cut-off's time zone
    business_date      TEXT NOT NULL,
    window_start       BIGINT NOT NULL,
    -- entries with occurred_at before this (and in no earlier statement) are in it
    window_end         BIGINT NOT NULL,
    payment_count      BIGINT NOT NULL,
    refund_count       BIGINT NOT NULL,
    adjustment_count   BIGINT NOT NULL,
    gross_minor        BIGINT NOT NULL,
    refunds_minor      BIGINT NOT NULL,
    fees_minor         BIGINT NOT NULL,
    fee_returns_minor  BIGINT NOT NULL,
    adjustments_minor  BIGINT NOT NULL,
    net_minor          BIGINT NOT NULL,
    line_count         BIGINT NOT NULL,
    -- the cut-off the business date was read with (`00:00 UTC`)
    cutoff             TEXT NOT NULL,
    -- the statement's lines as CSV, rendered once: the exact bytes `lines.csv` serves
    lines_csv          TEXT NOT NULL,
    -- `sha-256=<base64>` of `lines_csv`
    lines_digest       TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    UNIQUE (merchant_id, currency, business_date, window_end)
);
CREATE INDEX settlements_merchant ON settlements (merchant_id, id);
CREATE INDEX settlements_date ON settlements (business_date, id);

-- Which ledger entries a statement covers: an entry is in at most one statement, ever.
CREATE TABLE settlement_entries (
    entry_id       TEXT PRIMARY KEY REFERENCES ledger_entries (id),
    settlement_id  TEXT NOT NULL REFERENCES settlements (id)
);
CREATE INDEX settlement_entries_settlement ON settlement_entries (settlement_id);

-- The books are append-only: a correction is a new journal, a statement never changes.
CREATE TRIGGER ledger_journals_no_update BEFORE UPDATE ON ledger_journals
BEGIN
    SELECT RAISE(ABORT, 'ledger_journals is append-only');
END;
CREATE TRIGGER ledger_journals_no_delete BEFORE DELETE ON ledger_journals
BEGIN
    SELECT RAISE(ABORT, 'ledger_journals is append-only');
END;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger_entries is append-only');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger_entries is append-only');
END;
CREATE TRIGGER settlements_no_update BEFORE UPDATE ON settlements
BEGIN
    SELECT RAISE(ABORT, 'settlements is append-only');
END;
CREATE TRIGGER settlements_no_delete BEFORE DELETE ON settlements
BEGIN
    SELECT RAISE(ABORT, 'settlements is append-only');
END;
CREATE TRIGGER settlement_entries_no_update BEFORE UPDATE ON settlement_entries
BEGIN
    SELECT RAISE(ABORT, 'settlement_entries is append-only');
END;
CREATE TRIGGER settlement_entries_no_delete BEFORE DELETE ON settlement_entries
BEGIN
    SELECT RAISE(ABORT, 'settlement_entries is append-only');
END;

-- One reconciliation of one business date against CodePay.
CREATE TABLE reconciliation_runs (
    id             TEXT PRIMARY KEY,
    business_date  TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    finished_at    BIGINT,
    checked        BIGINT NOT NULL DEFAULT 0,
    breaks_found   BIGINT NOT NULL DEFAULT 0,
    repaired       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX reconciliation_runs_date ON reconciliation_runs (business_date, id);

-- A difference between payfac and CodePay about one payment or refund. `ours` and `theirs`
-- are JSON objects of the compared values. An open break is kept once per subject and kind.
CREATE TABLE reconciliation_breaks (
    id                  TEXT PRIMARY KEY,
    run_id              TEXT NOT NULL REFERENCES reconciliation_runs (id),
    business_date       TEXT NOT NULL,
    subject_type        TEXT NOT NULL CHECK (subject_type IN ('payment', 'refund')),
    subject_id          TEXT NOT NULL,
    merchant_id         TEXT NOT NULL REFERENCES merchants (id),
    gateway_account_id  TEXT,
    kind                TEXT NOT NULL CHECK (kind IN ('missing_upstream', 'status_mismatch',
                            'amount_mismatch', 'fee_mismatch')),
    status              TEXT NOT NULL CHECK (status IN ('open', 'repaired', 'resolved')),
    ours                TEXT NOT NULL,
    theirs              TEXT NOT NULL,
    detail              TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX reconciliation_breaks_open ON reconciliation_breaks (subject_id, kind)
    WHERE status = 'open';
CREATE INDEX reconciliation_breaks_status ON reconciliation_breaks (status, id);
CREATE INDEX reconciliation_breaks_merchant ON reconciliation_breaks (merchant_id, id);
