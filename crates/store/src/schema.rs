//! The diesel schema, shared by both backends (see the migrations for the portable conventions).

#![allow(missing_docs)]

diesel::table! {
    gateway_accounts (id) {
        id -> Text,
        name -> Text,
        base_url -> Text,
        app_id -> Text,
        private_key_ciphertext -> Text,
        gateway_public_key -> Text,
        connect_timeout_ms -> BigInt,
        request_timeout_ms -> BigInt,
        enabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    merchants (id) {
        id -> Text,
        name -> Text,
        status -> Text,
        gateway_account_id -> Nullable<Text>,
        codepay_merchant_no -> Nullable<Text>,
        codepay_store_no -> Nullable<Text>,
        default_currency -> Text,
        allowed_wallets -> Text,
        max_amount_minor -> Nullable<BigInt>,
        contact -> Nullable<Text>,
        metadata -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        routing -> Text,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        merchant_id -> Nullable<Text>,
        kind -> Text,
        secret_hash -> Text,
        prefix -> Text,
        label -> Text,
        scopes -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
        store_id -> Nullable<Text>,
        terminal_id -> Nullable<Text>,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        merchant_id -> Text,
        merchant_order_id -> Text,
        mode -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        wallet -> Text,
        status -> Text,
        codepay_merchant_no -> Text,
        upstream_order_no -> Text,
        trans_no -> Nullable<Text>,
        qr_code -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
        paid_at -> Nullable<BigInt>,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        amount_refunded_minor -> BigInt,
        description -> Nullable<Text>,
        metadata -> Text,
        closed_by_us -> Bool,
        version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        codepay_store_no -> Nullable<Text>,
        gateway_account_id -> Nullable<Text>,
        store_id -> Nullable<Text>,
        terminal_id -> Nullable<Text>,
        codepay_terminal_sn -> Nullable<Text>,
    }
}

diesel::table! {
    refunds (id) {
        id -> Text,
        payment_id -> Text,
        merchant_id -> Text,
        merchant_refund_id -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        status -> Text,
        codepay_merchant_no -> Text,
        upstream_order_no -> Text,
        trans_no -> Nullable<Text>,
        reason -> Nullable<Text>,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        store_id -> Nullable<Text>,
        terminal_id -> Nullable<Text>,
        gateway_account_id -> Nullable<Text>,
        codepay_store_no -> Nullable<Text>,
        codepay_terminal_sn -> Nullable<Text>,
        fee_return_minor -> Nullable<BigInt>,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        merchant_id -> Text,
        event_type -> Text,
        object_id -> Text,
        payload -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        merchant_id -> Text,
        url -> Text,
        description -> Nullable<Text>,
        event_filter -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        secret_ciphertext -> Text,
        previous_secret_ciphertext -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        failing_since -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        store_id -> Nullable<Text>,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        event_id -> Text,
        endpoint_id -> Text,
        merchant_id -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<BigInt>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    delivery_attempts (id) {
        id -> Text,
        delivery_id -> Text,
        event_id -> Text,
        endpoint_id -> Text,
        merchant_id -> Text,
        attempt -> Integer,
        started_at -> BigInt,
        duration_ms -> BigInt,
        http_status -> Nullable<Integer>,
        response_excerpt -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    jobs (id) {
        id -> Text,
        kind -> Text,
        dedupe_key -> Nullable<Text>,
        payload -> Text,
        run_at -> BigInt,
        attempts -> Integer,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<BigInt>,
        state -> Text,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        lane -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (owner_id, idem_key) {
        owner_id -> Text,
        idem_key -> Text,
        method -> Text,
        path -> Text,
        fingerprint -> Text,
        state -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        claimed_by -> Nullable<Text>,
    }
}

diesel::table! {
    instances (id) {
        id -> Text,
        started_at -> BigInt,
        heartbeat_at -> BigInt,
    }
}

diesel::table! {
    upstream_notifications (id) {
        id -> Text,
        received_at -> BigInt,
        raw_body -> Text,
        verified -> Bool,
        verification_error -> Nullable<Text>,
        dedupe_key -> Nullable<Text>,
        object_type -> Nullable<Text>,
        object_id -> Nullable<Text>,
        merchant_id -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        merchant_id -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    stores (id) {
        id -> Text,
        merchant_id -> Text,
        name -> Text,
        codepay_store_no -> Text,
        address -> Nullable<Text>,
        timezone -> Nullable<Text>,
        enabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    terminals (id) {
        id -> Text,
        store_id -> Text,
        merchant_id -> Text,
        name -> Text,
        codepay_terminal_sn -> Text,
        kind -> Text,
        enabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    payment_fees (payment_id) {
        payment_id -> Text,
        fee_minor -> BigInt,
        fee_percent_minor -> BigInt,
        fee_fixed_minor -> BigInt,
        pricing_version -> Nullable<BigInt>,
        codepay_fee_minor -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    pricing_versions (merchant_id, version) {
        merchant_id -> Text,
        version -> BigInt,
        effective_at -> BigInt,
        rates -> Text,
        created_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    ledger_journals (id) {
        id -> Text,
        kind -> Text,
        subject_type -> Text,
        subject_id -> Text,
        merchant_id -> Text,
        currency -> Text,
        occurred_at -> BigInt,
        memo -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    ledger_entries (id) {
        id -> Text,
        journal_id -> Text,
        kind -> Text,
        subject_id -> Text,
        merchant_id -> Text,
        debit_account -> Text,
        credit_account -> Text,
        currency -> Text,
        amount_minor -> BigInt,
        occurred_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    settlements (id) {
        id -> Text,
        merchant_id -> Text,
        currency -> Text,
        business_date -> Text,
        window_start -> BigInt,
        window_end -> BigInt,
        payment_count -> BigInt,
        refund_count -> BigInt,
        adjustment_count -> BigInt,
        gross_minor -> BigInt,
        refunds_minor -> BigInt,
        fees_minor -> BigInt,
        fee_returns_minor -> BigInt,
        adjustments_minor -> BigInt,
        net_minor -> BigInt,
        line_count -> BigInt,
        cutoff -> Text,
        lines_csv -> Text,
        lines_digest -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    settlement_entries (entry_id) {
        entry_id -> Text,
        settlement_id -> Text,
    }
}

diesel::table! {
    reconciliation_runs (id) {
        id -> Text,
        business_date -> Text,
        started_at -> BigInt,
        finished_at -> Nullable<BigInt>,
        checked -> BigInt,
        breaks_found -> BigInt,
        repaired -> BigInt,
    }
}

diesel::table! {
    reconciliation_breaks (id) {
        id -> Text,
        run_id -> Text,
        business_date -> Text,
        subject_type -> Text,
        subject_id -> Text,
        merchant_id -> Text,
        gateway_account_id -> Nullable<Text>,
        kind -> Text,
        status -> Text,
        ours -> Text,
        theirs -> Text,
        detail -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(api_keys -> merchants (merchant_id));
diesel::joinable!(payments -> merchants (merchant_id));
diesel::joinable!(refunds -> payments (payment_id));
diesel::joinable!(deliveries -> events (event_id));
diesel::joinable!(deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));
diesel::joinable!(terminals -> stores (store_id));
diesel::joinable!(payment_fees -> payments (payment_id));
diesel::joinable!(ledger_entries -> ledger_journals (journal_id));
diesel::joinable!(settlement_entries -> ledger_entries (entry_id));
diesel::joinable!(settlement_entries -> settlements (settlement_id));

diesel::allow_tables_to_appear_in_same_query!(
    gateway_accounts,
    merchants,
    api_keys,
    payments,
    refunds,
    events,
    webhook_endpoints,
    deliveries,
    delivery_attempts,
    jobs,
    idempotency_keys,
    instances,
    upstream_notifications,
    audit_log,
    stores,
    terminals,
    payment_fees,
    pricing_versions,
    ledger_journals,
    ledger_entries,
    settlements,
    settlement_entries,
    reconciliation_runs,
    reconciliation_breaks,
);
