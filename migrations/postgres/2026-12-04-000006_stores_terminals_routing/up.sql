-- Stores and terminals (merchant → store → terminal), per-payment routing, and credentials
-- bound to a store or terminal.

CREATE TABLE stores (
    id                TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL REFERENCES merchants (id),
    name              TEXT NOT NULL,
    -- the store as CodePay knows it; sent as `store_no` with every order of this store
    codepay_store_no  TEXT NOT NULL,
    address           TEXT,
    -- IANA time zone name, informational
    timezone          TEXT,
    enabled           BOOLEAN NOT NULL DEFAULT TRUE,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX stores_merchant_store_no ON stores (merchant_id, codepay_store_no);
CREATE INDEX stores_merchant ON stores (merchant_id, id);

CREATE TABLE terminals (
    id                   TEXT PRIMARY KEY,
    store_id             TEXT NOT NULL REFERENCES stores (id),
    -- denormalised from the store so merchant-scoped reads need no join
    merchant_id          TEXT NOT NULL REFERENCES merchants (id),
    name                 TEXT NOT NULL,
    -- the terminal as CodePay knows it; sent as `terminal_sn`
    codepay_terminal_sn  TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE UNIQUE INDEX terminals_store_sn ON terminals (store_id, codepay_terminal_sn);
CREATE INDEX terminals_store ON terminals (store_id, id);

-- Ordered routing rules: JSON array of {currency?, wallet?, gateway_account_id}.
ALTER TABLE merchants ADD COLUMN routing TEXT NOT NULL DEFAULT '[]';

-- The account and the place a payment was routed through, fixed at creation: every later
-- operation of the payment (query, close, revoke, refund) uses the same ones.
ALTER TABLE payments ADD COLUMN gateway_account_id TEXT;
ALTER TABLE payments ADD COLUMN store_id TEXT;
ALTER TABLE payments ADD COLUMN terminal_id TEXT;
ALTER TABLE payments ADD COLUMN codepay_terminal_sn TEXT;
CREATE INDEX payments_merchant_store ON payments (merchant_id, store_id, id);
CREATE INDEX payments_merchant_terminal ON payments (merchant_id, terminal_id, id);

-- Copied from the payment: a refund goes through the payment's account, store and terminal,
-- and store- and terminal-bound credentials filter refunds directly.
ALTER TABLE refunds ADD COLUMN store_id TEXT;
ALTER TABLE refunds ADD COLUMN terminal_id TEXT;
ALTER TABLE refunds ADD COLUMN gateway_account_id TEXT;
ALTER TABLE refunds ADD COLUMN codepay_store_no TEXT;
ALTER TABLE refunds ADD COLUMN codepay_terminal_sn TEXT;

-- A key bound to a store or a terminal acts only there.
ALTER TABLE api_keys ADD COLUMN store_id TEXT;
ALTER TABLE api_keys ADD COLUMN terminal_id TEXT;

-- An endpoint may receive only one store's events.
ALTER TABLE webhook_endpoints ADD COLUMN store_id TEXT;
