-- payfac initial schema (PostgreSQL).
--
-- Portable conventions shared with migrations/sqlite so one diesel schema serves both backends:
-- * ids are TEXT holding domain's prefixed ULIDs (`pay_01H…`), which sort by creation time, so
--   "newest first" is ORDER BY id DESC and cursor pagination is `id < starting_after`;
-- * timestamps are BIGINT unix **milliseconds** (no timezone types: they do not map the same way
--   through diesel's MultiConnection on both backends);
-- * money is BIGINT minor units + TEXT ISO 4217 currency, never a float or NUMERIC;
-- * enums are TEXT with the domain's wire names; JSON payloads are TEXT.

CREATE TABLE gateway_accounts (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    base_url                TEXT NOT NULL,
    app_id                  TEXT NOT NULL,
    -- encrypted by the caller; the store never sees the plaintext key
    private_key_ciphertext  TEXT NOT NULL,
    gateway_public_key      TEXT NOT NULL,
    connect_timeout_ms      BIGINT NOT NULL,
    request_timeout_ms      BIGINT NOT NULL,
    enabled                 BOOLEAN NOT NULL DEFAULT TRUE,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

CREATE TABLE merchants (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    gateway_account_id   TEXT REFERENCES gateway_accounts (id),
    codepay_merchant_no  TEXT,
    codepay_store_no     TEXT,
    default_currency     TEXT NOT NULL,
    allowed_wallets      TEXT NOT NULL,
    max_amount_minor     BIGINT,
    contact              TEXT,
    metadata             TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX merchants_codepay_merchant_no ON merchants (codepay_merchant_no);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    -- NULL for operator keys
    merchant_id   TEXT REFERENCES merchants (id),
    kind          TEXT NOT NULL CHECK (kind IN ('operator', 'secret')),
    secret_hash   TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    label         TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    expires_at    BIGINT
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id, id);

CREATE TABLE payments (
    id                     TEXT PRIMARY KEY,
    merchant_id            TEXT NOT NULL REFERENCES merchants (id),
    merchant_order_id      TEXT NOT NULL,
    mode                   TEXT NOT NULL CHECK (mode IN ('mpm', 'cpm')),
    amount_minor           BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency               TEXT NOT NULL,
    wallet                 TEXT NOT NULL,
    status                 TEXT NOT NULL,
    codepay_merchant_no    TEXT NOT NULL,
    upstream_order_no      TEXT NOT NULL,
    trans_no               TEXT,
    qr_code                TEXT,
    expires_at             BIGINT,
    paid_at                BIGINT,
    failure_code           TEXT,
    failure_message        TEXT,
    amount_refunded_minor  BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded_minor >= 0),
    description            TEXT,
    metadata               TEXT NOT NULL,
    closed_by_us           BOOLEAN NOT NULL DEFAULT FALSE,
    -- bumped on every change; webhook payloads carry it so receivers can order them
    version                BIGINT NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    UNIQUE (merchant_id, merchant_order_id),
    UNIQUE (codepay_merchant_no, upstream_order_no)
);
CREATE INDEX payments_merchant_id ON payments (merchant_id, id);
CREATE INDEX payments_merchant_status ON payments (merchant_id, status, id);
CREATE INDEX payments_status_created ON payments (status, created_at);
CREATE INDEX payments_trans_no ON payments (trans_no);

CREATE TABLE refunds (
    id                   TEXT PRIMARY KEY,
    payment_id           TEXT NOT NULL REFERENCES payments (id),
    merchant_id          TEXT NOT NULL REFERENCES merchants (id),
    merchant_refund_id   TEXT NOT NULL,
    amount_minor         BIGINT NOT NULL CHECK (amount_minor > 0),
    currency             TEXT NOT NULL,
    status               TEXT NOT NULL,
    codepay_merchant_no  TEXT NOT NULL,
    upstream_order_no    TEXT NOT NULL,
    trans_no             TEXT,
    reason               TEXT,
    failure_code         TEXT,
    failure_message      TEXT,
    version              BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (merchant_id, merchant_refund_id),
    UNIQUE (codepay_merchant_no, upstream_order_no)
);
CREATE INDEX refunds_payment ON refunds (payment_id, id);
CREATE INDEX refunds_status ON refunds (status, created_at);
CREATE INDEX refunds_trans_no ON refunds (trans_no);

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    event_type   TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX events_merchant ON events (merchant_id, id);
CREATE INDEX events_merchant_type ON events (merchant_id, event_type, id);
CREATE INDEX events_object ON events (object_id);

CREATE TABLE webhook_endpoints (
    id                          TEXT PRIMARY KEY,
    merchant_id                 TEXT NOT NULL REFERENCES merchants (id),
    url                         TEXT NOT NULL,
    description                 TEXT,
    -- JSON array of event types; ["*"] means all
    event_filter                TEXT NOT NULL,
    enabled                     BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason             TEXT,
    secret_ciphertext           TEXT NOT NULL,
    previous_secret_ciphertext  TEXT,
    previous_secret_expires_at  BIGINT,
    failing_since               BIGINT,
    deleted_at                  BIGINT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id, id);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, id);

CREATE TABLE delivery_attempts (
    id                TEXT PRIMARY KEY,
    delivery_id       TEXT NOT NULL REFERENCES deliveries (id),
    event_id          TEXT NOT NULL,
    endpoint_id       TEXT NOT NULL,
    merchant_id       TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    started_at        BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    http_status       INTEGER,
    response_excerpt  TEXT,
    error             TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, id);

CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    dedupe_key        TEXT,
    payload           TEXT NOT NULL,
    run_at            BIGINT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
-- "poll payment X" is never queued twice while one is unfinished; finished ones may repeat
CREATE UNIQUE INDEX jobs_dedupe ON jobs (kind, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_lease ON jobs (state, lease_expires_at);

CREATE TABLE idempotency_keys (
    -- the merchant id, or the operator key id for operator requests
    owner_id          TEXT NOT NULL,
    idem_key          TEXT NOT NULL,
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    response_status   INTEGER,
    response_body     TEXT,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    PRIMARY KEY (owner_id, idem_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE upstream_notifications (
    id                  TEXT PRIMARY KEY,
    received_at         BIGINT NOT NULL,
    raw_body            TEXT NOT NULL,
    verified            BOOLEAN NOT NULL,
    verification_error  TEXT,
    dedupe_key          TEXT,
    object_type         TEXT,
    object_id           TEXT,
    merchant_id         TEXT
);
CREATE INDEX upstream_notifications_dedupe ON upstream_notifications (dedupe_key);
CREATE INDEX upstream_notifications_received ON upstream_notifications (received_at);
CREATE INDEX upstream_notifications_object ON upstream_notifications (object_id);

CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    merchant_id  TEXT,
    details      TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target_id, id);
CREATE INDEX audit_log_merchant ON audit_log (merchant_id, id);
